//! Hand-written kernels compiled for the widest vectors the CPU has.
//!
//! The hand-written kernels ([`crate::zoo`]'s Adam and CNN engine, [`crate::arch::align`]'s
//! unit Gram matrices) are plain Rust loops that the compiler vectorizes; compiled for the
//! x86-64 baseline they get 4-lane SSE.
//! [`multiversion!`] compiles a function's body again for AVX-512 and for AVX2 and picks one at
//! run time ([`level`]: AVX2 unless asked otherwise, see there why). The IEEE operations and their order do not change with the width (Rust never
//! forms fused multiply-adds or reassociates sums by itself), so results are the same bits on
//! every machine.
//!
//! Why a macro rather than a function taking a closure: the body must be compiled inside each
//! `#[target_feature]` function, which only inlining does, and the optimiser declines to inline
//! a large closure (measured: a CNN step ran entirely on SSE that way). Small functions also
//! compile to better loops than one huge inlined body.

/// `multiversion! { /// docs \n fn name(args) { body } }` declares `fn name(args)` that runs
/// `body` compiled for AVX-512 or AVX2 when the CPU has them, and for the baseline otherwise.
/// Helpers the body calls in its loops must be `#[inline(always)]` to be compiled with it.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq")]
            fn avx512($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            {
                match $crate::simd::level() {
                    // SAFETY: `level` says AVX-512F only when the CPU has it.
                    $crate::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `level` says AVX2 only when the CPU has it.
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

/// The level the kernels run at: AVX2 when the CPU has it — also on AVX-512 CPUs — else the
/// baseline. `WEIGHTLAB_SIMD` overrides it (`avx512`, `avx2`, `baseline`; a level the CPU lacks
/// is never used), for measuring what each width gives on a machine. Read once per process.
///
/// Why not AVX-512 by default: compiled for `avx512f`, LLVM vectorizes the register-tile
/// kernels ([`crate::gemm`]) across the wrong loop, into masked gathers and scatters of the
/// accumulators. Measured on an AMD EPYC with AVX-512 (`weightlab bench zoo --arch mlp`, 64
/// models): 47.6 models/s with the AVX-512 build against 757 with the AVX2 build of the same
/// code (0.25× and 3.84× hand-batched PyTorch in the same runs); the aligned distance was 10×
/// slower, the CNN engine the same. The AVX2 code runs at full speed on AVX-512 CPUs.
pub fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let (avx512, avx2) = (
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq"),
            std::arch::is_x86_feature_detected!("avx2"),
        );
        #[cfg(not(target_arch = "x86_64"))]
        let (avx512, avx2) = (false, false);
        match std::env::var("WEIGHTLAB_SIMD").as_deref() {
            Ok("baseline") => Level::Baseline,
            Ok("avx512") if avx512 => Level::Avx512,
            _ if avx2 => Level::Avx2,
            _ => Level::Baseline,
        }
    })
}

pub(crate) use multiversion;
