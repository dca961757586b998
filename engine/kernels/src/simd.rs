//! Hand-written kernels compiled for the widest vectors the CPU has.
//!
//! The hand-written kernels (the zoo engines and their Adam in `weightlab-compute`) are plain
//! Rust loops that the compiler vectorizes; compiled for the x86-64 baseline they get 4-lane SSE. (The matrix
//! products of [`crate::gemm`], which the engines and the aligned distance spend most of their
//! time in, are laid out by hand per width instead.)
//! [`multiversion!`] compiles a function's body again for AVX-512 and for AVX2 (each with FMA)
//! and picks one at run time ([`level`]: measured, see there why). The IEEE operations and
//! their order do not change with the width: Rust never forms fused multiply-adds or
//! reassociates sums by itself, and where a kernel asks for one (`f32::mul_add`, the matrix
//! products of [`crate::gemm`]) it is the same single rounding in hardware and, on the
//! baseline, in the C library's `fmaf`. So results are the same bits on every machine.
//!
//! Why a macro rather than a function taking a closure: the body must be compiled inside each
//! `#[target_feature]` function, which only inlining does, and the optimiser declines to inline
//! a large closure (measured: a CNN step ran entirely on SSE that way). Small functions also
//! compile to better loops than one huge inlined body.

/// `multiversion! { /// docs \n fn name(args) [-> T] { body } }` declares `fn name(args)` that runs
/// `body` compiled for AVX-512 or AVX2 when the CPU has them, and for the baseline otherwise.
/// Helpers the body calls in its loops must be `#[inline(always)]` to be compiled with it.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,fma")]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            {
                match $crate::simd::current() {
                    // SAFETY: `current` says AVX-512F only when the CPU has it.
                    $crate::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `current` says AVX2 only when the CPU has it.
                    $crate::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}

/// The vector width the kernels run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Avx512,
    Avx2,
    Baseline,
}

/// Where the level came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// `WEIGHTLAB_SIMD` asked for it.
    Asked,
    /// Measured on this machine (now, or by an earlier process with this binary: cached).
    Measured,
    /// The only vector width the CPU has (or none).
    Only,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Avx512 => "avx512",
            Level::Avx2 => "avx2",
            Level::Baseline => "baseline",
        }
    }
}

thread_local! {
    /// A level forced on this thread while calibrating.
    static FORCED: std::cell::Cell<Option<Level>> = const { std::cell::Cell::new(None) };
}

/// The level kernels on this thread run at: [`level`], or the one being measured.
pub fn current() -> Level {
    FORCED.with(|f| f.get()).unwrap_or_else(|| level().0)
}

/// The levels this CPU can run, widest first (the baseline always).
pub fn available() -> Vec<Level> {
    let (avx512, avx2) = detected();
    [(avx512, Level::Avx512), (avx2, Level::Avx2), (true, Level::Baseline)].into_iter().filter_map(|(has, level)| has.then_some(level)).collect()
}

/// `f()` with this thread's kernels at `level`: how the calibration and the tests that compare
/// the widths run one. Panics if the CPU lacks `level` (running it would be undefined).
pub fn at_level<T>(level: Level, f: impl FnOnce() -> T) -> T {
    assert!(available().contains(&level), "this CPU cannot run kernels at {}", level.name());
    FORCED.with(|c| c.set(Some(level)));
    let out = f();
    FORCED.with(|c| c.set(None));
    out
}

/// The level the kernels run at, and why. On a CPU with AVX-512 and AVX2 the faster of the two
/// is *measured* ([`calibrate`]) — once per machine and binary, cached in the cache folder
/// (`simd/`, keyed by the CPU model and the binary's size and time) — because the wider one
/// is not always faster: 512-bit vectors lower some cores' clock, AMD's Zen 4 splits them in
/// two, and compiled for `avx512f` from portable loops LLVM may vectorize a kernel across the
/// wrong loop (measured on an AMD EPYC with AVX-512, before [`crate::gemm`]'s kernels were laid
/// out by hand: 47.6 models/s with the AVX-512 build of the MLP zoo against 757 with the AVX2
/// build of the same code). Both give the same bits (the IEEE operations and their order do
/// not change with the width), which the calibration checks before it may pick the wider one. `WEIGHTLAB_SIMD`
/// (`avx512`, `avx2`, `baseline`) overrides it; a level the CPU lacks is never used. Read once
/// per process.
pub fn level() -> (Level, Chosen) {
    static LEVEL: std::sync::OnceLock<(Level, Chosen)> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let (avx512, avx2) = detected();
        match std::env::var("WEIGHTLAB_SIMD").as_deref() {
            Ok("baseline") => return (Level::Baseline, Chosen::Asked),
            Ok("avx512") if avx512 => return (Level::Avx512, Chosen::Asked),
            Ok("avx2") if avx2 => return (Level::Avx2, Chosen::Asked),
            _ => {}
        }
        match (avx512, avx2) {
            (true, true) => (cached_or_measured(), Chosen::Measured),
            (_, true) => (Level::Avx2, Chosen::Only),
            _ => (Level::Baseline, Chosen::Only),
        }
    })
}

/// Whether the CPU has AVX-512 (F, VL, BW, DQ) and AVX2, each with FMA: the matrix kernels
/// ([`crate::gemm`]) add every product with a fused multiply-add.
fn detected() -> (bool, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        let avx512 = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq");
        (avx512 && fma, std::arch::is_x86_feature_detected!("avx2") && fma)
    }
    #[cfg(not(target_arch = "x86_64"))]
    (false, false)
}

/// The vector extensions the kernels could use here, in words.
pub fn isa() -> &'static str {
    match detected() {
        (true, true) => "AVX-512 (F, VL, BW, DQ), AVX2 and FMA",
        (false, true) => "AVX2 and FMA (no AVX-512)",
        _ => "neither AVX2 nor AVX-512 (baseline vectors)",
    }
}

/// One line on the CPU and the kernels' width: model, ISA, the level in use and why.
pub fn describe() -> String {
    let (level, chosen) = level();
    let why = match chosen {
        Chosen::Asked => "asked for by WEIGHTLAB_SIMD".to_string(),
        Chosen::Only => "the widest this CPU has".to_string(),
        Chosen::Measured => match calibrate() {
            Some(c) => {
                format!("measured: AVX-512 {:.2} ms, AVX2 {:.2} ms on the calibration GEMMs{}", c.avx512 * 1e3, c.avx2 * 1e3, if c.same_bits { ", same bits" } else { ", different bits: AVX2 kept" })
            }
            None => "measured".to_string(),
        },
    };
    format!("CPU {}; {}; kernels at {} ({why})", cpu_model(), isa(), level.name())
}

/// The CPU's model name as `/proc/cpuinfo` says it, with its family and model numbers where it
/// gives them ("unknown" elsewhere). A hypervisor may pass a name without its generation ("AMD
/// EPYC" for a Zen 2 and a Zen 4 alike); the numbers still tell it (family 25 model 17: Zen 4),
/// so a record of a figure names the microarchitecture it was measured on.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo").map(|info| cpu_model_of(&info)).unwrap_or_else(|_| "unknown".into())
}

/// [`cpu_model`] of a `/proc/cpuinfo` text (its first processor's fields).
fn cpu_model_of(info: &str) -> String {
    let field = |key: &str| {
        info.lines().take_while(|l| !l.trim().is_empty()).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let name = field("model name").unwrap_or_else(|| "unknown".into());
    match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name} (family {family} model {model})"),
        _ => name,
    }
}

/// The calibration's cache file: one per CPU model and binary (its size and modification time:
/// a rebuilt binary measures again).
fn calibration_file() -> Option<std::path::PathBuf> {
    use std::hash::{Hash, Hasher};
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(&exe).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (cpu_model(), meta.len(), meta.modified().ok()).hash(&mut h);
    Some(weightlab_manifest::files::cache_dir()?.join("simd").join(format!("{:016x}.txt", h.finish())))
}

/// The cached choice, else a new measurement (stored for the next process; a cache that cannot
/// be written only costs the next process the same few milliseconds).
fn cached_or_measured() -> Level {
    let file = calibration_file();
    if let Some(text) = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
        match text.split_whitespace().next() {
            Some("avx512") => return Level::Avx512,
            Some("avx2") => return Level::Avx2,
            _ => {}
        }
    }
    let Some(measured) = calibrate() else { return Level::Avx2 };
    if let Some(file) = file
        && let Some(dir) = file.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let tmp = dir.join(format!(".{}.{}", file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
        let text = format!("{} avx512 {:.3} ms avx2 {:.3} ms same-bits {} cpu {}\n", measured.level.name(), measured.avx512 * 1e3, measured.avx2 * 1e3, measured.same_bits, cpu_model());
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &file);
        }
    }
    measured.level
}

/// What [`calibrate`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    pub level: Level,
    /// Best time of the workload at each width, in seconds.
    pub avx512: f64,
    pub avx2: f64,
    /// Whether both widths gave the same bits (else the narrower one is kept).
    pub same_bits: bool,
}

/// Times the zoo engines' two GEMM kernels ([`crate::gemm`]) on a first layer's shapes (256
/// examples × 784 inputs × 64 units: the forward A·Bᵀ and the weight gradient's panel product)
/// at AVX-512 and at AVX2, best of 5, and picks AVX-512 only when it gives the same bits and is
/// at least 5 % faster. A few milliseconds; the answer is cached by [`level`]. `None` on a CPU
/// without both.
pub fn calibrate() -> Option<Calibration> {
    if detected() != (true, true) {
        return None;
    }
    let (rows, k, units) = (256usize, 784usize, 64usize);
    let a: Vec<f32> = (0..units * k).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-3).collect();
    let x: Vec<f32> = (0..rows * k).map(|i| ((i * 104_729 % 997) as f32) * 1e-3).collect();
    let examples: Vec<&[f32]> = x.chunks_exact(k).collect();
    let run = |level: Level| -> (f64, Vec<f32>) {
        at_level(level, || {
            let mut best = f64::INFINITY;
            let mut out = vec![0f32; units * rows];
            // The weight gradient's shape: (units × rows) panels against rows × k examples.
            let g: Vec<f32> = (0..units * rows).map(|i| ((i * 31 % 101) as f32 - 50.0) * 1e-2).collect();
            let panels = crate::gemm::pack(&g, rows);
            let nc = k.div_ceil(crate::gemm::TILE) * crate::gemm::TILE;
            let padded: Vec<Vec<f32>> = examples.iter().map(|e| e.iter().copied().chain(std::iter::repeat(0.0)).take(nc).collect()).collect();
            let padded: Vec<&[f32]> = padded.iter().map(Vec::as_slice).collect();
            let mut grad = vec![0f32; units * nc];
            for _ in 0..5 {
                let t = std::time::Instant::now();
                crate::gemm::matmul_nt(&a, &examples, k, &mut out, rows);
                crate::gemm::matmul_rows(&panels, &padded, rows, nc, &mut grad);
                best = best.min(t.elapsed().as_secs_f64());
            }
            out.extend(grad);
            (best, out)
        })
    };
    let (avx512, wide) = run(Level::Avx512);
    let (avx2, narrow) = run(Level::Avx2);
    let same_bits = wide.iter().zip(&narrow).all(|(a, b)| a.to_bits() == b.to_bits());
    let level = if same_bits && avx512 < 0.95 * avx2 { Level::Avx512 } else { Level::Avx2 };
    Some(Calibration { level, avx512, avx2, same_bits })
}

pub use crate::multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_is_named_with_its_family_and_model() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model_of(info), "AMD EPYC (family 25 model 17)");
        assert_eq!(cpu_model_of("model name\t: Some CPU\n"), "Some CPU");
        assert_eq!(cpu_model_of(""), "unknown");
        assert!(!cpu_model().is_empty());
    }

    /// The widths compute the same bits (the premise of choosing by speed alone); without
    /// AVX-512 there is nothing to measure.
    #[test]
    fn every_width_gives_the_same_bits_and_the_faster_is_chosen() {
        match calibrate() {
            Some(c) => {
                assert!(c.same_bits, "AVX-512 and AVX2 kernels differ: {c:?}");
                assert!(c.avx512 > 0.0 && c.avx2 > 0.0);
                let faster = if c.avx512 < 0.95 * c.avx2 { Level::Avx512 } else { Level::Avx2 };
                assert_eq!(c.level, faster);
            }
            None => assert_ne!(detected(), (true, true), "a CPU with both widths is calibrated"),
        }
        assert!(describe().contains(level().0.name()));
    }
}
