//! Hand-written kernels compiled for the widest vectors the CPU has.
//!
//! The hand-written kernels ([`crate::zoo`]'s Adam and CNN engine, [`crate::arch::align`]'s
//! unit Gram matrices) are plain Rust loops that the compiler vectorizes; compiled for the
//! x86-64 baseline they get 4-lane SSE.
//! [`multiversion!`] compiles a function's body again for AVX-512 and for AVX2 and picks one at
//! run time. The IEEE operations and their order do not change with the width (Rust never
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
            #[target_feature(enable = "avx512f")]
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
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub(crate) use multiversion;
