//! Small matrix products with a fixed order of summation, for the hand-written engines.
//!
//! libtorch's GEMM is fast on large matrices, but a product of two 32 × 795 blocks costs more
//! in dispatch than in arithmetic, and its rounding depends on the shapes it is given. The
//! kernel here multiplies a panel of rows held in registers against a tile of columns, adding
//! every entry's products in order of the contracted index, each with a fused multiply-add
//! (one rounding) — so an entry has the same bits whatever the shapes, the tile that computed
//! it, the split of the contraction over calls, the thread or the CPU. The kernels are laid
//! out by hand with intrinsics for AVX-512 (`wide`) and AVX2 (`narrow`), chosen by
//! [`crate::simd::current`]; the portable loops serve the baseline and define the order of
//! the operations both follow (every width is tested against them bit for bit).
//! Why fused: on Intel cores a multiply and an add share the two vector ports a fused
//! multiply-add uses alone, so unfused products run at half the rate (measured on a Xeon with
//! AVX-512: the weight gradient's product 78 → 103–133 GFLOP/s on one core).
//! Used for the unit costs of aligned distances (`weightlab_compute::arch::align`), the MLP and
//! declared-network engines (`zoo::dense`, `zoo::net`) and the 1-D convolutions ([`crate::conv1d`]).

/// Returns `$wide` (a kernel of [`wide`]) when the kernels run at AVX-512, `$narrow` (of
/// [`narrow`]) at AVX2; falls through to the portable loops on the baseline.
macro_rules! by_width {
    ($wide:expr, $narrow:expr) => {
        #[cfg(target_arch = "x86_64")]
        match crate::simd::current() {
            // SAFETY: `current` says AVX-512 only where the CPU has AVX-512 F, VL, BW, DQ and FMA.
            crate::simd::Level::Avx512 => return unsafe { $wide },
            // SAFETY: `current` says AVX2 only where the CPU has AVX2 and FMA.
            crate::simd::Level::Avx2 => return unsafe { $narrow },
            crate::simd::Level::Baseline => {}
        }
    };
}

/// Columns per register tile; the column side's width is padded to a multiple.
pub const TILE: usize = 16;

/// `n` columns rounded up to whole [`TILE`]s: the width of a row the kernels read.
pub fn whole_tiles(n: usize) -> usize {
    n.div_ceil(TILE) * TILE
}
/// Rows per register tile: rows are stored in panels of this many, interleaved along the
/// contracted index, the last panel padded with zero rows ([`pack`]).
pub const PANEL: usize = 6;

/// One register tile of [`matmul_add`]: a panel of `P` rows against the TILE columns from `c0`,
/// each entry's products added in order of the contracted index to what `out` holds (`fresh`:
/// to zero, without reading `out`). `out` holds the panel's first `out.len() / nc` rows.
#[inline(always)]
fn tile<'c, const P: usize>(panel: &[f32], cols: impl Iterator<Item = &'c [f32]>, nc: usize, c0: usize, out: &mut [f32], fresh: bool) {
    let rows = (out.len() / nc).min(P);
    let mut acc = [[0.0f32; TILE]; P];
    if !fresh {
        for (r, values) in acc.iter_mut().enumerate().take(rows) {
            values.copy_from_slice(&out[r * nc + c0..][..TILE]);
        }
    }
    for (a, line) in panel.chunks_exact(P).zip(cols) {
        // A copy, so the tile's columns are loaded into registers once for the whole panel.
        let mut b = [0.0f32; TILE];
        b.copy_from_slice(&line[c0..c0 + TILE]);
        for r in 0..P {
            for c in 0..TILE {
                acc[r][c] = a[r].mul_add(b[c], acc[r][c]);
            }
        }
    }
    for (r, values) in acc.iter().enumerate().take(rows) {
        out[r * nc + c0..][..TILE].copy_from_slice(values);
    }
}

/// `out[i·nc + j] += Σ_{k ∈ ks} a[i][k] · b[k][j]` (`=` when `ks` starts at 0): `a` has `w`
/// columns and is stored in panels ([`pack`]), `b` is row-major with `nc` columns (a
/// multiple of [`TILE`]), `out` has `nc` columns and as many of `a`'s rows as it is long
/// (the panels' padding rows need no room). Each entry's products are added in order of k
/// (stored and resumed in f32 between calls), so it has the same bits for any shapes, any
/// split of the k range and on every CPU.
pub fn matmul_add(panels: &[f32], cols: &[f32], w: usize, nc: usize, ks: std::ops::Range<usize>, out: &mut [f32]) {
    by_width!(wide::matmul_add::<PANEL>(panels, cols, w, nc, ks.clone(), out), narrow::matmul_add::<PANEL>(panels, cols, w, nc, ks.clone(), out));
    let fresh = ks.start == 0;
    let cols = &cols[ks.start * nc..ks.end * nc];
    for (panel, rows) in panels.chunks_exact((w * PANEL).max(1)).zip(out.chunks_mut(PANEL * nc)) {
        let panel = &panel[ks.start * PANEL..ks.end * PANEL];
        for c0 in (0..nc).step_by(TILE) {
            tile::<PANEL>(panel, cols.chunks_exact(nc), nc, c0, rows, fresh);
        }
    }
}

/// Rows per panel of [`matmul_rows4`]: a matrix of 8 or 16 rows fills panels of 4 exactly,
/// where panels of 6 would compute 4 or 2 rows of padding.
pub const PANEL4: usize = 4;

/// [`matmul_rows`] with `a` in panels of [`PANEL4`] rows ([`pack_into_of`]`::<4>`).
pub fn matmul_rows4(panels: &[f32], b: &[&[f32]], w: usize, nc: usize, out: &mut [f32]) {
    matmul_rows_of::<PANEL4>(panels, b, w, nc, out);
}

/// [`matmul_add`] over all of `a`'s `w` columns (from zero), `b` given as its `w` rows —
/// anywhere in memory, each at least `nc` long: a batch's examples read where they are.
pub fn matmul_rows(panels: &[f32], b: &[&[f32]], w: usize, nc: usize, out: &mut [f32]) {
    matmul_rows_of::<PANEL>(panels, b, w, nc, out);
}

/// Whether `rows` rows are packed in panels of [`PANEL4`]: when that leaves no padding rows and
/// panels of [`PANEL`] would (8, 16 rows).
fn fours(rows: usize) -> bool {
    !rows.is_multiple_of(PANEL) && rows.is_multiple_of(PANEL4)
}

/// `a` (row-major, `w` columns) packed into `panels` for [`matmul_rows_packed`].
pub fn pack_for_rows(a: &[f32], w: usize, panels: &mut Vec<f32>) {
    if fours(a.len() / w.max(1)) { pack_into_of::<PANEL4>(a, w, panels) } else { pack_into(a, w, panels) }
}

/// `out` (rows × nc) = `a` · `b` for `a` of `rows` rows packed by [`pack_for_rows`] and `b`
/// given as its `w` rows (anywhere, each at least nc long). The same bits whatever the panels.
pub fn matmul_rows_packed(panels: &[f32], rows: usize, b: &[&[f32]], w: usize, nc: usize, out: &mut [f32]) {
    if fours(rows) { matmul_rows4(panels, b, w, nc, out) } else { matmul_rows(panels, b, w, nc, out) }
}

/// `out` (rows × nc) = `a` (rows × w, row-major) · `b` (w rows, anywhere, each at least nc
/// long), `a` packed into `panels` (its allocation reused) by [`pack_for_rows`].
pub fn matmul_rows_of_matrix(a: &[f32], w: usize, b: &[&[f32]], nc: usize, out: &mut [f32], panels: &mut Vec<f32>) {
    pack_for_rows(a, w, panels);
    matmul_rows_packed(panels, a.len() / w.max(1), b, w, nc, out);
}

/// [`matmul_rows`] for panels of `P` rows.
fn matmul_rows_of<const P: usize>(panels: &[f32], b: &[&[f32]], w: usize, nc: usize, out: &mut [f32]) {
    by_width!(wide::matmul_rows::<P>(panels, b, w, nc, out), narrow::matmul_rows::<P>(panels, b, w, nc, out));
    for (panel, rows) in panels.chunks_exact((w * P).max(1)).zip(out.chunks_mut(P * nc)) {
        for c0 in (0..nc).step_by(TILE) {
            tile::<P>(panel, b.iter().copied(), nc, c0, rows, true);
        }
    }
}

/// Lanes of the dot products in [`matmul_nt`].
const LANES: usize = 8;

/// R rows of `a` against C rows of `b` from `j0`: `out[i·stride + j] = a_i · b_j`, each dot
/// product summed in [`LANES`] lanes over k (k mod LANES), the lanes then in order, then the
/// tail.
#[inline(always)]
fn nt_tile<const R: usize, const C: usize>(a: [&[f32]; R], b: [&[f32]; C], k: usize, out: &mut [f32], stride: usize, j0: usize) {
    let mut acc = [[[0.0f32; LANES]; C]; R];
    let whole = k / LANES * LANES;
    for k0 in (0..whole).step_by(LANES) {
        let mut bv = [[0.0f32; LANES]; C];
        for (c, v) in bv.iter_mut().enumerate() {
            v.copy_from_slice(&b[c][k0..k0 + LANES]);
        }
        for r in 0..R {
            let mut av = [0.0f32; LANES];
            av.copy_from_slice(&a[r][k0..k0 + LANES]);
            for c in 0..C {
                for l in 0..LANES {
                    acc[r][c][l] = av[l].mul_add(bv[c][l], acc[r][c][l]);
                }
            }
        }
    }
    for r in 0..R {
        for c in 0..C {
            let mut sum = acc[r][c].iter().sum::<f32>();
            for kk in whole..k {
                sum = a[r][kk].mul_add(b[c][kk], sum);
            }
            out[r * stride + j0 + c] = sum;
        }
    }
}

/// `out[i·stride + j] = a_i · b_j` for the rows a_i of `a` (row-major, `k` columns) and the
/// rows `b` (anywhere in memory, each at least `k` long): A·Bᵀ without moving either
/// operand — the first layer's forward reads the weights and the batch's examples where
/// they are. Each dot product is summed the same way whatever tile computes it.
pub fn matmul_nt(a: &[f32], b: &[&[f32]], k: usize, out: &mut [f32], stride: usize) {
    let rows: Vec<&[f32]> = a.chunks_exact(k.max(1)).collect();
    by_width!(wide::nt_rows(&rows, b, k, out, stride), narrow::nt_rows(&rows, b, k, out, stride));
    nt_rows(&rows, b, k, out, stride);
}

/// [`matmul_nt`] with `a` given as its rows too, anywhere in memory, each at least `k` long.
pub fn matmul_nt_rows(a: &[&[f32]], b: &[&[f32]], k: usize, out: &mut [f32], stride: usize) {
    by_width!(wide::nt_rows(a, b, k, out, stride), narrow::nt_rows(a, b, k, out, stride));
    nt_rows(a, b, k, out, stride);
}

/// The portable body of [`matmul_nt`] and [`matmul_nt_rows`] (the baseline's): tiles of 4
/// rows of `a` against 2 rows of `b`.
fn nt_rows(rows: &[&[f32]], b: &[&[f32]], k: usize, out: &mut [f32], stride: usize) {
    {
        const R: usize = 4;
        const C: usize = 2;
        let mut i = 0;
        while i < rows.len() {
            let r = (rows.len() - i).min(R);
            let mut j = 0;
            while j < b.len() {
                let c = (b.len() - j).min(C);
                let out = &mut out[i * stride..];
                match (r, c) {
                    (R, C) => nt_tile::<R, C>([rows[i], rows[i + 1], rows[i + 2], rows[i + 3]], [b[j], b[j + 1]], k, out, stride, j),
                    (R, _) => {
                        for (jj, &bj) in b.iter().enumerate().skip(j).take(c) {
                            nt_tile::<R, 1>([rows[i], rows[i + 1], rows[i + 2], rows[i + 3]], [bj], k, out, stride, jj);
                        }
                    }
                    _ => {
                        for (ii, &ai) in rows[i..i + r].iter().enumerate() {
                            for (jj, &bj) in b.iter().enumerate().skip(j).take(c) {
                                nt_tile::<1, 1>([ai], [bj], k, &mut out[ii * stride..], stride, jj);
                            }
                        }
                    }
                }
                j += c;
            }
            i += r;
        }
    }
}

/// The kernels laid out by hand for AVX-512. Compiled for `avx512f` from the portable loops
/// above, LLVM vectorizes a register tile across its rows (masked gathers and scatters of the
/// accumulators), which made the AVX-512 build 8–16× slower than the AVX2 one; here every
/// vector is placed explicitly, and a tile is 32 columns wide (two registers per row) where
/// the matrix has them. The arithmetic is the portable loops', operation for operation (one
/// fused multiply-add per product, in order of k), so the bits are the same at every width.
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;

    use super::{LANES, TILE};

    /// [`super::tile`] for panels of `P` rows against `W` × 16 columns from `c0`.
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn tile<'c, const P: usize, const W: usize>(panel: &[f32], cols: impl Iterator<Item = &'c [f32]>, nc: usize, c0: usize, out: &mut [f32], fresh: bool) {
        let rows = (out.len() / nc).min(P);
        let mut acc = [[_mm512_setzero_ps(); W]; P];
        if !fresh {
            for (r, values) in acc.iter_mut().enumerate().take(rows) {
                for (w, v) in values.iter_mut().enumerate() {
                    let src = &out[r * nc + c0 + 16 * w..][..16];
                    // SAFETY: `src` holds 16 floats.
                    *v = unsafe { _mm512_loadu_ps(src.as_ptr()) };
                }
            }
        }
        for (a, line) in panel.chunks_exact(P).zip(cols) {
            let line = &line[c0..c0 + 16 * W];
            let mut b = [_mm512_setzero_ps(); W];
            for (w, v) in b.iter_mut().enumerate() {
                // SAFETY: `line` holds 16·W floats.
                *v = unsafe { _mm512_loadu_ps(line.as_ptr().add(16 * w)) };
            }
            for r in 0..P {
                let ar = _mm512_set1_ps(a[r]);
                for w in 0..W {
                    acc[r][w] = _mm512_fmadd_ps(ar, b[w], acc[r][w]);
                }
            }
        }
        for (r, values) in acc.iter().enumerate().take(rows) {
            for (w, &v) in values.iter().enumerate() {
                let dst = &mut out[r * nc + c0 + 16 * w..][..16];
                // SAFETY: `dst` holds 16 floats.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), v) };
            }
        }
    }

    /// Every tile: 32 columns at a time, then 16, each against every panel, so the columns
    /// a tile reads stay in the L1 cache from one panel to the next.
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn tiles<'c, const P: usize>(panels: &[f32], ks: std::ops::Range<usize>, w: usize, cols: impl Iterator<Item = &'c [f32]> + Clone, nc: usize, out: &mut [f32], fresh: bool) {
        let mut c0 = 0;
        while c0 < nc {
            let wide = c0 + 2 * TILE <= nc;
            for (panel, rows) in panels.chunks_exact((w * P).max(1)).zip(out.chunks_mut(P * nc)) {
                let panel = &panel[ks.start * P..ks.end * P];
                if wide {
                    tile::<P, 2>(panel, cols.clone(), nc, c0, rows, fresh);
                } else {
                    tile::<P, 1>(panel, cols.clone(), nc, c0, rows, fresh);
                }
            }
            c0 += if wide { 2 * TILE } else { TILE };
        }
    }

    /// [`super::matmul_add`].
    #[target_feature(enable = "avx512f,fma")]
    pub(super) fn matmul_add<const P: usize>(panels: &[f32], cols: &[f32], w: usize, nc: usize, ks: std::ops::Range<usize>, out: &mut [f32]) {
        let fresh = ks.start == 0;
        let cols = &cols[ks.start * nc..ks.end * nc];
        tiles::<P>(panels, ks, w, cols.chunks_exact(nc), nc, out, fresh);
    }

    /// [`super::matmul_rows`] and [`super::matmul_rows4`].
    #[target_feature(enable = "avx512f,fma")]
    pub(super) fn matmul_rows<const P: usize>(panels: &[f32], b: &[&[f32]], w: usize, nc: usize, out: &mut [f32]) {
        tiles::<P>(panels, 0..w, w, b.iter().copied(), nc, out, true);
    }

    /// R rows of `a` against 2·C rows of `b` from `j0`, as [`super::nt_tile`] sums them: each
    /// accumulator holds two dot products' [`LANES`] lanes, a row of `a` against two rows of
    /// `b`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    fn nt_tile<const R: usize, const C: usize>(a: [&[f32]; R], b: [[&[f32]; 2]; C], k: usize, out: &mut [f32], stride: usize, j0: usize) {
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        let whole = k / LANES * LANES;
        let a = a.map(|row| &row[..k]);
        let b = b.map(|pair| pair.map(|row| &row[..k]));
        for k0 in (0..whole).step_by(LANES) {
            let mut bv = [_mm512_setzero_ps(); C];
            for (c, v) in bv.iter_mut().enumerate() {
                // SAFETY: both rows hold at least `whole` ≥ k0 + LANES floats.
                *v = unsafe { _mm512_insertf32x8::<1>(_mm512_castps256_ps512(_mm256_loadu_ps(b[c][0].as_ptr().add(k0))), _mm256_loadu_ps(b[c][1].as_ptr().add(k0))) };
            }
            for r in 0..R {
                // SAFETY: the row holds at least k0 + LANES floats.
                let av = unsafe { _mm512_broadcast_f32x8(_mm256_loadu_ps(a[r].as_ptr().add(k0))) };
                for c in 0..C {
                    acc[r][c] = _mm512_fmadd_ps(av, bv[c], acc[r][c]);
                }
            }
        }
        for r in 0..R {
            for c in 0..C {
                let mut lanes = [0.0f32; 16];
                // SAFETY: `lanes` holds 16 floats.
                unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), acc[r][c]) };
                for (half, chunk) in lanes.chunks_exact(LANES).enumerate() {
                    let mut sum = chunk.iter().sum::<f32>();
                    for kk in whole..k {
                        sum = a[r][kk].mul_add(b[c][half][kk], sum);
                    }
                    out[r * stride + j0 + 2 * c + half] = sum;
                }
            }
        }
    }

    /// [`super::nt_rows`]: tiles of 8 (then 4) rows of `a` against 4 rows of `b`; the last 1–3
    /// rows of `a` against 4 rows of `b` too, so several dot products run side by side there
    /// as well; the last 1–3 rows of `b` by the portable tile. Eight rows of `a` stay in the L1
    /// cache while the rows of `b` stream past them, half as often as with four.
    #[target_feature(enable = "avx512f,avx512dq,fma")]
    pub(super) fn nt_rows(rows: &[&[f32]], b: &[&[f32]], k: usize, out: &mut [f32], stride: usize) {
        let mut i = 0;
        while i < rows.len() {
            let r = match rows.len() - i {
                8.. => 8,
                r => r.min(4),
            };
            let out = &mut out[i * stride..];
            let a = &rows[i..i + r];
            let mut j = 0;
            while j + 4 <= b.len() {
                let pairs = [[b[j], b[j + 1]], [b[j + 2], b[j + 3]]];
                match r {
                    8 => nt_tile::<8, 2>([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]], pairs, k, out, stride, j),
                    4 => nt_tile::<4, 2>([a[0], a[1], a[2], a[3]], pairs, k, out, stride, j),
                    3 => nt_tile::<3, 2>([a[0], a[1], a[2]], pairs, k, out, stride, j),
                    2 => nt_tile::<2, 2>([a[0], a[1]], pairs, k, out, stride, j),
                    _ => nt_tile::<1, 2>([a[0]], pairs, k, out, stride, j),
                }
                j += 4;
            }
            for (ii, &ai) in a.iter().enumerate() {
                for (jj, &bj) in b.iter().enumerate().skip(j) {
                    super::nt_tile::<1, 1>([ai], [bj], k, &mut out[ii * stride..], stride, jj);
                }
            }
            i += r;
        }
    }
}

/// The kernels laid out by hand for AVX2: from the portable loops with fused multiply-adds,
/// LLVM's vectorizer sometimes kept the dot products' lanes scalar, depending on how the
/// binary was split into codegen units (the calibration read 0.7 ms in one build and 8 ms in
/// the next). The same operations in the same order as the portable loops, so the same bits.
#[cfg(target_arch = "x86_64")]
mod narrow {
    use std::arch::x86_64::*;

    use super::{LANES, TILE};

    /// [`super::tile`]: a panel of `P` rows against the [`TILE`] columns from `c0`, two
    /// registers per row.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn tile<'c, const P: usize>(panel: &[f32], cols: impl Iterator<Item = &'c [f32]>, nc: usize, c0: usize, out: &mut [f32], fresh: bool) {
        let rows = (out.len() / nc).min(P);
        let mut acc = [[_mm256_setzero_ps(); 2]; P];
        if !fresh {
            for (r, values) in acc.iter_mut().enumerate().take(rows) {
                let src = &out[r * nc + c0..][..TILE];
                // SAFETY: `src` holds 16 floats.
                *values = unsafe { [_mm256_loadu_ps(src.as_ptr()), _mm256_loadu_ps(src.as_ptr().add(8))] };
            }
        }
        for (a, line) in panel.chunks_exact(P).zip(cols) {
            let line = &line[c0..c0 + TILE];
            // SAFETY: `line` holds 16 floats.
            let b = unsafe { [_mm256_loadu_ps(line.as_ptr()), _mm256_loadu_ps(line.as_ptr().add(8))] };
            for r in 0..P {
                let ar = _mm256_set1_ps(a[r]);
                for h in 0..2 {
                    acc[r][h] = _mm256_fmadd_ps(ar, b[h], acc[r][h]);
                }
            }
        }
        for (r, values) in acc.iter().enumerate().take(rows) {
            let dst = &mut out[r * nc + c0..][..TILE];
            // SAFETY: `dst` holds 16 floats.
            unsafe {
                _mm256_storeu_ps(dst.as_mut_ptr(), values[0]);
                _mm256_storeu_ps(dst.as_mut_ptr().add(8), values[1]);
            }
        }
    }

    /// [`super::matmul_add`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn matmul_add<const P: usize>(panels: &[f32], cols: &[f32], w: usize, nc: usize, ks: std::ops::Range<usize>, out: &mut [f32]) {
        let fresh = ks.start == 0;
        let cols = &cols[ks.start * nc..ks.end * nc];
        for (panel, rows) in panels.chunks_exact((w * P).max(1)).zip(out.chunks_mut(P * nc)) {
            let panel = &panel[ks.start * P..ks.end * P];
            for c0 in (0..nc).step_by(TILE) {
                tile::<P>(panel, cols.chunks_exact(nc), nc, c0, rows, fresh);
            }
        }
    }

    /// [`super::matmul_rows`] and [`super::matmul_rows4`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn matmul_rows<const P: usize>(panels: &[f32], b: &[&[f32]], w: usize, nc: usize, out: &mut [f32]) {
        for (panel, rows) in panels.chunks_exact((w * P).max(1)).zip(out.chunks_mut(P * nc)) {
            for c0 in (0..nc).step_by(TILE) {
                tile::<P>(panel, b.iter().copied(), nc, c0, rows, true);
            }
        }
    }

    /// [`super::nt_tile`]: R rows of `a` against C rows of `b` from `j0`, one register of
    /// [`LANES`] lanes per dot product.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn nt_tile<const R: usize, const C: usize>(a: [&[f32]; R], b: [&[f32]; C], k: usize, out: &mut [f32], stride: usize, j0: usize) {
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let whole = k / LANES * LANES;
        let a = a.map(|row| &row[..k]);
        let b = b.map(|row| &row[..k]);
        for k0 in (0..whole).step_by(LANES) {
            let mut bv = [_mm256_setzero_ps(); C];
            for c in 0..C {
                // SAFETY: the row holds at least `whole` ≥ k0 + LANES floats.
                bv[c] = unsafe { _mm256_loadu_ps(b[c].as_ptr().add(k0)) };
            }
            for r in 0..R {
                // SAFETY: as above.
                let av = unsafe { _mm256_loadu_ps(a[r].as_ptr().add(k0)) };
                for c in 0..C {
                    acc[r][c] = _mm256_fmadd_ps(av, bv[c], acc[r][c]);
                }
            }
        }
        for r in 0..R {
            for c in 0..C {
                let mut lanes = [0.0f32; LANES];
                // SAFETY: `lanes` holds 8 floats.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r][c]) };
                let mut sum = lanes.iter().sum::<f32>();
                for kk in whole..k {
                    sum = a[r][kk].mul_add(b[c][kk], sum);
                }
                out[r * stride + j0 + c] = sum;
            }
        }
    }

    /// [`super::nt_rows`]: tiles of 4 rows of `a` against 3 rows of `b` (12 of the 16
    /// registers; 2 at the end where 2 are left); the last 1–3 rows of `a` against 4 rows of
    /// `b` at a time, so even there 4–12 dot products run side by side (one alone waits on its
    /// own additions: a conv's weight gradient over 6 output channels spent a third of its time
    /// in its last two).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn nt_rows(rows: &[&[f32]], b: &[&[f32]], k: usize, out: &mut [f32], stride: usize) {
        let mut i = 0;
        while i < rows.len() {
            let r = (rows.len() - i).min(4);
            let out = &mut out[i * stride..];
            let a = &rows[i..i + r];
            let mut j = 0;
            if r == 4 {
                let a = [a[0], a[1], a[2], a[3]];
                while j + 3 <= b.len() {
                    nt_tile::<4, 3>(a, [b[j], b[j + 1], b[j + 2]], k, out, stride, j);
                    j += 3;
                }
                if j + 2 == b.len() {
                    nt_tile::<4, 2>(a, [b[j], b[j + 1]], k, out, stride, j);
                    j += 2;
                }
            } else {
                while j + 4 <= b.len() {
                    let cols = [b[j], b[j + 1], b[j + 2], b[j + 3]];
                    match r {
                        3 => nt_tile::<3, 4>([a[0], a[1], a[2]], cols, k, out, stride, j),
                        2 => nt_tile::<2, 4>([a[0], a[1]], cols, k, out, stride, j),
                        _ => nt_tile::<1, 4>([a[0]], cols, k, out, stride, j),
                    }
                    j += 4;
                }
            }
            for (jj, &bj) in b.iter().enumerate().skip(j) {
                match r {
                    4 => nt_tile::<4, 1>([a[0], a[1], a[2], a[3]], [bj], k, out, stride, jj),
                    3 => nt_tile::<3, 1>([a[0], a[1], a[2]], [bj], k, out, stride, jj),
                    2 => nt_tile::<2, 1>([a[0], a[1]], [bj], k, out, stride, jj),
                    _ => nt_tile::<1, 1>([a[0]], [bj], k, out, stride, jj),
                }
            }
            i += r;
        }
    }
}

/// `rows` (row-major, `w` columns) in the panels [`matmul_add`] reads: groups of [`PANEL`]
/// rows interleaved along the columns, the last group padded with zero rows.
pub fn pack(rows: &[f32], w: usize) -> Vec<f32> {
    let mut panels = Vec::new();
    pack_into(rows, w, &mut panels);
    panels
}

/// [`pack`] into `out` (its allocation reused).
pub fn pack_into(rows: &[f32], w: usize, out: &mut Vec<f32>) {
    pack_into_of::<PANEL>(rows, w, out);
}

/// [`pack_into`] in panels of `P` rows.
pub fn pack_into_of<const P: usize>(rows: &[f32], w: usize, out: &mut Vec<f32>) {
    let n = rows.len() / w.max(1);
    out.clear();
    out.resize(n.div_ceil(P) * P * w, 0.0);
    for (i, row) in rows.chunks_exact(w.max(1)).enumerate() {
        let panel = &mut out[(i / P) * P * w..];
        for (k, &v) in row.iter().enumerate() {
            panel[k * P + i % P] = v;
        }
    }
}

/// `rows` (`n` rows of `w`) transposed into panels: the panels of the `w` × `n` matrix whose
/// rows are `rows`' columns, as [`pack`] of that transpose would store them.
pub fn pack_transposed(rows: &[f32], w: usize, out: &mut Vec<f32>) {
    let n = rows.len() / w.max(1);
    out.clear();
    out.resize(w.div_ceil(PANEL) * PANEL * n, 0.0);
    for (k, row) in rows.chunks_exact(w.max(1)).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            out[(i / PANEL) * PANEL * n + k * PANEL + i % PANEL] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_summed_in_order_of_the_contracted_index() {
        // 8 rows (a panel of six and one of two, padded with zero rows) against 19 columns
        // padded to 32.
        let (rows, cols, width, padded) = (8, 19, 7, 32);
        let value = |k: usize| ((k as f32) * 0.731).sin() * 3.0;
        let a: Vec<f32> = (0..rows * width).map(value).collect();
        let mut b = vec![0.0f32; width * padded];
        for k in 0..width {
            for j in 0..cols {
                b[k * padded + j] = value(1000 + k * cols + j);
            }
        }
        // In two calls (features 0..3, then 3..7): the sums resume where they stopped. The
        // first starts from zero whatever `out` holds; `out` needs no room for padding rows.
        let mut out = vec![f32::NAN; rows * padded];
        matmul_add(&pack(&a, width), &b, width, padded, 0..3, &mut out);
        matmul_add(&pack(&a, width), &b, width, padded, 3..width, &mut out);
        for i in 0..rows {
            for j in 0..padded {
                let expected = (0..width).fold(0.0f32, |acc, k| a[i * width + k].mul_add(b[k * padded + j], acc));
                assert_eq!(out[i * padded + j].to_bits(), expected.to_bits(), "entry ({i}, {j})");
            }
        }
    }

    #[test]
    fn panels_of_four_rows_give_the_bits_of_panels_of_six() {
        // 8 rows (two panels of four; of six, one and a third) against 19 columns padded to 32,
        // the columns read as rows in place.
        let (rows, width, padded) = (8, 7, 32);
        let value = |k: usize| ((k as f32) * 0.517).sin() * 2.0;
        let a: Vec<f32> = (0..rows * width).map(value).collect();
        let b: Vec<f32> = (0..width * padded).map(|k| value(500 + k)).collect();
        let lines: Vec<&[f32]> = b.chunks_exact(padded).collect();
        let (mut six, mut four) = (vec![0.0f32; rows * padded], vec![0.0f32; rows * padded]);
        matmul_rows(&pack(&a, width), &lines, width, padded, &mut six);
        let mut panels = Vec::new();
        pack_into_of::<PANEL4>(&a, width, &mut panels);
        assert_eq!(panels.len(), rows * width, "no padding rows");
        matmul_rows4(&panels, &lines, width, padded, &mut four);
        assert!(six.iter().zip(&four).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn products_of_rows_read_in_place_match_their_sums() {
        // 9 rows of a (two tiles of four and one row) against 7 rows of b (three tiles of two
        // and a single one), 21 columns (two lanes' worth and a tail of five).
        let (m, n, k) = (9, 7, 21);
        let value = |i: usize| ((i as f32) * 0.377).cos() * 2.0;
        let a: Vec<f32> = (0..m * k).map(value).collect();
        let b_store: Vec<f32> = (0..n * (k + 3)).map(|i| value(5000 + i)).collect();
        let b: Vec<&[f32]> = b_store.chunks_exact(k + 3).collect();
        let mut out = vec![f32::NAN; m * n];
        matmul_nt(&a, &b, k, &mut out, n);
        for i in 0..m {
            for j in 0..n {
                let mut lanes = [0.0f32; LANES];
                for kk in 0..k / LANES * LANES {
                    lanes[kk % LANES] = a[i * k + kk].mul_add(b[j][kk], lanes[kk % LANES]);
                }
                let mut expected = lanes.iter().sum::<f32>();
                for kk in k / LANES * LANES..k {
                    expected = a[i * k + kk].mul_add(b[j][kk], expected);
                }
                assert_eq!(out[i * n + j].to_bits(), expected.to_bits(), "entry ({i}, {j})");
            }
        }
        // The same products through the panels, b's rows read in place: as contiguous.
        let (w, nc) = (5, 16);
        let bt: Vec<f32> = (0..w * nc).map(|i| value(9000 + i)).collect();
        let lines: Vec<&[f32]> = bt.chunks_exact(nc).collect();
        let a5: Vec<f32> = (0..m * w).map(value).collect();
        let (mut x, mut y) = (vec![0.0f32; m * nc], vec![f32::NAN; m * nc]);
        matmul_add(&pack(&a5, w), &bt, w, nc, 0..w, &mut x);
        matmul_rows(&pack(&a5, w), &lines, w, nc, &mut y);
        assert_eq!(x, y);
    }

    /// Every kernel at every width this CPU has (the AVX-512 one is laid out by hand, the
    /// others compiled from the portable loops) gives the bits of the plain sums, on shapes
    /// with every kind of edge: rows past whole panels, 16 columns past whole pairs of tiles,
    /// a contraction split over two calls, dot products with a tail past the lanes and rows of
    /// `b` past whole tiles.
    #[test]
    fn every_width_gives_the_bits_of_the_plain_sums() {
        let value = |i: usize| ((i as f32) * 0.613).sin() * 1.7;
        // Panels: 13 rows (two panels of six and one row; three of four and one row), 21
        // contracted, 80 columns (two pairs of tiles and one tile).
        let (m, w, nc) = (13, 21, 80);
        let a: Vec<f32> = (0..m * w).map(value).collect();
        let b: Vec<f32> = (0..w * nc).map(|i| value(3000 + i)).collect();
        let lines: Vec<&[f32]> = b.chunks_exact(nc).collect();
        let plain = |i: usize, j: usize| (0..w).fold(0.0f32, |acc, k| a[i * w + k].mul_add(b[k * nc + j], acc));
        // Dot products: 13 to 16 rows (tiles of eight and four, then one, two, three or none
        // left) against 11 (whole tiles, then what is left), 45 long (five lanes' worth and a
        // tail of five), each row of b read in place from a longer line.
        let (c, k) = (11, 45);
        let x: Vec<f32> = (0..16 * k).map(|i| value(9000 + i)).collect();
        let y_store: Vec<f32> = (0..c * (k + 7)).map(|i| value(20_000 + i)).collect();
        let y: Vec<&[f32]> = y_store.chunks_exact(k + 7).map(|line| &line[3..]).collect();
        let dot = |i: usize, j: usize| {
            let mut lanes = [0.0f32; LANES];
            for kk in 0..k / LANES * LANES {
                lanes[kk % LANES] = x[i * k + kk].mul_add(y[j][kk], lanes[kk % LANES]);
            }
            (k / LANES * LANES..k).fold(lanes.iter().sum::<f32>(), |acc, kk| x[i * k + kk].mul_add(y[j][kk], acc))
        };
        for level in crate::simd::available() {
            crate::simd::at_level(level, || {
                let at = level.name();
                let mut split = vec![f32::NAN; m * nc];
                matmul_add(&pack(&a, w), &b, w, nc, 0..8, &mut split);
                matmul_add(&pack(&a, w), &b, w, nc, 8..w, &mut split);
                let mut six = vec![f32::NAN; m * nc];
                matmul_rows(&pack(&a, w), &lines, w, nc, &mut six);
                let mut panels = Vec::new();
                pack_into_of::<PANEL4>(&a, w, &mut panels);
                let mut four = vec![f32::NAN; m * nc];
                matmul_rows4(&panels, &lines, w, nc, &mut four);
                for i in 0..m {
                    for j in 0..nc {
                        let expected = plain(i, j).to_bits();
                        for (kernel, out) in [("matmul_add in two calls", &split), ("matmul_rows", &six), ("matmul_rows4", &four)] {
                            assert_eq!(out[i * nc + j].to_bits(), expected, "{kernel} at {at}, entry ({i}, {j})");
                        }
                    }
                }
                for r in 13..=16 {
                    let x = &x[..r * k];
                    let (mut nt, mut nt_rows) = (vec![f32::NAN; r * c], vec![f32::NAN; r * c]);
                    matmul_nt(x, &y, k, &mut nt, c);
                    let x_rows: Vec<&[f32]> = x.chunks_exact(k).collect();
                    matmul_nt_rows(&x_rows, &y, k, &mut nt_rows, c);
                    for i in 0..r {
                        for j in 0..c {
                            assert_eq!(nt[i * c + j].to_bits(), dot(i, j).to_bits(), "matmul_nt at {at}, {r} rows, entry ({i}, {j})");
                            assert_eq!(nt_rows[i * c + j].to_bits(), dot(i, j).to_bits(), "matmul_nt_rows at {at}, {r} rows, entry ({i}, {j})");
                        }
                    }
                }
            });
        }
    }

    #[test]
    fn packing_a_transpose_equals_packing_the_transposed_matrix() {
        let (n, w) = (5, 8);
        let rows: Vec<f32> = (0..n * w).map(|v| v as f32).collect();
        let transposed: Vec<f32> = (0..w).flat_map(|i| (0..n).map(move |k| (k * w + i) as f32)).collect();
        let mut out = Vec::new();
        pack_transposed(&rows, w, &mut out);
        assert_eq!(out, pack(&transposed, n));
    }
}
