//! 1-D convolutions and transposed convolutions with their gradients, computed as the
//! register-tiled products of [`crate::gemm`] without unfolding the input.
//!
//! Why: p-diff's and FLoWN's weight autoencoders are stacks of `Conv1d(k=4, s=2, p=1)` and
//! `ConvTranspose1d` over long rows of few channels (16 channels × 1,024 positions × 200
//! checkpoints). libtorch's oneDNN kernels run those at 10–80 GFLOP/s on two cores (the data
//! gradient and the transposed convolution at the low end), where the same arithmetic as a
//! product reaches the GEMM kernels' rate.
//!
//! How, without an im2col copy: a stride-`s` convolution is a stride-1 convolution over `s`
//! *phases* of the padded input (phase r of a row holds positions r, r+s, r+2s, …), tap
//! t = s·u + r reading phase r shifted by u. Each (channel, phase) row holds the whole batch's
//! rows end to end (`phase_len` apart), so the output is one product: the weight (co × ci·k, as
//! PyTorch stores it) times the ci·k tap rows, each a shifted view of a phase row. Positions
//! past a row's `out_len` outputs are computed and dropped. The data gradient is the same
//! construction the other way (phases of the input gradient from shifted rows of the output
//! gradient), the weight gradient dot products of output-gradient rows with the tap rows.
//!
//! Every output entry's products are added in a fixed order that depends on the sizes only, and
//! threads split the batch (or the output channels), so results are the same bits whatever the
//! thread count and CPU ([`crate::gemm`]). They differ from libtorch's in the last bits.

use crate::gemm;

/// Floats of working buffers per block of batch rows ([`Conv1d::blocks`]): 384 KiB, well
/// inside a core's L2 cache (1–2 MiB on the machines measured).
const BLOCK_FLOATS: usize = 96 * 1024;

/// Below this many multiply-adds an operation runs on one thread (spawning costs more).
const PARALLEL_WORK: usize = 1 << 20;

/// PyTorch's `Conv1d` (dilation 1, one group): `n` inputs of `ci` channels × `len` positions,
/// weight `co` × `ci` × `k`, `stride`, zero `padding` on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1d {
    pub n: usize,
    pub ci: usize,
    pub co: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub len: usize,
    /// Threads to split the work over (at least 1).
    pub threads: usize,
}

/// PyTorch's `ConvTranspose1d` (dilation 1, one group): `n` inputs of `ci` channels × `len`
/// positions, weight `ci` × `co` × `k`, `stride`, `padding`, `output_padding` (< stride).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose1d {
    pub n: usize,
    pub ci: usize,
    pub co: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub output_padding: usize,
    pub len: usize,
    pub threads: usize,
}

/// The threads this process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl Conv1d {
    /// The convolution, or `None` when PyTorch would refuse it (a zero size or stride, a
    /// kernel longer than the padded input).
    pub fn new(n: usize, ci: usize, co: usize, k: usize, stride: usize, padding: usize, len: usize) -> Option<Self> {
        let valid = n > 0 && ci > 0 && co > 0 && k > 0 && stride > 0 && len.checked_add(padding.checked_mul(2)?)? >= k;
        valid.then_some(Conv1d { n, ci, co, k, stride, padding, len, threads: default_threads() })
    }

    /// Positions of each output row.
    pub fn out_len(&self) -> usize {
        (self.len + 2 * self.padding - self.k) / self.stride + 1
    }

    /// Taps per phase: u runs over 0..taps_per_phase.
    fn taps_per_phase(&self) -> usize {
        self.k.div_ceil(self.stride)
    }

    /// Positions of one batch row in a phase row: the outputs and room for the farthest shift.
    fn phase_len(&self) -> usize {
        self.out_len() + self.taps_per_phase() - 1
    }

    /// Length of a phase row for `samples` batch rows end to end, with room for the last
    /// tile and the shifts.
    fn row_len(&self, samples: usize) -> usize {
        samples * self.phase_len() + gemm::TILE + self.taps_per_phase()
    }

    /// The batch in blocks of consecutive rows whose working buffers (input phases, output
    /// gradient rows, the product) fit in a core's L2 cache together: every operation runs
    /// block by block, so the product reads what building its rows just wrote. The blocks
    /// depend on the sizes only, so the bits do not depend on the threads.
    fn blocks(&self) -> Vec<std::ops::Range<usize>> {
        let footprint = ((self.ci * self.stride + self.co) * self.phase_len() + self.co * self.out_len()).max(1);
        runs(self.n, (BLOCK_FLOATS / footprint).clamp(1, self.n))
    }

    /// Whether an operation of `work` multiply-adds is split over threads.
    fn threaded(&self, work: usize) -> bool {
        self.threads > 1 && work >= PARALLEL_WORK
    }

    /// The padded input's phases for the batch rows `b`: row (c·stride + r) holds positions
    /// r, r+s, … of channel c's padded row, for each batch row in turn (`phase_len` apart),
    /// zeros around; rows are `row_len(b.len())` apart.
    fn phases(&self, x: &[f32], b: &std::ops::Range<usize>) -> Scratch {
        let (s, row) = (self.stride, self.row_len(b.len()));
        let mut out = Scratch::zeroed(self.ci * s * row);
        for (c, rows) in out.chunks_exact_mut(s * row).enumerate() {
            for n in b.clone() {
                self.split_row(&x[(n * self.ci + c) * self.len..][..self.len], rows, row, (n - b.start) * self.phase_len());
            }
        }
        out
    }

    /// One input row `src` into its phases: `rows` holds the stride's phase rows (`row`
    /// apart), this row's part starting at column `at`.
    fn split_row(&self, src: &[f32], rows: &mut [f32], row: usize, at: usize) {
        let (s, p, lph) = (self.stride, self.padding, self.phase_len());
        if s == 1 {
            let (first, end) = self.phase_range(0);
            let start = first - p.min(first);
            rows[at + first..at + end].copy_from_slice(&src[start..start + end - first]);
            return;
        }
        // Phase index j holds padded positions s·j .. s·j + s − 1, input positions from s·j − p:
        // whole chunks of the input for j in inner, single positions at the edges.
        let inner = p.div_ceil(s)..lph.min((self.len + p) / s).max(p.div_ceil(s));
        if s == 2 {
            let (even, odd) = rows.split_at_mut(row);
            let (even, odd) = (&mut even[at + inner.start..at + inner.end], &mut odd[at + inner.start..at + inner.end]);
            for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(src[2 * inner.start - p..].chunks_exact(2)) {
                *e = pair[0];
                *o = pair[1];
            }
        } else {
            for (j, chunk) in inner.clone().zip(src[s * inner.start - p..].chunks_exact(s)) {
                for (r, &v) in chunk.iter().enumerate() {
                    rows[r * row + at + j] = v;
                }
            }
        }
        for j in (0..inner.start).chain(inner.end..lph) {
            for r in 0..s {
                if let Some(&v) = (s * j + r).checked_sub(p).and_then(|l| src.get(l)) {
                    rows[r * row + at + j] = v;
                }
            }
        }
    }

    /// The phase indices of phase `r` that hold input positions (s·i + r − p in 0..len),
    /// within a batch row of the phases.
    fn phase_range(&self, r: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.padding);
        let first = p.saturating_sub(r).div_ceil(s);
        (first, self.phase_len().min((self.len + p).saturating_sub(r).div_ceil(s)))
    }

    /// The tap rows (c, t), in the weight's order, of `phases` whose rows are `row` apart.
    fn taps<'a>(&self, phases: &'a [f32], row: usize, len: usize) -> Vec<&'a [f32]> {
        let s = self.stride;
        (0..self.ci).flat_map(|c| (0..self.k).map(move |t| (c, t))).map(|(c, t)| &phases[(c * s + t % s) * row + t / s..][..len]).collect()
    }

    /// The output gradient `dy` of the batch rows `b` laid out as the phases are: row o holds
    /// the block's rows `phase_len` apart with zeros between, after `taps_per_phase − 1` zeros.
    /// Rows are `taps_per_phase − 1 + row_len(b.len())` apart.
    fn spread(&self, dy: &[f32], b: &std::ops::Range<usize>) -> (Scratch, usize) {
        let (lout, lph, lead) = (self.out_len(), self.phase_len(), self.taps_per_phase() - 1);
        let row = lead + self.row_len(b.len());
        let mut out = Scratch::zeroed(self.co * row);
        for n in b.clone() {
            for (o, src) in dy[n * self.co * lout..][..self.co * lout].chunks_exact(lout).enumerate() {
                out[o * row + lead + (n - b.start) * lph..][..lout].copy_from_slice(src);
            }
        }
        (out, row)
    }

    /// `y` (n × co × out_len) = the convolution of `x` (n × ci × len) with `weight`
    /// (co × ci × k), plus `bias` (co) per channel.
    pub fn forward(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        assert_eq!(x.len(), self.n * self.ci * self.len, "conv1d input");
        assert_eq!(weight.len(), self.co * self.ci * self.k, "conv1d weight");
        let (lout, lph, co) = (self.out_len(), self.phase_len(), self.co);
        assert_eq!(y.len(), self.n * co * lout, "conv1d output");
        if crate::halving::applies(self.k, self.stride, self.padding) {
            let (ci, len) = (self.ci, self.len);
            let run = |b: &std::ops::Range<usize>, y: &mut [f32]| crate::halving::halve(&x[b.start * ci * len..b.end * ci * len], ci, len, weight, bias, co, y);
            return self.by_samples(y, co * lout, run);
        }
        let mut panels = Vec::new();
        gemm::pack_for_rows(weight, self.ci * self.k, &mut panels);
        let blocks = self.blocks();
        let run = |b: &std::ops::Range<usize>, y: &mut [f32]| {
            let nc = (b.len() * lph).div_ceil(gemm::TILE) * gemm::TILE;
            let phases = self.phases(x, b);
            let mut wide = Scratch::overwritten(co * nc);
            gemm::matmul_rows_packed(&panels, co, &self.taps(&phases, self.row_len(b.len()), nc), self.ci * self.k, nc, &mut wide);
            for (n, y) in y.chunks_exact_mut(co * lout).enumerate() {
                for (c, dst) in y.chunks_exact_mut(lout).enumerate() {
                    let bias = bias.map_or(0.0, |b| b[c]);
                    for (d, &v) in dst.iter_mut().zip(&wide[c * nc + n * lph..][..lout]) {
                        *d = v + bias;
                    }
                }
            }
        };
        self.each_block(&blocks, y, co * lout * blocks[0].len(), self.n * lph * co * self.ci * self.k, run);
    }

    /// `run(block, out)` for every block with its `chunk` floats of `out` (the last block's may
    /// be shorter), on the threads when the operation (`work` multiply-adds) is large enough.
    fn each_block(&self, blocks: &[std::ops::Range<usize>], out: &mut [f32], chunk: usize, work: usize, run: impl Fn(&std::ops::Range<usize>, &mut [f32]) + Sync) {
        let outs: Vec<&mut [f32]> = out.chunks_mut(chunk).collect();
        if self.threaded(work) {
            parallel(blocks, outs, run);
        } else {
            blocks.iter().zip(outs).for_each(|(b, out)| run(b, out));
        }
    }

    /// `run(samples, out)` for consecutive runs of samples with their rows of `out` (`per`
    /// floats a sample), on the threads when the operation is large enough: for the kernels
    /// that compute each output from its own sample only ([`crate::halving`]).
    fn by_samples(&self, out: &mut [f32], per: usize, run: impl Fn(&std::ops::Range<usize>, &mut [f32]) + Sync) {
        let size = self.n.div_ceil(4 * self.threads.max(1)).max(1);
        let work = self.n * self.out_len() * self.co * self.ci * self.k;
        self.each_block(&runs(self.n, size), out, per * size, work, run);
    }

    /// `z` (n × ci × len) = bias + the halving convolution's input gradient ([`crate::halving::double`])
    /// of `d` (n × co × out_len) with `weight` (co × ci × 4).
    fn doubled(&self, d: &[f32], weight: &[f32], bias: Option<&[f32]>, z: &mut [f32]) {
        let (co, ci, lout, len) = (self.co, self.ci, self.out_len(), self.len);
        let run = |b: &std::ops::Range<usize>, z: &mut [f32]| crate::halving::double(&d[b.start * co * lout..b.end * co * lout], co, lout, weight, bias, ci, len, z);
        self.by_samples(z, ci * len, run);
    }

    /// `dx` (n × ci × len) = the gradient of [`Conv1d::forward`]'s output with respect to its
    /// input, given the output gradient `dy` (n × co × out_len): the input gradient's phases
    /// as one product of the rearranged weight with shifted rows of `dy`.
    pub fn backward_data(&self, dy: &[f32], weight: &[f32], dx: &mut [f32]) {
        let (lout, lph, s, u_count) = (self.out_len(), self.phase_len(), self.stride, self.taps_per_phase());
        assert_eq!(dy.len(), self.n * self.co * lout, "conv1d output gradient");
        assert_eq!(weight.len(), self.co * self.ci * self.k, "conv1d weight");
        assert_eq!(dx.len(), self.n * self.ci * self.len, "conv1d input gradient");
        if crate::halving::applies(self.k, self.stride, self.padding) {
            return self.doubled(dy, weight, None, dx);
        }
        // Phase r of input channel c at i gets Σ_{o, u} w[o, c, s·u + r] · dy[o][i − u].
        let width = self.co * u_count;
        let mut a = vec![0.0f32; self.ci * s * width];
        for c in 0..self.ci {
            for r in 0..s {
                for o in 0..self.co {
                    for u in 0..u_count {
                        if s * u + r < self.k {
                            a[(c * s + r) * width + o * u_count + u] = weight[(o * self.ci + c) * self.k + s * u + r];
                        }
                    }
                }
            }
        }
        let mut panels = Vec::new();
        gemm::pack_for_rows(&a, width, &mut panels);
        let lead = u_count - 1;
        let run = |b: &std::ops::Range<usize>, dx: &mut [f32]| {
            let nc = (b.len() * lph).div_ceil(gemm::TILE) * gemm::TILE;
            let (spread, row) = self.spread(dy, b);
            let rows: Vec<&[f32]> = (0..self.co).flat_map(|o| (0..u_count).map(move |u| (o, u))).map(|(o, u)| &spread[o * row + lead - u..][..nc]).collect();
            let mut phases = Scratch::overwritten(self.ci * s * nc);
            gemm::matmul_rows_packed(&panels, self.ci * s, &rows, width, nc, &mut phases);
            // Input position l is padded position q = l + p: phase q mod s, index q / s.
            for (n, dx) in dx.chunks_exact_mut(self.ci * self.len).enumerate() {
                for (c, dst) in dx.chunks_exact_mut(self.len).enumerate() {
                    for r in 0..s {
                        let (first, end) = self.phase_range(r);
                        let start = s * first + r - self.padding;
                        if start >= self.len {
                            continue;
                        }
                        let src = &phases[(c * s + r) * nc + n * lph..];
                        for (d, &v) in dst[start..].iter_mut().step_by(s).zip(&src[first..end.max(first)]) {
                            *d = v;
                        }
                        // Positions whose phase index is past the row get no gradient.
                        for d in dst.iter_mut().skip(start + s * end.saturating_sub(first)).step_by(s) {
                            *d = 0.0;
                        }
                    }
                }
            }
        };
        let blocks = self.blocks();
        self.each_block(&blocks, dx, self.ci * self.len * blocks[0].len(), self.n * lph * width * self.ci * s, run);
    }

    /// `dw` (co × ci × k) = the gradient of [`Conv1d::forward`]'s output with respect to the
    /// weight, given the output gradient `dy` (n × co × out_len) and the input `x`: for each
    /// output channel and tap, the dot product of the gradient's row with the tap's row, block
    /// by block (the blocks' sums then added in order).
    pub fn backward_weight(&self, dy: &[f32], x: &[f32], dw: &mut [f32]) {
        let (lout, lph) = (self.out_len(), self.phase_len());
        assert_eq!(dy.len(), self.n * self.co * lout, "conv1d output gradient");
        assert_eq!(x.len(), self.n * self.ci * self.len, "conv1d input");
        let taps = self.ci * self.k;
        assert_eq!(dw.len(), self.co * taps, "conv1d weight gradient");
        if crate::halving::applies(self.k, self.stride, self.padding) {
            let (ci, co, len) = (self.ci, self.co, self.len);
            let runs = runs(self.n, crate::halving::RUN);
            let per = crate::halving::run_len(co, ci);
            // Every run fills its lanes before adding to them.
            let mut lanes = Scratch::overwritten(runs.len() * per);
            let work =
                |b: &std::ops::Range<usize>, lanes: &mut [f32]| crate::halving::weight_run(&dy[b.start * co * lout..b.end * co * lout], &x[b.start * ci * len..b.end * ci * len], ci, len, co, lanes);
            self.each_block(&runs, &mut lanes, per, self.n * lout * co * taps, work);
            return crate::halving::weight_total(&lanes, dw);
        }
        let blocks = self.blocks();
        let lead = self.taps_per_phase() - 1;
        let mut partials = vec![0.0f32; blocks.len() * dw.len()];
        let run = |b: &std::ops::Range<usize>, part: &mut [f32]| {
            let span = b.len() * lph;
            let phases = self.phases(x, b);
            let (spread, row) = self.spread(dy, b);
            let grads: Vec<&[f32]> = (0..self.co).map(|o| &spread[o * row + lead..][..span]).collect();
            gemm::matmul_nt_rows(&grads, &self.taps(&phases, self.row_len(b.len()), span), span, part, taps);
        };
        self.each_block(&blocks, &mut partials, dw.len(), self.n * lph * self.co * taps, run);
        dw.fill(0.0);
        for part in partials.chunks_exact(dw.len()) {
            for (g, &v) in dw.iter_mut().zip(part) {
                *g += v;
            }
        }
    }
}

impl ConvTranspose1d {
    /// The transposed convolution, or `None` when PyTorch would refuse it (a zero size or
    /// stride, `output_padding` not below the stride, an output of no positions).
    #[allow(clippy::too_many_arguments)] // PyTorch's own argument list, in its order.
    pub fn new(n: usize, ci: usize, co: usize, k: usize, stride: usize, padding: usize, output_padding: usize, len: usize) -> Option<Self> {
        let t = ConvTranspose1d { n, ci, co, k, stride, padding, output_padding, len, threads: default_threads() };
        let valid = n > 0 && ci > 0 && co > 0 && k > 0 && stride > 0 && len > 0 && output_padding < stride && t.out_len_checked().is_some_and(|l| l > 0);
        valid.then_some(t)
    }

    fn out_len_checked(&self) -> Option<usize> {
        ((self.len - 1).checked_mul(self.stride)?.checked_add(self.k)?.checked_add(self.output_padding)?).checked_sub(2 * self.padding)
    }

    /// Positions of each output row: (len − 1)·stride − 2·padding + k + output_padding.
    pub fn out_len(&self) -> usize {
        (self.len - 1) * self.stride + self.k + self.output_padding - 2 * self.padding
    }

    /// The convolution whose input gradient this is: from `co` channels of `out_len` positions
    /// to `ci` channels of `len`, with the same weight (ci × co × k).
    fn adjoint(&self) -> Conv1d {
        Conv1d { n: self.n, ci: self.co, co: self.ci, k: self.k, stride: self.stride, padding: self.padding, len: self.out_len(), threads: self.threads }
    }

    /// `y` (n × co × out_len) = the transposed convolution of `x` (n × ci × len) with `weight`
    /// (ci × co × k), plus `bias` (co) per channel.
    pub fn forward(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let adjoint = self.adjoint();
        if crate::halving::applies(self.k, self.stride, self.padding) {
            assert_eq!((x.len(), weight.len(), y.len()), (self.n * self.ci * self.len, self.ci * self.co * self.k, self.n * self.co * self.out_len()), "conv_transpose1d sizes");
            return adjoint.doubled(x, weight, bias, y);
        }
        adjoint.backward_data(x, weight, y);
        if let Some(bias) = bias {
            for (i, row) in y.chunks_exact_mut(self.out_len()).enumerate() {
                let b = bias[i % self.co];
                row.iter_mut().for_each(|v| *v += b);
            }
        }
    }

    /// `dx` (n × ci × len): the input gradient, given the output gradient `dy`.
    pub fn backward_data(&self, dy: &[f32], weight: &[f32], dx: &mut [f32]) {
        self.adjoint().forward(dy, weight, None, dx);
    }

    /// `dw` (ci × co × k): the weight gradient, given the output gradient `dy` and the input `x`.
    pub fn backward_weight(&self, dy: &[f32], x: &[f32], dw: &mut [f32]) {
        self.adjoint().backward_weight(x, dy, dw);
    }
}

/// The bias gradient of either convolution: `db[c]` = the sum of `dy` (n × channels × len) over
/// the batch and positions, in order.
pub fn bias_grad(dy: &[f32], channels: usize, len: usize, db: &mut [f32]) {
    // Sixteen running sums per channel (position mod 16), added in order at the end: one
    // running sum is a chain of dependent additions, 4 cycles each (9 ms on p-diff's largest
    // output, 6.5 M values), where sixteen vectorize.
    const LANES: usize = 16;
    let mut lanes = vec![[0.0f32; LANES]; channels];
    let mut tails = vec![0.0f32; channels];
    for (i, row) in dy.chunks_exact(len.max(1)).enumerate() {
        let (acc, tail) = (&mut lanes[i % channels], &mut tails[i % channels]);
        let chunks = row.chunks_exact(LANES);
        *tail += chunks.remainder().iter().sum::<f32>();
        for chunk in chunks {
            for (a, &v) in acc.iter_mut().zip(chunk) {
                *a += v;
            }
        }
    }
    for ((d, acc), tail) in db.iter_mut().zip(&lanes).zip(&tails) {
        *d = acc.iter().sum::<f32>() + tail;
    }
}

/// A working buffer from a process-wide pool, returned to it when dropped: the operations'
/// buffers are megabytes, and fresh ones cost a page fault per 4 KiB on every call (measured:
/// a third of a forward pass on p-diff's shapes).
struct Scratch(Vec<f32>);

/// Buffers kept for reuse; a few suffice (an operation holds at most three at once per thread).
static POOL: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());
const POOLED: usize = 8;
/// Larger buffers (a block of one very long row) are freed, not kept: the pool holds at most
/// `POOLED` × 16 MiB however large an operation was.
const POOLED_FLOATS: usize = 4 << 20;

impl Scratch {
    /// `len` floats whose values the caller overwrites before reading.
    fn overwritten(len: usize) -> Self {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        // The smallest buffer that is large enough, else the largest (grown).
        let pick = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)
            .or_else(|| pool.iter().enumerate().max_by_key(|(_, b)| b.capacity()).map(|(i, _)| i));
        let mut buf = pick.map(|i| pool.swap_remove(i)).unwrap_or_default();
        drop(pool);
        buf.resize(len, 0.0);
        buf.truncate(len);
        Scratch(buf)
    }

    /// `len` zeros.
    fn zeroed(len: usize) -> Self {
        let mut s = Self::overwritten(len);
        s.0.fill(0.0);
        s
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOLED && self.0.capacity() <= POOLED_FLOATS {
            pool.push(std::mem::take(&mut self.0));
        }
    }
}

/// `0..n` in consecutive ranges of `size` (the last may be shorter).
fn runs(n: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    (0..n.div_ceil(size)).map(|i| i * size..((i + 1) * size).min(n)).collect()
}

/// How the parts of an operation run in parallel: `run(parts, task)` calls `task(i)` once for
/// every i in 0..parts, on any threads, and returns when all have returned.
pub type Runner = fn(parts: usize, task: &(dyn Fn(usize) + Sync));

static RUNNER: std::sync::OnceLock<Runner> = std::sync::OnceLock::new();

/// Runs the kernels' parallel parts with `runner` from now on (the first call holds). The
/// plugin host installs libtorch's thread pool: spawning threads of our own beside libtorch's
/// spinning OpenMP workers made both slower (measured: p-diff's fit 1.9× slower).
pub fn set_runner(runner: Runner) {
    let _ = RUNNER.set(runner);
}

/// Scoped threads (as many as the cores) taking the parts in turn: the runner when none is
/// installed.
fn spawned(parts: usize, task: &(dyn Fn(usize) + Sync)) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..default_threads().min(parts) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= parts {
                        break;
                    }
                    task(i);
                }
            });
        }
    });
}

/// `run(part, out)` for every part with its piece of the output, in parallel when there are
/// several ([`set_runner`]).
fn parallel<P: Sync>(parts: &[P], outs: Vec<&mut [f32]>, run: impl Fn(&P, &mut [f32]) + Sync) {
    if parts.len() == 1 {
        for (p, out) in parts.iter().zip(outs) {
            run(p, out);
        }
        return;
    }
    // Each part takes its own piece once; the locks are never contended.
    let outs: Vec<std::sync::Mutex<&mut [f32]>> = outs.into_iter().map(std::sync::Mutex::new).collect();
    let task = |i: usize| {
        let mut out = outs[i].lock().unwrap_or_else(|e| e.into_inner());
        run(&parts[i], &mut out);
    };
    RUNNER.get().copied().unwrap_or(spawned)(parts.len(), &task);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5 - 1.0) * 0.9).collect()
    }

    /// The definition: y[n, o, j] = b[o] + Σ_{c, t} w[o, c, t] · x[n, c, s·j + t − p].
    fn direct(c: &Conv1d, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
        let lout = c.out_len();
        let mut y = vec![0.0f64; c.n * c.co * lout];
        for n in 0..c.n {
            for o in 0..c.co {
                for j in 0..lout {
                    let mut acc = b[o] as f64;
                    for ch in 0..c.ci {
                        for t in 0..c.k {
                            let q = (c.stride * j + t) as isize - c.padding as isize;
                            if q >= 0 && (q as usize) < c.len {
                                acc += w[(o * c.ci + ch) * c.k + t] as f64 * x[(n * c.ci + ch) * c.len + q as usize] as f64;
                            }
                        }
                    }
                    y[(n * c.co + o) * lout + j] = acc;
                }
            }
        }
        y
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g as f64 - w).abs() <= 1e-5 * scale, "{what}[{i}]: {g} against {w}");
        }
    }

    /// Sizes that exercise every edge: strides above, at and below the kernel, padding as large
    /// as the kernel, rows whose last positions no tap reads, a batch split over threads.
    const CASES: [(usize, usize, usize, usize, usize, usize, usize); 9] = [
        (200, 16, 16, 4, 2, 1, 256),
        // n, ci, co, k, stride, padding, len
        (3, 2, 5, 4, 2, 1, 16),
        (2, 1, 4, 4, 2, 1, 33),
        (2, 3, 2, 3, 1, 1, 9),
        (2, 2, 3, 2, 3, 0, 14),
        (1, 4, 6, 5, 2, 4, 7),
        (4, 3, 7, 1, 1, 0, 5),
        (2, 2, 2, 7, 3, 2, 20),
        (40, 16, 16, 4, 2, 1, 256),
    ];

    #[test]
    fn convolution_and_its_gradients_follow_the_definition() {
        for (n, ci, co, k, s, p, len) in CASES {
            for threads in [1, 3] {
                let c = Conv1d { threads, ..Conv1d::new(n, ci, co, k, s, p, len).unwrap() };
                let what = format!("{c:?}");
                let (x, w, b) = (values(n * ci * len, 1), values(co * ci * k, 2), values(co, 3));
                let lout = c.out_len();
                let mut y = vec![f32::NAN; n * co * lout];
                c.forward(&x, &w, Some(&b), &mut y);
                close(&y, &direct(&c, &x, &w, &b), &format!("forward {what}"));
                // Gradients against the definition: loss = Σ g·y, so dL/dx[i] = Σ g·∂y/∂x[i].
                let g = values(n * co * lout, 4);
                let mut dx = vec![f32::NAN; x.len()];
                c.backward_data(&g, &w, &mut dx);
                let mut want_dx = vec![0.0f64; x.len()];
                let mut want_dw = vec![0.0f64; w.len()];
                for nn in 0..n {
                    for o in 0..co {
                        for j in 0..lout {
                            let gv = g[(nn * co + o) * lout + j] as f64;
                            for ch in 0..ci {
                                for t in 0..k {
                                    let q = (s * j + t) as isize - p as isize;
                                    if q >= 0 && (q as usize) < len {
                                        let xi = (nn * ci + ch) * len + q as usize;
                                        want_dx[xi] += gv * w[(o * ci + ch) * k + t] as f64;
                                        want_dw[(o * ci + ch) * k + t] += gv * x[xi] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
                close(&dx, &want_dx, &format!("input gradient {what}"));
                let mut dw = vec![f32::NAN; w.len()];
                c.backward_weight(&g, &x, &mut dw);
                close(&dw, &want_dw, &format!("weight gradient {what}"));
            }
        }
    }

    #[test]
    fn the_bits_do_not_depend_on_the_thread_count() {
        let c = Conv1d::new(40, 16, 16, 4, 2, 1, 256).unwrap();
        let (x, w) = (values(40 * 16 * 256, 5), values(16 * 16 * 4, 6));
        let g = values(40 * 16 * c.out_len(), 7);
        let run = |threads: usize| {
            let c = Conv1d { threads, ..c };
            let (mut y, mut dx, mut dw) = (vec![0.0; g.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
            c.forward(&x, &w, None, &mut y);
            c.backward_data(&g, &w, &mut dx);
            c.backward_weight(&g, &x, &mut dw);
            [y, dx, dw].concat().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(5));
    }

    #[test]
    fn the_halving_kernels_give_the_same_bits_at_every_width() {
        for (n, ci, co, len) in [(3, 16, 16, 64), (2, 1, 16, 37), (2, 16, 1, 40), (3, 5, 7, 33), (9, 3, 20, 50)] {
            let run = |level| {
                crate::simd::at_level(level, || {
                    let c = Conv1d { threads: 1, ..Conv1d::new(n, ci, co, 4, 2, 1, len).unwrap() };
                    let t = ConvTranspose1d { threads: 1, ..ConvTranspose1d::new(n, co, ci, 4, 2, 1, 0, c.out_len()).unwrap() };
                    let (x, w, b) = (values(n * ci * len, 1), values(co * ci * 4, 2), values(ci.max(co), 3));
                    let g = values(n * co * c.out_len(), 4);
                    let (mut y, mut dx, mut dw, mut z) = (vec![0.0; g.len()], vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; n * ci * t.out_len()]);
                    c.forward(&x, &w, Some(&b[..co]), &mut y);
                    c.backward_data(&g, &w, &mut dx);
                    c.backward_weight(&g, &x, &mut dw);
                    t.forward(&g, &w, Some(&b[..ci]), &mut z);
                    [y, dx, dw, z].concat().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                })
            };
            let baseline = run(crate::simd::Level::Baseline);
            for level in crate::simd::available() {
                assert_eq!(run(level), baseline, "{} differs from the baseline on {n}×{ci}×{len} → {co}", level.name());
            }
        }
    }

    #[test]
    fn the_transposed_convolution_is_the_convolutions_adjoint() {
        // <convT(x), y> = <x, conv(y)> for the same weight, and its gradients follow.
        for (n, ci, co, k, s, p, op, len) in [(3, 4, 2, 4, 2, 1, 0, 12), (3, 4, 2, 4, 2, 1, 1, 12), (2, 3, 5, 3, 2, 1, 1, 7), (2, 2, 3, 5, 3, 2, 2, 6), (20, 16, 16, 4, 2, 1, 0, 128)] {
            let t = ConvTranspose1d::new(n, ci, co, k, s, p, op, len).unwrap();
            let lout = t.out_len();
            let what = format!("{t:?}");
            let (x, w, b) = (values(n * ci * len, 8), values(ci * co * k, 9), values(co, 10));
            let mut y = vec![f32::NAN; n * co * lout];
            t.forward(&x, &w, Some(&b), &mut y);
            let probe = values(n * co * lout, 11);
            let conv = Conv1d { n, ci: co, co: ci, k, stride: s, padding: p, len: lout, threads: 1 };
            assert_eq!(conv.out_len(), len, "{what}");
            let back = direct(&conv, &probe, &w, &vec![0.0; ci]);
            let lhs: f64 = y.iter().zip(&probe).enumerate().map(|(i, (&a, &b2))| (a as f64 - b[(i / lout) % co] as f64) * b2 as f64).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(&a, &b2)| a as f64 * b2).sum();
            assert!((lhs - rhs).abs() < 1e-4 * rhs.abs().max(1.0), "{what}: {lhs} against {rhs}");
            // The input gradient is the convolution of the output gradient.
            let mut dx = vec![f32::NAN; x.len()];
            t.backward_data(&probe, &w, &mut dx);
            close(&dx, &back, &format!("input gradient {what}"));
            // The weight gradient: dL/dw[c, o, t] = Σ x[c, j] · g[o, s·j + t − p].
            let mut dw = vec![f32::NAN; w.len()];
            t.backward_weight(&probe, &x, &mut dw);
            let mut want = vec![0.0f64; w.len()];
            for nn in 0..n {
                for c in 0..ci {
                    for o in 0..co {
                        for tap in 0..k {
                            for j in 0..len {
                                let q = (s * j + tap) as isize - p as isize;
                                if q >= 0 && (q as usize) < lout {
                                    want[(c * co + o) * k + tap] += x[(nn * ci + c) * len + j] as f64 * probe[(nn * co + o) * lout + q as usize] as f64;
                                }
                            }
                        }
                    }
                }
            }
            close(&dw, &want, &format!("weight gradient {what}"));
        }
    }

    #[test]
    fn sizes_pytorch_refuses_are_refused() {
        assert!(Conv1d::new(1, 1, 1, 5, 1, 1, 2).is_none(), "kernel longer than the padded input");
        assert!(Conv1d::new(1, 1, 1, 3, 0, 1, 8).is_none(), "zero stride");
        assert!(ConvTranspose1d::new(1, 1, 1, 4, 2, 1, 2, 8).is_none(), "output padding not below the stride");
        assert!(ConvTranspose1d::new(1, 1, 1, 1, 1, 3, 0, 2).is_none(), "no output positions");
        let mut db = [0.0; 2];
        bias_grad(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 2, 2, &mut db);
        assert_eq!(db, [1.0 + 2.0 + 5.0 + 6.0, 3.0 + 4.0 + 7.0 + 8.0]);
        // Longer rows than the lanes, with a remainder.
        let dy: Vec<f32> = (0..2 * 3 * 37).map(|i| (i % 11) as f32 - 5.0).collect();
        let mut db = [0.0; 3];
        bias_grad(&dy, 3, 37, &mut db);
        for (c, d) in db.iter().enumerate() {
            let want: f32 = dy.chunks_exact(37).enumerate().filter(|(i, _)| i % 3 == c).flat_map(|(_, r)| r).sum();
            assert_eq!(*d, want, "channel {c}");
        }
    }
}
