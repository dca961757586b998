//! 2 × 2 max-pooling with stride 2 over maps of even width — the pooling of CNN-s and of most
//! declared networks (LeNet-5, ResNet-small) — laid out so that it vectorises at any width.
//!
//! A window is folded with "the later candidate if it is larger or NaN", as PyTorch picks (the
//! first maximum in reading order; NaN wins, here the last NaN of several). That fold is
//! associative, so each row's pair of neighbours can be folded first and the two rows' winners
//! after: both passes are loops over contiguous memory — the first reads the pairs as one
//! stride-2 stream, since every row of an even-width map holds whole pairs. Folded window by
//! window, the four candidates were picked out of the rows lane by lane (a fifth of CNN-s
//! training at AVX-512 and at AVX2).

/// The winners of each row's pairs of neighbours (their values, and whether the right one
/// won), and of one map's rows against the rows below (values, and where in the map).
#[derive(Default)]
pub(super) struct Pairs {
    best: Vec<f32>,
    right: Vec<u32>,
    down_best: Vec<f32>,
    down_at: Vec<u32>,
}

/// Max-pools `planes` maps of `height` × `width` (`width` even; an odd last row is dropped, as
/// PyTorch's floor mode does) into `best` (planes × height/2 × width/2) and writes where each
/// window's maximum is in its map to `at`. Inlined into each caller's vector-width variants.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn max_pool_2x2(z: &[f32], planes: usize, height: usize, width: usize, pairs: &mut Pairs, best: &mut [f32], at: &mut [u32]) {
    debug_assert!(width.is_multiple_of(2), "rows of whole pairs");
    let (oh, ow) = (height / 2, width / 2);
    let n = planes * height * ow;
    pairs.best.resize(n, 0.0);
    pairs.right.resize(n, 0);
    for ((pair, best), right) in z[..2 * n].chunks_exact(2).zip(&mut pairs.best).zip(&mut pairs.right) {
        let take = (pair[1] > pair[0]) | pair[1].is_nan();
        *best = if take { pair[1] } else { pair[0] };
        *right = take as u32;
    }
    // Each row's winners against the next row's, for every row of a map at once (half of them
    // — an upper row's — are windows); in windows of short rows (7 or 14 for ResNet-small),
    // the loops row by row ran mostly in their scalar remainders.
    let (rows, span) = (2 * oh, (2 * oh).saturating_sub(1) * ow);
    pairs.down_best.resize(span, 0.0);
    pairs.down_at.resize(span, 0);
    for plane in 0..planes {
        let first = plane * height * ow..plane * height * ow + rows * ow;
        let (pb, pr) = (&pairs.best[first.clone()], &pairs.right[first]);
        let (upper, lower) = ((&pb[..span], &pr[..span]), (&pb[ow..ow + span], &pr[ow..ow + span]));
        for (i, (best, at)) in pairs.down_best.iter_mut().zip(&mut pairs.down_at).enumerate() {
            let take = (lower.0[i] > upper.0[i]) | lower.0[i].is_nan();
            *best = if take { lower.0[i] } else { upper.0[i] };
            // Where it is: the pair at i starts at 2·i in the map (rows of `width` = 2·ow).
            // By mask arithmetic: as a choice between two loads, LLVM gathers.
            let down = (take as u32).wrapping_neg();
            *at = 2 * i as u32 + (((lower.1[i] + width as u32) & down) | (upper.1[i] & !down));
        }
        for py in 0..oh {
            let o = (plane * oh + py) * ow;
            best[o..o + ow].copy_from_slice(&pairs.down_best[2 * py * ow..][..ow]);
            at[o..o + ow].copy_from_slice(&pairs.down_at[2 * py * ow..][..ow]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two passes pick what folding each window in reading order picks, on maps full of
    /// ties and NaNs, square and not, with an odd last row.
    #[test]
    fn pooling_picks_the_first_maximum_and_the_last_nan_in_reading_order() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for (planes, height, width) in [(8, 24, 24), (6, 8, 8), (8, 14, 14), (16, 10, 10), (3, 7, 12), (2, 2, 2)] {
            let z: Vec<f32> = (0..planes * height * width)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    [-1.0, 0.0, 1.0, 2.0, f32::NAN, f32::NEG_INFINITY][(state >> 40) as usize % 6]
                })
                .collect();
            let (oh, ow) = (height / 2, width / 2);
            let (mut best, mut at) = (vec![0.0; planes * oh * ow], vec![0u32; planes * oh * ow]);
            max_pool_2x2(&z, planes, height, width, &mut Pairs::default(), &mut best, &mut at);
            for p in 0..planes {
                for (py, px) in (0..oh).flat_map(|py| (0..ow).map(move |px| (py, px))) {
                    let taps = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(dy, dx)| (2 * py + dy) * width + 2 * px + dx);
                    let (mut want, mut want_at) = (z[p * height * width + taps[0]], taps[0]);
                    for &t in &taps[1..] {
                        let v = z[p * height * width + t];
                        if v > want || v.is_nan() {
                            (want, want_at) = (v, t);
                        }
                    }
                    let o = (p * oh + py) * ow + px;
                    assert_eq!((best[o].to_bits(), at[o] as usize), (want.to_bits(), want_at), "{planes}×{height}×{width}: map {p}, window ({py}, {px})");
                }
            }
        }
    }
}
