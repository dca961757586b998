//! A real Slurm cluster: munged, slurmctld and slurmd (Debian's packages, which the set-up
//! installs) started on localhost with a generated configuration; the quickstart submitted with
//! `weightlab submit --slurm` as chained job arrays and a merge job; the merged results checked
//! against a single-machine run of the same manifest, bit for bit on every stored file.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use weightlab_e2e::{command as weightlab, root, stage_differences};

/// The quickstart at a smaller scale — 100 snapshots instead of 200 (the reference stage
/// compares every pair of them) and shorter p-diff training; every other value as committed.
const SETS: [&str; 3] = ["zoo.snapshots.continue.steps=100", "method.p-diff.config.ae_steps=200", "method.p-diff.config.ddpm_steps=200"];

/// A one-node cluster in a temporary folder; its daemons stop when it is dropped.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    fn start() -> Cluster {
        let dir = tempfile::Builder::new().prefix("wl-slurm").tempdir_in("/tmp").expect("temp dir");
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        for sub in ["munge", "state", "spool"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        let mut key = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key)).expect("a random munge key");
        std::fs::write(d.join("munge/munge.key"), key).unwrap();
        std::fs::set_permissions(d.join("munge/munge.key"), std::fs::Permissions::from_mode(0o400)).unwrap();
        std::fs::set_permissions(d.join("munge"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = d.join("munge/munge.sock");
        let mut cluster = Cluster { dir, daemons: Vec::new() };
        let log = |name: &str| std::fs::File::create(cluster.dir.path().join(name)).unwrap();
        let munged = Command::new("munged")
            .args(["--force", "--foreground"])
            .arg(format!("--key-file={}", d.join("munge/munge.key").display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", d.join("munge/munged.pid").display()))
            .arg(format!("--seed-file={}", d.join("munge/munged.seed").display()))
            .arg(format!("--log-file={}", d.join("munge/munged.log").display()))
            .stdout(log("munged.out"))
            .stderr(log("munged.err"))
            .spawn()
            .expect("start munged");
        cluster.daemons.push(munged);
        wait_for(Duration::from_secs(20), "munged's socket", || socket.exists());

        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let conf = format!(
            "ClusterName=weightlab\nSlurmctldHost=localhost\nSlurmUser=root\nSlurmdUser=root\nSlurmctldPort={}\nSlurmdPort={}\n\
             AuthType=auth/munge\nAuthInfo=socket={}\nCredType=cred/munge\nStateSaveLocation={}\nSlurmdSpoolDir={}\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\nSlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n\
             SchedulerType=sched/backfill\nSchedulerParameters=batch_sched_delay=0\nReturnToService=2\nMpiDefault=none\nJobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\nMinJobAge=3600\n\
             NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\nPartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port(),
            socket.display(),
            d.join("state").display(),
            d.join("spool").display(),
            d = d.display(),
        );
        std::fs::write(cluster.conf(), conf).unwrap();
        let ctld = cluster.command("slurmctld").args(["-D", "-c"]).stdout(log("slurmctld.out")).stderr(log("slurmctld.err")).spawn().expect("start slurmctld");
        cluster.daemons.push(ctld);
        let slurmd = cluster.command("slurmd").args(["-D", "-N", "localhost"]).stdout(log("slurmd.out")).stderr(log("slurmd.err")).spawn().expect("start slurmd");
        cluster.daemons.push(slurmd);
        let ready = || cluster.command("sinfo").args(["-h", "-o", "%T"]).output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle");
        if !wait_until(Duration::from_secs(60), ready) {
            panic!("the node did not come up:\n{}", cluster.logs());
        }
        cluster
    }

    /// The daemons' logs, for failure messages.
    fn logs(&self) -> String {
        ["munged.err", "slurmctld.log", "slurmd.log", "slurmctld.err", "slurmd.err"]
            .iter()
            .map(|f| format!("--- {f}\n{}", std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command("scancel").args(["--user", "root"]).output();
        for d in self.daemons.iter_mut().rev() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

fn wait_for(limit: Duration, what: &str, ok: impl FnMut() -> bool) {
    assert!(wait_until(limit, ok), "timed out waiting for {what}");
}

/// Whether the set-up recorded that it could not install Slurm (the only reason to skip).
fn unavailable() -> Option<String> {
    let cache = std::env::var_os("WEIGHTLAB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("weightlab")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/weightlab")))?;
    std::fs::read_to_string(cache.join("slurm-unavailable")).ok()
}

fn installed(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")]).any(|p| p.join(program).is_file()))
}

#[test]
fn the_quickstart_submitted_to_a_real_slurm_cluster_merges_into_the_local_result() {
    let missing: Vec<&str> = ["munged", "slurmctld", "slurmd", "sbatch", "squeue"].into_iter().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        match unavailable() {
            Some(why) => {
                eprintln!("\n\n!!!!! SKIPPED: the Slurm test: the set-up could not install Slurm ({missing:?} missing):\n{why}\n!!!!!\n");
                return;
            }
            None => panic!("{missing:?} not installed: `make test` installs munge and Slurm (engine/scripts/setup.sh); run it, or install slurmctld slurmd slurm-client munge"),
        }
    }
    let cluster = Cluster::start();
    let out = cluster.dir.path().join("runs");
    let repo = root();
    let manifest = repo.join("experiments/quickstart.toml");
    let m = manifest.to_str().unwrap();
    let mut args = vec!["submit", "--slurm", m, "-o"];
    let slurm_out = out.join("slurm");
    let slurm_out_s = slurm_out.to_str().unwrap().to_string();
    args.push(&slurm_out_s);
    args.extend(["--shards", "4"]);
    for s in SETS {
        args.extend(["--set", s]);
    }
    let started = Instant::now();
    let submitted = weightlab(&repo, &args).env("SLURM_CONF", cluster.conf()).output().expect("weightlab submit");
    let text = String::from_utf8_lossy(&submitted.stderr).to_string();
    assert!(submitted.status.success(), "submit failed:\n{text}\n{}", cluster.logs());
    assert!(text.contains("Submitted") && text.contains("merge"), "{text}");
    // The same manifest on this machine, with the CPUs of one array task (1 thread), run while
    // the cluster works: it fills the seconds Slurm spends between dependent jobs.
    let local = out.join("local");
    let mut local_args = vec!["run", m, "-o", local.to_str().unwrap(), "-q"];
    for s in SETS {
        local_args.extend(["--set", s]);
    }
    let ran_for = Instant::now();
    let local_run =
        weightlab(&repo, &local_args).env("OMP_NUM_THREADS", "1").env("MKL_NUM_THREADS", "1").stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("weightlab run");
    let ids = std::fs::read_to_string(slurm_out.join("slurm/jobs.txt")).expect("jobs.txt");
    let ids: Vec<&str> = ids.lines().collect();
    let pending = || {
        let o = cluster.command("squeue").args(["-h", "-o", "%i %T", "-j", &ids.join(",")]).output().expect("squeue");
        String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.contains("COMPLETED") && !l.contains("FAILED") && !l.contains("CANCELLED")).count()
    };
    if !wait_until(Duration::from_secs(20 * 60), || pending() == 0) {
        panic!("the jobs did not finish in 20 minutes:\n{}", cluster.logs());
    }
    let slurm_secs = started.elapsed().as_secs_f64();
    let merge_id = ids.last().unwrap();
    let state = cluster.command("scontrol").args(["show", "job", merge_id]).output().expect("scontrol");
    let state = String::from_utf8_lossy(&state.stdout).to_string();
    let merge_log = std::fs::read_to_string(slurm_out.join("slurm/logs/merge.out")).unwrap_or_default();
    assert!(state.contains("JobState=COMPLETED"), "the merge job did not complete:\n{state}\n{merge_log}\n{}", cluster.logs());
    assert!(merge_log.contains(" merged, 0 failed") && !merge_log.contains("missing"), "{merge_log}");
    assert!(slurm_out.join("report.html").is_file(), "the merge job rendered the report");
    let logs: Vec<String> = std::fs::read_dir(slurm_out.join("slurm/logs")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(logs.iter().filter(|l| l.starts_with("level-")).count() > 5, "several levels, some as arrays of 4 tasks: {logs:?}");

    // The local run (started beside the cluster's) must have finished too.
    let ran = local_run.wait_with_output().expect("weightlab run");
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let local_secs = ran_for.elapsed().as_secs_f64();
    let diffs = stage_differences(&local, &slurm_out);
    assert!(diffs.is_empty(), "the cluster's results differ from the local run's:\n{}", diffs.join("\n"));
    for method in ["p-diff", "copy", "noise σ=0.05"] {
        for column in ["accuracy", "nn_l2", "novelty"] {
            let (a, b) = (weightlab_e2e::column(&local, "samples", Some(method), column), weightlab_e2e::column(&slurm_out, "samples", Some(method), column));
            assert!(!a.is_empty() && a.iter().zip(&b).all(|(x, y)| x.map(f64::to_bits) == y.map(f64::to_bits)) && a.len() == b.len(), "{method} {column}: {a:?} vs {b:?}");
        }
    }
    eprintln!(
        "quickstart (100 snapshots, p-diff at 200 + 200 steps), both at once on {} CPUs: Slurm, 4 shards per level: {slurm_secs:.1}s from submission to merged report; one process, 1 thread: {local_secs:.1}s",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
}
