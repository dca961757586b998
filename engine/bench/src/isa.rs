//! `--isa`: measure on this CPU as one with fewer vector extensions would run.
//!
//! A speed claim must hold on every CPU family the product meets, but a session has one
//! machine. An AVX-512 CPU can run both sides of a bench the way an AVX2-only CPU (an AMD EPYC
//! before Zen 4, most laptops) would: weightlab's kernels at AVX2 (`WEIGHTLAB_SIMD`), and
//! libtorch's own kernels, MKL's and oneDNN's limited to AVX2 by their documented switches
//! (`ATEN_CPU_CAPABILITY`, `MKL_ENABLE_INSTRUCTIONS`, `ONEDNN_MAX_CPU_ISA`). Comparing
//! weightlab's AVX2 kernels against PyTorch at AVX-512 would not measure anything a user sees.
//! What stays this CPU's: its cores, caches, clocks and memory — an emulation of the ISA, not
//! of another microarchitecture, which the records say (`isa_limit` column).
//!
//! The switches are read once, when each library starts, so the bench runs itself again in a
//! child process with them set (the plugin workers and the PyTorch reference inherit them)
//! rather than changing this process's environment after start-up.

use anyhow::{Context, Result, bail};
use weightlab_compute::simd::{Level, available};

/// The variable that tells the child it already runs under the limit (and which).
const MARKER: &str = "WEIGHTLAB_BENCH_ISA";

/// An instruction-set limit for both sides of a bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Isa {
    /// AVX-512 (F, VL, BW, DQ) with AVX2 and FMA: what most Intel Xeons and AMD Zen 4 have.
    Avx512,
    /// AVX2 and FMA, no AVX-512: older AMD EPYCs, most desktop and laptop CPUs.
    Avx2,
}

impl Isa {
    fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
        }
    }

    fn level(self) -> Level {
        match self {
            Isa::Avx512 => Level::Avx512,
            Isa::Avx2 => Level::Avx2,
        }
    }

    /// The switches, as each library documents them.
    fn variables(self) -> [(&'static str, &'static str); 4] {
        match self {
            Isa::Avx512 => [("WEIGHTLAB_SIMD", "avx512"), ("ATEN_CPU_CAPABILITY", "avx512"), ("MKL_ENABLE_INSTRUCTIONS", "AVX512"), ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")],
            Isa::Avx2 => [("WEIGHTLAB_SIMD", "avx2"), ("ATEN_CPU_CAPABILITY", "avx2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2"), ("ONEDNN_MAX_CPU_ISA", "AVX2")],
        }
    }
}

/// With `--isa`, runs this same command again in a child process under the limit and returns
/// its exit code; `None` when the bench is to run here (no `--isa`, or this is that child).
pub fn rerun_limited(isa: Option<Isa>) -> Result<Option<i32>> {
    let Some(isa) = isa else { return Ok(None) };
    if std::env::var(MARKER).is_ok_and(|v| v == isa.name()) {
        return Ok(None);
    }
    if !available().contains(&isa.level()) {
        bail!("--isa {}: this CPU ({}) does not have it, so it cannot be measured here", isa.name(), weightlab_compute::simd::isa());
    }
    let exe = std::env::current_exe().context("finding the weightlab binary to run the bench again under --isa")?;
    let mut command = std::process::Command::new(&exe);
    command.args(std::env::args_os().skip(1)).env(MARKER, isa.name());
    for (name, value) in isa.variables() {
        command.env(name, value);
    }
    let status = command.status().with_context(|| format!("running {} under --isa {}", exe.display(), isa.name()))?;
    Ok(Some(status.code().unwrap_or(1)))
}

/// The limit this bench runs under (`avx2`, `avx512`), or `none`: the records' `isa_limit`.
pub fn limit() -> String {
    std::env::var(MARKER).unwrap_or_else(|_| "none".into())
}

/// The header lines on the machine: CPU, ISA and the kernels' width, then the limit if any.
pub fn header() -> Vec<String> {
    let mut lines = vec![weightlab_compute::simd::describe()];
    if let Ok(name) = std::env::var(MARKER) {
        let set: Vec<String> =
            <Isa as clap::ValueEnum>::value_variants().iter().find(|i| i.name() == name).map(|i| i.variables().iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
        lines.push(format!(
            "ISA limited to {name} on both sides ({}; the plugin workers and the PyTorch reference inherit them): this CPU measured as one with only that ISA would run, its cores, caches and memory unchanged",
            set.join(" ")
        ));
    }
    lines
}
