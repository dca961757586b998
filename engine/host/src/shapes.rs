//! Output sizes of host tensor operations, computed from the input shapes with checked
//! arithmetic, so the budget can refuse an operation before libtorch allocates anything.
//!
//! Each function returns an element count: `None` when the count overflows 64 bits (always
//! refused). Shapes that libtorch will reject anyway (mismatched dimensions) fall back to the
//! largest input, since libtorch checks them before it allocates.

/// Product of the dimensions; `None` on overflow or a negative dimension.
pub fn numel(shape: &[i64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
}

/// Elements → bytes of f32.
pub fn bytes(elements: Option<u64>) -> Option<u64> {
    elements?.checked_mul(crate::budget::ELEMENT_BYTES)
}

/// `u32` shapes from the plugin as libtorch's `i64`.
pub fn from_u32(shape: &[u32]) -> Vec<i64> {
    shape.iter().map(|&d| i64::from(d)).collect()
}

/// Sum of several counts.
pub fn sum(counts: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    counts.into_iter().try_fold(0u64, |acc, c| acc.checked_add(c?))
}

/// NumPy/PyTorch broadcasting of two shapes; `None` when they do not broadcast.
pub fn broadcast(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    let n = a.len().max(b.len());
    let dim = |s: &[i64], i: usize| {
        if i + s.len() >= n { s[i + s.len() - n] } else { 1 }
    };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Elements of a binary elementwise op's output (broadcast), or the larger input when the
/// shapes do not broadcast (libtorch refuses those before allocating).
pub fn elementwise(a: &[i64], b: &[i64]) -> Option<u64> {
    match broadcast(a, b) {
        Some(shape) => numel(&shape),
        None => numel(a)?.max(numel(b)?).into(),
    }
}

/// `matmul`'s output shape and the batch count its broadcast inputs are expanded to.
pub fn matmul(a: &[i64], b: &[i64]) -> Option<(Vec<i64>, u64)> {
    match (a.len(), b.len()) {
        (0, _) | (_, 0) => None,
        (1, 1) => Some((vec![], 1)),
        (2, 1) => Some((vec![a[0]], 1)),
        (1, 2) => Some((vec![b[1]], 1)),
        (2, 2) => Some((vec![a[0], b[1]], 1)),
        _ => {
            let (n, m) = (if a.len() >= 2 { Some(a[a.len() - 2]) } else { None }, if b.len() >= 2 { Some(b[b.len() - 1]) } else { None });
            let batch = broadcast(&a[..a.len().saturating_sub(2)], &b[..b.len().saturating_sub(2)])?;
            let count = numel(&batch)?;
            let mut out = batch;
            out.extend(n);
            out.extend(m);
            Some((out, count))
        }
    }
}

/// Output length of a 1-D convolution.
pub fn conv_len(len: i64, kernel: i64, stride: i64, padding: i64) -> Option<i64> {
    let span = len.checked_add(padding.checked_mul(2)?)?.checked_sub(kernel)?;
    (span >= 0 && stride > 0).then(|| span / stride + 1)
}

/// Output length of a transposed 1-D convolution.
pub fn conv_transpose_len(len: i64, kernel: i64, stride: i64, padding: i64, output_padding: i64) -> Option<i64> {
    let l = (len - 1).checked_mul(stride)?.checked_sub(padding.checked_mul(2)?)?.checked_add(kernel)?.checked_add(output_padding)?;
    (l > 0).then_some(l)
}

/// Elements left after reducing `dim` away (or everything, for an invalid dim): the product
/// of the other dimensions — never derived from the input's element count, which is 0 when
/// the reduced dimension is empty although the output is not.
pub fn reduced(shape: &[i64], dim: i32) -> Option<u64> {
    let d = if dim < 0 { shape.len() as i64 + dim as i64 } else { dim as i64 };
    match usize::try_from(d).ok().filter(|&d| d < shape.len()) {
        Some(d) => numel(&shape[..d])?.checked_mul(numel(&shape[d + 1..])?),
        None => numel(shape),
    }
}

/// Elements of `linear`'s output: every row of `x` (all dimensions but the last) times the
/// weight's outputs (its first dimension), however many inputs there are (0 included).
pub fn linear(x: &[i64], weight: &[i64]) -> Option<u64> {
    match (x.split_last(), weight.first()) {
        (Some((_, rows)), Some(&outputs)) => numel(rows)?.checked_mul(u64::try_from(outputs).ok()?),
        _ => numel(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_none_not_a_wrap() {
        assert_eq!(numel(&from_u32(&[u32::MAX, u32::MAX])), Some(u32::MAX as u64 * u32::MAX as u64));
        assert_eq!(bytes(numel(&from_u32(&[u32::MAX, u32::MAX]))), None);
        assert_eq!(numel(&from_u32(&[u32::MAX, u32::MAX, u32::MAX])), None);
        assert_eq!(numel(&[-1, 3]), None);
    }

    #[test]
    fn broadcasting_and_matmul_shapes() {
        assert_eq!(broadcast(&[32768, 1], &[1, 32768]), Some(vec![32768, 32768]));
        assert_eq!(broadcast(&[3], &[2, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast(&[2], &[3]), None);
        assert_eq!(elementwise(&[2], &[3]), Some(3));
        assert_eq!(matmul(&[64, 5, 7], &[7, 3]), Some((vec![64, 5, 3], 64)));
        assert_eq!(matmul(&[5, 7], &[7, 3]), Some((vec![5, 3], 1)));
        assert_eq!(matmul(&[7], &[4, 7, 3]), Some((vec![4, 3], 4)));
        assert_eq!(conv_len(100, 3, 1, 1), Some(100));
        assert_eq!(conv_len(2, 5, 1, 0), None);
        assert_eq!(conv_transpose_len(50, 4, 2, 1, 0), Some(100));
        assert_eq!(reduced(&[4, 5, 6], 1), Some(24));
        assert_eq!(reduced(&[4, 5, 6], -1), Some(20));
        // An empty reduced dimension: the input holds nothing, the output 10^10 elements.
        assert_eq!(reduced(&[0, 100_000, 100_000], 0), Some(10_000_000_000));
        assert_eq!(reduced(&[3], 5), Some(3));
        assert_eq!(linear(&[100_000, 0], &[100_000, 0]), Some(10_000_000_000));
        assert_eq!(linear(&[8, 4, 3], &[5, 3]), Some(160));
    }
}
