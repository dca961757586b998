//! How much memory a piece of work needs, and how much this machine has for it.
//!
//! A manifest can ask for a network no machine holds (`hidden = [100000000]` is a valid list
//! of widths). Allocated blindly, such a zoo ends the engine: an allocation the system refuses
//! aborts the process, and one it over-commits brings the kernel's OOM killer later. So zoo
//! training compares a lower bound of what a unit of work needs with the memory available — to
//! this process's cgroup as well as to the machine, since a container or a Slurm job is often
//! allowed less than the machine has free — and fails that one stage with both figures instead.
//! The bound counts only what training cannot do without; a run refused by it could not have
//! finished.

use std::path::{Path, PathBuf};

/// The sizes of a unit of zoo training that decide its memory.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    /// Models trained at once (one unit of work).
    pub models: usize,
    /// Parameters per model.
    pub parameters: usize,
    /// Checkpoints kept per model until the unit is stored.
    pub kept: usize,
    /// Examples per step.
    pub batch: usize,
    /// Values one example holds across the network's layers (what a backward pass keeps).
    pub activations: usize,
}

impl Training {
    /// Bytes the unit needs at least: per model, its parameters as weights, gradients, Adam's
    /// two moments and initial values, its kept checkpoints, and a batch's activations with
    /// their gradients — all `f32`. Saturates rather than wraps on absurd sizes.
    pub fn bytes(&self) -> u64 {
        let copies = 5 + self.kept as u64;
        let per_model = (self.parameters as u64).saturating_mul(copies).saturating_add((self.batch as u64).saturating_mul(self.activations as u64).saturating_mul(2));
        per_model.saturating_mul(self.models as u64).saturating_mul(4)
    }
}

/// Why `needed` bytes cannot be had, when they cannot: `None` when they fit in what is
/// available, or when this system does not say what that is (not Linux).
pub fn refuse(needed: u64) -> Option<String> {
    let room = available()?;
    (needed > room).then(|| format!("needs at least {} of memory and {} is available", bytes(needed), bytes(room)))
}

/// Bytes this process can still allocate: the machine's available memory, or less where a
/// cgroup (v1 or v2) limits this process or one of its ancestors.
pub fn available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let machine = meminfo_available(&meminfo)?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|c| cgroup_room(Path::new("/sys/fs/cgroup"), &c));
    Some(cgroup.map_or(machine, |c| c.min(machine)))
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn meminfo_available(meminfo: &str) -> Option<u64> {
    let kib = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The files a cgroup version keeps its limit, its use and its file cache in.
struct Files {
    /// Where the hierarchy is mounted, under the cgroup root.
    mount: &'static str,
    limit: &'static str,
    usage: &'static str,
    /// The `memory.stat` key of file cache the kernel would drop first.
    cache: &'static str,
}

const V2: Files = Files { mount: "", limit: "memory.max", usage: "memory.current", cache: "inactive_file" };
const V1: Files = Files { mount: "memory", limit: "memory.limit_in_bytes", usage: "memory.usage_in_bytes", cache: "total_inactive_file" };

/// The least room of the cgroups named in `self_cgroup` (the text of `/proc/self/cgroup`: v2's
/// `0::/path`, v1's `N:memory:/path`) and their ancestors under `root`: the limit less what the
/// cgroup uses other than file cache the kernel would drop first (as container runtimes count
/// a working set); `None` when none sets a limit.
fn cgroup_room(root: &Path, self_cgroup: &str) -> Option<u64> {
    let mut least: Option<u64> = None;
    for line in self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let files = match controllers {
            "" => &V2,
            c if c.split(',').any(|c| c == "memory") => &V1,
            _ => continue,
        };
        let top = root.join(files.mount);
        let mut dir: PathBuf = top.join(path.trim().trim_start_matches('/'));
        while dir.starts_with(&top) {
            let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok().and_then(|t| t.trim().parse::<u64>().ok());
            // v2's `max` does not parse (no limit); v1 says so with a number near 2^63.
            if let (Some(max), Some(used)) = (read(files.limit).filter(|&m| m < 1 << 62), read(files.usage)) {
                let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
                let cache = stat.lines().find_map(|l| l.strip_prefix(files.cache)?.strip_prefix(' ')?.trim().parse::<u64>().ok()).unwrap_or(0);
                let room = max.saturating_sub(used.saturating_sub(cache));
                least = Some(least.map_or(room, |l| l.min(room)));
            }
            if !dir.pop() {
                break;
            }
        }
    }
    least
}

/// `n` bytes for people: `3.5 TiB`, `22.1 GiB`, `512 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_needs_its_parameters_several_times_over_and_its_activations() {
        let unit = Training { models: 64, parameters: 1000, kept: 1, batch: 32, activations: 100 };
        assert_eq!(unit.bytes(), 64 * 4 * (1000 * 6 + 32 * 100 * 2));
        let absurd = Training { models: 64, parameters: usize::MAX / 2, kept: 1000, batch: 32, activations: usize::MAX };
        assert_eq!(absurd.bytes(), u64::MAX, "saturates");
    }

    #[test]
    fn what_is_available_comes_from_meminfo_and_the_tightest_cgroup() {
        assert_eq!(meminfo_available("MemTotal: 100 kB\nMemAvailable:    2048 kB\n"), Some(2 * 1024 * 1024));
        assert_eq!(meminfo_available("MemTotal: 100 kB\n"), None);
        let root = tempfile::tempdir().unwrap();
        let job = root.path().join("slurm/job_7");
        std::fs::create_dir_all(&job).unwrap();
        // The job has no limit of its own; its parent allows 10 GiB and holds 4.
        std::fs::write(job.join("memory.max"), "max\n").unwrap();
        std::fs::write(job.join("memory.current"), "1000\n").unwrap();
        std::fs::write(root.path().join("slurm/memory.max"), format!("{}\n", 10u64 << 30)).unwrap();
        std::fs::write(root.path().join("slurm/memory.current"), format!("{}\n", 4u64 << 30)).unwrap();
        assert_eq!(cgroup_room(root.path(), "0::/slurm/job_7\n"), Some(6 << 30));
        // 1 GiB of the 4 is file cache nobody is using: the kernel drops it before refusing.
        std::fs::write(root.path().join("slurm/memory.stat"), format!("anon 100\ninactive_file {}\nactive_file 5\n", 1u64 << 30)).unwrap();
        assert_eq!(cgroup_room(root.path(), "0::/slurm/job_7\n"), Some(7 << 30));
        assert_eq!(cgroup_room(root.path(), "0::/elsewhere\n"), None, "no limit anywhere");
        assert_eq!(cgroup_room(root.path(), "1:memory:/v1-only\n"), None);
        // cgroup v1: its own files under `memory/`; "no limit" is a number near 2^63.
        let v1 = root.path().join("memory/process_api/x");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "5000\n").unwrap();
        assert_eq!(cgroup_room(root.path(), "4:memory:/process_api/x\n0::/\n"), None);
        std::fs::write(v1.join("memory.limit_in_bytes"), format!("{}\n", 2u64 << 30)).unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), format!("{}\n", 1u64 << 30)).unwrap();
        std::fs::write(v1.join("memory.stat"), "cache 9\ntotal_inactive_file 1024\n").unwrap();
        assert_eq!(cgroup_room(root.path(), "5:cpu,memory:/process_api/x\n"), Some((1 << 30) + 1024));
        // Both: the tighter.
        assert_eq!(cgroup_room(root.path(), "4:memory:/process_api/x\n0::/slurm/job_7\n"), Some((1 << 30) + 1024));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(5 << 40), "5.0 TiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB", "the largest unit stretches");
    }
}
