//! What `[cluster]` values may hold. They are written into `#SBATCH` lines of the job scripts
//! `weightlab submit` generates, and a manifest may come from someone else: a newline would
//! end the comment and become a shell command on the compute node, and some sbatch options
//! (`--export`, `--output`, `--chdir`, …) run code or write files elsewhere. So every value is
//! held to a strict pattern, and extra `sbatch` lines to a list of options that only ask the
//! scheduler for resources or placement.

/// The extra `#SBATCH` options a manifest may add (`sbatch = ["--account=lab"]`).
pub const SBATCH_OPTIONS: &[&str] = &[
    "--account",
    "--qos",
    "--constraint",
    "--exclusive",
    "--nodes",
    "--ntasks-per-node",
    "--mem-per-cpu",
    "--mem-per-gpu",
    "--cpus-per-gpu",
    "--gres",
    "--gpus",
    "--gpu-bind",
    "--nodelist",
    "--exclude",
    "--reservation",
    "--licenses",
    "--hint",
    "--nice",
    "--priority",
    "--requeue",
    "--no-requeue",
    "--mail-type",
    "--mail-user",
    "--comment",
    "--signal",
    "--begin",
    "--deadline",
    "--clusters",
    "--wckey",
    "--threads-per-core",
];

fn all(value: &str, ok: impl Fn(char) -> bool) -> bool {
    !value.is_empty() && value.len() <= 256 && value.chars().all(ok)
}

/// Characters a value may use: what Slurm's names, lists and expressions need, nothing a
/// shell or Slurm's own line parser treats specially (quotes, `$`, backquotes, spaces, `#`).
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.,:@%+-=/[]&|*!".contains(c)
}

/// Why `value` cannot be `[cluster] key` (`None`: it can). `key` is `partition`, `time`, `mem`
/// or `sbatch`.
pub fn value_problem(key: &str, value: &str) -> Option<String> {
    let shown = value.escape_default().to_string();
    match key {
        "partition" if !all(value, |c| c.is_ascii_alphanumeric() || "_.,-".contains(c)) => Some(format!("partition \"{shown}\" is not a Slurm partition name (letters, digits, `_.,-`)")),
        "time" => {
            let upper = value.to_ascii_uppercase();
            let digits_and_separators = all(value, |c| c.is_ascii_digit() || c == ':' || c == '-') && value.starts_with(|c: char| c.is_ascii_digit());
            (!(digits_and_separators || upper == "UNLIMITED" || upper == "INFINITE")).then(|| format!("time \"{shown}\" is not a Slurm time limit (e.g. \"2:00:00\", \"1-00:00:00\", \"90\")"))
        }
        "mem" => {
            let number = value.trim_end_matches(['B', 'b']).trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
            (!all(number, |c| c.is_ascii_digit())).then(|| format!("mem \"{shown}\" is not a Slurm memory size (e.g. \"16G\", \"16000M\")"))
        }
        "sbatch" => {
            let (option, argument) = value.split_once('=').map_or((value, None), |(o, a)| (o, Some(a)));
            if !SBATCH_OPTIONS.contains(&option) {
                return Some(format!("\"{shown}\": `{}` is not an sbatch option a manifest may set (allowed: {})", option.escape_default(), SBATCH_OPTIONS.join(", ")));
            }
            match argument {
                Some(a) if !all(a, plain) => Some(format!("\"{shown}\": the value may hold letters, digits and `_.,:@%+-=/[]&|*!` only")),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::value_problem;

    #[test]
    fn ordinary_values_pass_and_injections_do_not() {
        for (k, v) in [
            ("partition", "gpu,cpu"),
            ("time", "1-00:00:00"),
            ("time", "90"),
            ("mem", "16G"),
            ("mem", "16000"),
            ("sbatch", "--account=lab"),
            ("sbatch", "--exclusive"),
            ("sbatch", "--constraint=a100|h100"),
        ] {
            assert_eq!(value_problem(k, v), None, "{k} = {v}");
        }
        for (k, v) in [
            ("partition", "gpu\ntouch /tmp/pwned"),
            ("time", "1:00:00\nrm -rf ~"),
            ("mem", "16G; curl x"),
            ("sbatch", "--qos=high\necho pwned"),
            ("sbatch", "--export=LD_PRELOAD=/tmp/x.so"),
            ("sbatch", "--output=/home/someone/.bashrc"),
            ("sbatch", "--comment=$(id)"),
            ("partition", ""),
        ] {
            assert!(value_problem(k, v).is_some(), "{k} = {v:?} must be refused");
        }
    }
}
