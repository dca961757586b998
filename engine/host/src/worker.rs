//! Process isolation, the last line of containment: each plugin job runs in a worker process
//! (the engine's own binary, started with a hidden `worker` argument) with its own wasmtime
//! and libtorch, under an OS data-segment limit. Whatever happens in there — an abort, an
//! out-of-memory kill, a segfault, a guest blocked past its deadline — the parent sees a
//! failed job with a reason, and the experiment goes on.
//!
//! The protocol is plain: the parent writes one JSON [`Request`] line, then the job's weights
//! as little-endian `f32`; the worker answers with JSON [`Event`] lines on stdout, the last
//! being [`Event::Done`] (followed by the samples as little-endian `f32`) or
//! [`Event::Failed`]. Everything else the worker prints goes to stderr, whose tail the parent
//! keeps for crash reports.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::code::PluginCode;
use crate::limits::{KILL_MARGIN, Limits};
use crate::plugin::{Conditions, Description, Plugin, PluginError, ProbeTarget, Problem, Role, ZooPlan, ZooView};
use crate::state::MetricRecord;

/// The argument that turns the engine's binary into a worker.
pub const WORKER_ARG: &str = "__worker";

/// Exit code of a worker that stopped itself at a deadline.
const EXIT_DEADLINE: i32 = 70;

/// What the parent asks of a worker. The component's bytes follow the request line (the
/// worker never opens the plugin's file: what was hashed is what runs), then the job's blocks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The plugin's name in messages.
    pub plugin: String,
    /// Where the component was read from (messages only).
    pub path: PathBuf,
    /// SHA-256 of the component bytes that follow; the worker checks them against it.
    pub sha256: String,
    /// Length of the component bytes that follow.
    pub component_bytes: usize,
    pub limits: Limits,
    /// Where compiled components are cached.
    pub cache_dir: Option<PathBuf>,
    pub job: Job,
}

impl Request {
    /// A request to run `job` with the plugin `code` (its bytes go to the worker with it).
    pub fn new(plugin: &str, code: &PluginCode, limits: Limits, cache_dir: Option<PathBuf>, job: Job) -> Self {
        Request { plugin: plugin.to_string(), path: code.path.clone(), sha256: code.sha256.clone(), component_bytes: code.bytes.len(), limits, cache_dir, job }
    }
}

/// Longest line of events the parent reads from a worker: a finished job's metrics (at most
/// [`crate::state::log_caps::METRIC_RECORDS`] short records) and messages fit many times over.
const MAX_EVENT_LINE: u64 = 64 << 20;
/// How much of a worker's stderr the parent keeps (its tail, for crash reports).
const STDERR_TAIL: usize = 4096;

/// One job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// Load the plugin and say what it is.
    Describe,
    /// Fit on the zoo's training checkpoints, then sample each of `conditioning`'s draws.
    /// After the request line come, as `f32`: the weights (rows × `zoo.width()`: the widest
    /// source), then the blocks of [`Conditioning`].
    Run { zoo: ZooView, rows: usize, config: serde_json::Value, seed: u64, sample_seed: u64, conditioning: Conditioning },
    /// Fit a probe on `rows` training models, then predict `predict_rows` others. After the
    /// request line come, as `f32`: the training weights (rows × P), their labels (rows ×
    /// `target.label_columns()`), the training labels' text embeddings (labels ×
    /// `embedding_dim`, when `embedding_dim` > 0), the weights to predict (predict_rows × P)
    /// and the embeddings of the labels to score (`predict_labels` × `embedding_dim`, when
    /// `predict_labels` > 0; else the training labels are scored).
    Probe { zoo: ZooView, rows: usize, target: ProbeTarget, embedding_dim: usize, predict_rows: usize, predict_labels: usize, config: serde_json::Value, seed: u64 },
    /// Load the plugin, say what it is, and `check` each config for its zoo (and probe
    /// target) before anything trains; the problems come back in [`Outcome::problems`], one
    /// list per check.
    Check { checks: Vec<CheckRequest> },
}

/// One config for a plugin's `check`: the zoo it will get and, for a probe, the target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRequest {
    pub zoo: ZooPlan,
    pub target: Option<ProbeTarget>,
    pub config: serde_json::Value,
}

/// The conditions of a run on a task family: set encodings (`support_dim` wide) and instruction
/// embeddings (`instruction_dim` wide; 0: not given), first one row per training checkpoint,
/// then one per target task of every draw, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditioning {
    pub support_dim: usize,
    pub instruction_dim: usize,
    /// What to sample after the one fit, each draw a method's samples. A draw is sampled as
    /// if it were the job's only one (the same seeds), so methods that differ only in what
    /// they draw — a `wrong_condition` control, another sample count — share one fit and get
    /// the samples a job of their own would.
    pub draws: Vec<Draw>,
}

/// One method's samples from a run job's fit: `samples` per task of `tasks`, in order, or
/// `samples` unconditioned ones when `tasks` is empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Draw {
    pub samples: usize,
    pub tasks: Vec<u32>,
}

impl Draw {
    /// The samples this draw returns.
    pub fn total(&self) -> usize {
        self.samples.saturating_mul(self.tasks.len().max(1))
    }
}

impl Conditioning {
    /// Block lengths after the weights: training support, training instructions, target
    /// support, target instructions.
    fn blocks(&self, rows: usize) -> [usize; 4] {
        let t = self.targets();
        [rows * self.support_dim, rows * self.instruction_dim, t * self.support_dim, t * self.instruction_dim]
    }

    /// Target tasks over every draw.
    fn targets(&self) -> usize {
        self.draws.iter().map(|d| d.tasks.len()).sum()
    }

    /// The conditions of `rows` rows from `support` and `instruction` blocks.
    fn view<'a>(&self, support: &'a [f32], instruction: &'a [f32], task: Option<u32>) -> Conditions<'a> {
        Conditions {
            task,
            support: (self.support_dim > 0 && !support.is_empty()).then_some((support, self.support_dim)),
            instruction: (self.instruction_dim > 0 && !instruction.is_empty()).then_some((instruction, self.instruction_dim)),
        }
    }

    /// Total samples a run draws.
    pub fn total(&self) -> usize {
        self.draws.iter().map(Draw::total).fold(0, usize::saturating_add)
    }
}

impl Job {
    /// Lengths of the `f32` blocks that follow the request line, in order.
    fn blocks(&self) -> Vec<usize> {
        match self {
            Job::Describe | Job::Check { .. } => Vec::new(),
            Job::Run { zoo, rows, conditioning, .. } => {
                let mut blocks = vec![rows * zoo.width()];
                blocks.extend(conditioning.blocks(*rows));
                blocks
            }
            Job::Probe { zoo, rows, target, embedding_dim, predict_rows, predict_labels, .. } => {
                let p = zoo.parameters as usize;
                let trained = if *embedding_dim > 0 { target.labels.len() } else { 0 };
                vec![rows * p, rows * target.label_columns(), trained * embedding_dim, predict_rows * p, predict_labels * embedding_dim]
            }
        }
    }

    /// How many `f32` a finished job returns.
    fn values(&self) -> usize {
        match self {
            Job::Describe | Job::Check { .. } => 0,
            Job::Run { zoo, conditioning, .. } => conditioning.total().saturating_mul(zoo.parameters as usize),
            Job::Probe { target, predict_rows, predict_labels, .. } => predict_rows.saturating_mul(target.prediction_columns(if *predict_labels > 0 { *predict_labels } else { target.labels.len() })),
        }
    }

    fn seed(&self) -> u64 {
        match self {
            Job::Run { seed, .. } | Job::Probe { seed, .. } => *seed,
            Job::Describe | Job::Check { .. } => 0,
        }
    }
}

/// What a plugin says about itself, as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DescriptionWire {
    pub name: String,
    pub version: String,
    pub role: String,
    pub about: String,
    pub config_schema: serde_json::Value,
    pub abi: String,
}

impl DescriptionWire {
    fn of(d: &Description) -> Self {
        Self { name: d.name.clone(), version: d.version.clone(), role: crate::role_name(d.role).into(), about: d.about.clone(), config_schema: d.config_schema.clone(), abi: d.abi.clone() }
    }

    /// Back to a [`Description`], checked as plugin text is (see [`Description::checked`]).
    pub fn description(self) -> Result<Description, String> {
        let role = match self.role.as_str() {
            "generator" => Role::Generator,
            "probe" => Role::Probe,
            "baseline" => Role::Baseline,
            other => return Err(format!("unknown role `{}`", crate::untrusted::line(other, 32))),
        };
        Description { name: self.name, version: self.version, role, about: self.about, config_schema: self.config_schema, abi: self.abi }.checked()
    }
}

/// What a worker reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    /// A call into the plugin starts (describe, fit, sample).
    Call {
        call: String,
    },
    Progress {
        done: u32,
        total: u32,
    },
    Described(DescriptionWire),
    /// The worker's peak resident memory (VmHWM), sent just before its last event.
    Memory {
        peak_rss_bytes: u64,
    },
    /// The job is done; `values` little-endian `f32` follow this line.
    Done {
        metrics: Vec<MetricRecord>,
        messages: Vec<String>,
        fit_seconds: f64,
        sample_seconds: f64,
        /// A run job's draws (see [`Conditioning::draws`]): each one's seconds, in order.
        #[serde(default)]
        draw_seconds: Vec<f64>,
        /// A run job's log positions: how many metric records and messages had been logged
        /// when the fit ended and when each draw ended.
        #[serde(default)]
        log_marks: Vec<(usize, usize)>,
        values: usize,
        peak_tensor_bytes: u64,
        /// A check job's problems, one list per check.
        #[serde(default)]
        problems: Vec<Vec<Problem>>,
    },
    Failed {
        call: String,
        reason: String,
    },
}

/// What a finished run job returns.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub samples: Vec<f32>,
    pub metrics: Vec<MetricRecord>,
    pub messages: Vec<String>,
    pub fit_seconds: f64,
    pub sample_seconds: f64,
    /// A run job's draws (see [`Conditioning::draws`]), in order: the samples of each are
    /// its share of `samples`.
    pub draws: Vec<Drawn>,
    /// The most host tensor memory the plugin held at once.
    pub peak_tensor_bytes: u64,
    /// Peak resident memory of the worker process.
    pub peak_rss_bytes: Option<u64>,
    /// A check job's problems, one list per [`CheckRequest`] (bounded again here: the parent
    /// trusts no worker's words more than the plugin's).
    pub problems: Vec<Vec<Problem>>,
}

/// One draw of a run job, as the method whose samples it is sees it.
#[derive(Debug, Clone)]
pub struct Drawn {
    pub seconds: f64,
    /// What the plugin logged in the fit and in this draw (not in the other draws).
    pub metrics: Vec<MetricRecord>,
    pub messages: Vec<String>,
}

/// Each draw's log from a run job's whole log and its marks (`Event::Done::log_marks`): the
/// fit's part, then the draw's own; every part held to the log caps.
fn draw_logs(metrics: &[MetricRecord], messages: &[String], marks: &[(usize, usize)], seconds: &[f64]) -> Vec<Drawn> {
    // A worker's word: positions held inside the log and in order.
    let (mut metric_at, mut message_at) = (0, 0);
    let marks: Vec<(usize, usize)> = marks
        .iter()
        .map(|&(m, s)| {
            metric_at = m.clamp(metric_at, metrics.len());
            message_at = s.clamp(message_at, messages.len());
            (metric_at, message_at)
        })
        .collect();
    let Some(&(fit_metrics, fit_messages)) = marks.first() else { return Vec::new() };
    marks
        .windows(2)
        .zip(seconds)
        .map(|(w, &seconds)| {
            let metrics = metrics[..fit_metrics].iter().chain(&metrics[w[0].0..w[1].0]).cloned().collect();
            let messages = messages[..fit_messages].iter().chain(&messages[w[0].1..w[1].1]).cloned().collect();
            let (metrics, messages) = crate::state::bounded_log(metrics, messages);
            Drawn { seconds, metrics, messages }
        })
        .collect()
}

// ---------------------------------------------------------------- worker side

static STDOUT: Mutex<()> = Mutex::new(());

fn emit(event: &Event, payload: &[u8]) {
    let _guard = STDOUT.lock();
    let mut out = std::io::stdout().lock();
    let line = serde_json::to_string(event).unwrap_or_else(|e| format!("{{\"Failed\":{{\"call\":\"report\",\"reason\":\"{e}\"}}}}"));
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.write_all(payload);
    let _ = out.flush();
}

/// Peak resident memory of process `pid` (`None`: this one), from `/proc/<pid>/status`.
/// (`getrusage`/`wait4` would count the parent's memory too: a child spawned from a large
/// process inherits its high-water mark at exec.)
pub fn peak_rss(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let kib: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Sends the worker's last event, preceded by its peak memory.
fn finish(event: &Event, payload: &[u8]) {
    if let Some(peak_rss_bytes) = peak_rss(None) {
        emit(&Event::Memory { peak_rss_bytes }, &[]);
    }
    emit(event, payload);
}

/// A worker outliving its engine (killed, crashed) would keep the cores busy for nothing: ask
/// the kernel to kill it when the engine goes.
fn die_with_engine() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and changes nothing else.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// Serves tensor-sized allocations from the heap instead of a fresh `mmap` each time. glibc
/// raises its mmap threshold by itself only after large blocks were freed, which a long-lived
/// process may have done but a fresh one has not: without this, every mid-sized tensor costs an
/// mmap, page faults and an munmap (p-diff's training loop in a worker ran about a third
/// slower; a hand-batched PyTorch zoo step 1.6× slower). Workers call it first thing; so does
/// the engine's `main`, for zoo training.
pub fn tune_allocator() {
    // SAFETY: mallopt only changes glibc's allocation policy; it is called before any threads
    // of ours allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as i32);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as i32);
    }
}

/// The mmap and trim thresholds [`tune_allocator`] sets (bytes); `weightlab bench` gives its
/// PyTorch references the same ones (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`).
pub const MMAP_THRESHOLD: usize = 32 << 20;
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Sets the OS limit on this process's data segment (heap and private writable mappings).
fn limit_memory(bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
    // SAFETY: setrlimit reads a plain struct we own; it has no other memory effects.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Stops the worker when a call is past its deadline while the guest is blocked where epoch
/// interruption cannot reach it (a WASI poll such as `sleep`, or one long host operation).
fn watchdog() {
    // Epoch interruption normally ends a late call within a tick; allow it that chance first.
    const GRACE: Duration = Duration::from_millis(300);
    std::thread::Builder::new()
        .name("weightlab-watchdog".into())
        .spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let Some(call) = crate::limits::in_progress() else {
                    continue;
                };
                if Instant::now() < call.deadline + GRACE {
                    continue;
                }
                let place = match call.activity.current() {
                    Some(op) => format!("while blocked in the host (`{op}`)"),
                    None => "while blocked outside its own code (a WASI call such as sleep or poll)".to_string(),
                };
                let reason = format!("time limit {:.0?} exceeded {place} (raise `limits.timeout_secs`)", call.timeout);
                finish(&Event::Failed { call: call.call.to_string(), reason }, &[]);
                // Another thread may be inside libtorch: skip atexit handlers and static
                // destructors, which could wait for it. The event above is already flushed.
                // SAFETY: _exit ends the process at once; nothing after it runs.
                unsafe { libc::_exit(EXIT_DEADLINE) };
            }
        })
        .ok();
}

/// Ends the process with `code`, skipping the C++ static destructors: libtorch's deregister
/// every operator one by one, 0.1 s of CPU at the end of every command and plugin worker (a
/// test run starts hundreds). For the end of a `main`, when everything of ours has been
/// dropped; the two standard streams are flushed here, and the fork server stopped and waited
/// for ([`crate::spawn::stop_fork_server`]).
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    crate::spawn::stop_fork_server();
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process at once; no Rust state outlives it.
    unsafe { libc::_exit(code) }
}

/// The worker's main: reads one request from stdin, runs it, reports on stdout. Returns the
/// process exit code.
pub fn serve() -> i32 {
    die_with_engine();
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut line = String::new();
    let request: Request = match input.read_line(&mut line).map_err(|e| e.to_string()).and_then(|_| serde_json::from_str(&line).map_err(|e| e.to_string())) {
        Ok(r) => r,
        Err(e) => {
            emit(&Event::Failed { call: "load".into(), reason: format!("worker got a bad request: {e}") }, &[]);
            return 2;
        }
    };
    let code = match read_component(&mut input, &request) {
        Ok(code) => code,
        Err(reason) => {
            emit(&Event::Failed { call: "load".into(), reason }, &[]);
            return 2;
        }
    };
    let mut blocks = Vec::new();
    for len in request.job.blocks() {
        let mut bytes = vec![0u8; len * 4];
        if let Err(e) = input.read_exact(&mut bytes) {
            emit(&Event::Failed { call: "load".into(), reason: format!("worker could not read the job's tensors: {e}") }, &[]);
            return 2;
        }
        blocks.push(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>());
    }
    tune_allocator();
    if let Err(e) = limit_memory(request.limits.os_memory_bytes()) {
        eprintln!("weightlab worker: could not set the OS memory limit: {e}");
    }
    watchdog();
    match run(&request, &code, &blocks) {
        Ok(()) => 0,
        Err(e) => {
            finish(&Event::Failed { call: e.call.into(), reason: e.reason }, &[]);
            1
        }
    }
}

/// The component bytes after the request line, checked against the request's hash.
fn read_component(input: &mut impl Read, request: &Request) -> Result<PluginCode, String> {
    if request.component_bytes as u64 > crate::code::MAX_COMPONENT_BYTES {
        return Err(format!("the component is {} bytes, more than a component may have", request.component_bytes));
    }
    let mut bytes = vec![0u8; request.component_bytes];
    input.read_exact(&mut bytes).map_err(|e| format!("worker could not read the component: {e}"))?;
    let code = PluginCode::from_bytes(&request.path, bytes);
    if code.sha256 != request.sha256 {
        return Err(format!("the component the worker received has sha256 {}, not the {} it was sent as", code.sha256, request.sha256));
    }
    Ok(code)
}

fn run(request: &Request, code: &PluginCode, blocks: &[Vec<f32>]) -> Result<(), PluginError> {
    let fail = |call: &'static str, reason: String| PluginError::new(request.plugin.clone(), call, reason);
    let runtime = crate::Runtime::new(request.cache_dir.as_deref()).map_err(|e| fail("load", format!("{e:#}")))?;
    emit(&Event::Call { call: "describe".into() }, &[]);
    let mut plugin = Plugin::load(&runtime, &request.plugin, code, request.limits.clone(), request.job.seed())?;
    emit(&Event::Described(DescriptionWire::of(&plugin.description)), &[]);
    let mut last = Instant::now() - Duration::from_secs(1);
    plugin.on_progress(move |done, total| {
        if done >= total || last.elapsed() >= Duration::from_millis(100) {
            last = Instant::now();
            emit(&Event::Progress { done, total }, &[]);
        }
    });
    let started = Instant::now();
    let fit_seconds;
    let mut problems = Vec::new();
    let (mut draw_seconds, mut log_marks) = (Vec::new(), Vec::new());
    let values = match &request.job {
        Job::Describe => return Ok(()),
        Job::Check { checks } => {
            emit(&Event::Call { call: "check".into() }, &[]);
            fit_seconds = 0.0;
            for check in checks {
                problems.push(plugin.check(&check.zoo, check.target.as_ref(), &check.config)?);
            }
            Vec::new()
        }
        Job::Run { zoo, config, seed, sample_seed, conditioning, .. } => {
            emit(&Event::Call { call: "fit".into() }, &[]);
            plugin.fit(zoo, &blocks[0], &conditioning.view(&blocks[1], &blocks[2], None), config, *seed)?;
            fit_seconds = started.elapsed().as_secs_f64();
            emit(&Event::Call { call: "sample".into() }, &[]);
            log_marks.push(plugin.logged());
            let p = zoo.parameters as usize;
            let (sd, id) = (conditioning.support_dim, conditioning.instruction_dim);
            let mut all = Vec::with_capacity(conditioning.total().saturating_mul(p));
            let mut row = 0;
            for draw in &conditioning.draws {
                let began = Instant::now();
                let samples = draw.samples;
                if draw.tasks.is_empty() {
                    all.extend(plugin.sample(samples, p, *sample_seed, &Conditions::default())?);
                }
                // One call per target task, each with its own row of conditions and seed; every
                // draw starts the seeds again, as a job of its own would.
                for (t, &task) in draw.tasks.iter().enumerate() {
                    let take = |block: &'_ [f32], dim: usize| -> Vec<f32> { block.get(row * dim..(row + 1) * dim).map(<[f32]>::to_vec).unwrap_or_default() };
                    let (support, instruction) = (take(&blocks[3], sd), take(&blocks[4], id));
                    let seed = sample_seed.wrapping_add(0x9E37_79B9 * (t as u64 + 1));
                    all.extend(plugin.sample(samples, p, seed, &conditioning.view(&support, &instruction, Some(task)))?);
                    row += 1;
                }
                draw_seconds.push(began.elapsed().as_secs_f64());
                log_marks.push(plugin.logged());
            }
            all
        }
        Job::Probe { zoo, target, embedding_dim, predict_labels, config, seed, .. } => {
            fn embedded(values: &[f32], dim: usize) -> Option<(&[f32], usize)> {
                (dim > 0 && !values.is_empty()).then_some((values, dim))
            }
            emit(&Event::Call { call: "fit".into() }, &[]);
            plugin.fit_probe(zoo, &blocks[0], &blocks[1], target, embedded(&blocks[2], *embedding_dim), config, *seed)?;
            fit_seconds = started.elapsed().as_secs_f64();
            emit(&Event::Call { call: "predict".into() }, &[]);
            let columns = target.prediction_columns(if *predict_labels > 0 { *predict_labels } else { target.labels.len() });
            plugin.predict(&blocks[3], zoo.parameters as usize, embedded(&blocks[4], *embedding_dim), columns)?
        }
    };
    let sample_seconds = started.elapsed().as_secs_f64() - fit_seconds;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let done = Event::Done {
        metrics: plugin.take_metrics(),
        messages: plugin.take_messages(),
        fit_seconds,
        sample_seconds,
        draw_seconds,
        log_marks,
        values: values.len(),
        peak_tensor_bytes: plugin.peak_tensor_bytes(),
        problems,
    };
    finish(&done, &bytes);
    Ok(())
}

// ---------------------------------------------------------------- parent side

/// Loads and describes the plugin `code` (named `name`) in a worker process started from `exe`.
pub fn describe(exe: &Path, name: &str, code: &PluginCode, limits: Limits) -> Result<Description, PluginError> {
    let request = Request::new(name, code, limits, crate::Runtime::default_cache_dir(), Job::Describe);
    run_in_worker(exe, code, &request, &[], |_, _| {}).map(|(description, _)| description)
}

/// Runs `request` in a worker process started from `exe` (the engine's binary), feeding it the
/// component `code` (which the request was made for) and `payload` (the job's `f32` blocks,
/// concatenated: see [`Job`]); `on_progress` sees the plugin's progress reports. Returns the
/// plugin's description and, for a run job, its outcome. Everything the worker sends is
/// bounded: event lines, the samples (their count is known in advance) and the stderr tail.
pub fn run_in_worker(exe: &Path, code: &PluginCode, request: &Request, payload: &[f32], mut on_progress: impl FnMut(u32, u32)) -> Result<(Description, Option<Outcome>), PluginError> {
    let fail = |call: &str, reason: String| PluginError::new(request.plugin.clone(), leak_call(call), reason);
    if code.sha256 != request.sha256 || code.bytes.len() != request.component_bytes {
        return Err(fail("load", format!("the request names component {}, not the {} given", request.sha256, code.sha256)));
    }
    let mut child = crate::spawn::Worker::start(exe, &crate::tensors::device_name()).map_err(|e| fail("load", format!("cannot start a worker process ({}): {e}", exe.display())))?;
    // Feed the request in its own thread: a worker that dies early must not block us.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let header = serde_json::to_string(request).map_err(|e| fail("load", e.to_string()))?;
    let payload: Vec<u8> = payload.iter().flat_map(|v| v.to_le_bytes()).collect();
    let component = code.bytes.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(header.as_bytes()).and_then(|_| stdin.write_all(b"\n")).and_then(|_| stdin.write_all(&component)).and_then(|_| stdin.write_all(&payload));
    });
    // Keep the tail of stderr for crash reports, reading it as it comes: a worker that prints
    // without end (libtorch warnings in a loop) costs the parent no memory.
    let stderr = child.stderr.take().expect("piped stderr");
    let stderr_tail = std::thread::spawn(move || tail_of(stderr, STDERR_TAIL));
    // Events (and the samples after `Done`) come through a channel, so the deadline is ours.
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<(Event, Vec<u8>)>();
    let expected = request.job.values();
    let reader = std::thread::spawn(move || {
        let mut out = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match out.by_ref().take(MAX_EVENT_LINE).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if !line.ends_with(b"\n") && line.len() as u64 >= MAX_EVENT_LINE => {
                    let reason = format!("the worker sent an event of more than {} MiB; the job was stopped", MAX_EVENT_LINE >> 20);
                    let _ = tx.send((Event::Failed { call: "load".into(), reason }, Vec::new()));
                    break;
                }
                Ok(_) => {}
            }
            let event = match serde_json::from_slice::<Event>(&line) {
                Ok(e) => e,
                Err(e) => {
                    let reason = format!("the worker sent an unreadable event ({e}): {}", String::from_utf8_lossy(&line[..line.len().min(200)]));
                    Event::Failed { call: "load".into(), reason }
                }
            };
            let mut payload = Vec::new();
            if let Event::Done { values, .. } = &event {
                if *values != expected {
                    let reason = format!("returned {values} values where {expected} were asked for");
                    let _ = tx.send((Event::Failed { call: "sample".into(), reason }, Vec::new()));
                    break;
                }
                payload = vec![0u8; values * 4];
                if out.read_exact(&mut payload).is_err() {
                    break;
                }
            }
            if tx.send((event, payload)).is_err() {
                break;
            }
        }
    });

    let mut description = None;
    let mut outcome = None;
    let mut failure: Option<(String, String)> = None;
    let mut call = ("load".to_string(), Instant::now());
    let mut killed = None;
    let mut peak: Option<u64> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((event, payload)) => match event {
                Event::Call { call: c } => call = (c, Instant::now()),
                Event::Progress { done, total } => on_progress(done, total),
                Event::Described(d) => match d.description() {
                    Ok(d) => description = Some(d),
                    Err(reason) => {
                        // Refused by the engine: the worker is not let run the job.
                        failure = failure.or(Some(("describe".into(), reason)));
                        break;
                    }
                },
                Event::Failed { call, reason } => failure = failure.or(Some((call, reason))),
                Event::Memory { peak_rss_bytes } => peak = peak.max(Some(peak_rss_bytes)),
                Event::Done { metrics, messages, fit_seconds, sample_seconds, draw_seconds, log_marks, peak_tensor_bytes, problems, .. } => {
                    let samples = payload.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                    // One draw at most per draw asked for.
                    let asked = match &request.job {
                        Job::Run { conditioning, .. } => conditioning.draws.len(),
                        _ => 0,
                    };
                    let draws = draw_logs(&metrics, &messages, &log_marks[..log_marks.len().min(asked + 1)], &draw_seconds);
                    let (metrics, messages) = crate::state::bounded_log(metrics, messages);
                    let problems = problems.into_iter().take(crate::plugin::MAX_CHECKS).map(crate::plugin::bounded_problems).collect();
                    outcome = Some(Outcome { samples, metrics, messages, fit_seconds, sample_seconds, draws, peak_tensor_bytes, peak_rss_bytes: None, problems });
                }
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Watched from outside too, for a worker that dies without reporting.
                peak = peak.max(peak_rss(Some(child.id())));
                // Loading has its own budget: compiling a component can take a while.
                let budget = request.limits.timeout + KILL_MARGIN + if call.0 == "load" { Duration::from_secs(120) } else { Duration::ZERO };
                if call.1.elapsed() > budget {
                    child.kill();
                    killed = Some(format!("time limit {:.0?} exceeded in {}: the worker did not stop by itself and was killed after {:.1?}", request.limits.timeout, call.0, call.1.elapsed()));
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // A refused description or a stream over its bounds ends the job here; a worker that
    // reported its own failure is ending anyway. Either way, do not wait on its work.
    if failure.is_some() && outcome.is_none() {
        child.kill();
    }
    let status = child.wait();
    peak = peak.max(child.peak_rss_bytes());
    // From here on, every answer carries the worker's peak memory.
    let fail = |call: &str, reason: String| PluginError { peak_rss_bytes: peak, ..fail(call, reason) };
    let _ = writer.join();
    let _ = reader.join();
    let tail = stderr_tail.join().unwrap_or_default();
    if let Some(reason) = killed {
        return Err(fail(&call.0, reason));
    }
    if let Some((c, reason)) = failure {
        return Err(fail(&c, reason));
    }
    let description = match description {
        Some(d) => d,
        None if status.as_ref().is_ok_and(|s| s.success()) => {
            return Err(fail("describe", "the worker ended without describing the plugin".into()));
        }
        None => {
            return Err(fail(&call.0, crash_reason(status, &tail, request.limits.os_memory_bytes())));
        }
    };
    match (&request.job, outcome) {
        (Job::Describe, _) if status.as_ref().is_ok_and(|s| s.success()) => Ok((description, None)),
        (Job::Run { .. } | Job::Probe { .. } | Job::Check { .. }, Some(outcome)) => Ok((description, Some(Outcome { peak_rss_bytes: peak, ..outcome }))),
        _ => Err(fail(&call.0, crash_reason(status, &tail, request.limits.os_memory_bytes()))),
    }
}

/// The last `keep` bytes `from` gives, read in chunks as they come (never more than twice
/// `keep` held), as text.
fn tail_of(mut from: impl Read, keep: usize) -> String {
    let mut tail: Vec<u8> = Vec::with_capacity(2 * keep);
    let mut chunk = vec![0u8; 8192];
    loop {
        match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 2 * keep {
                    tail.drain(..tail.len() - keep);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let start = tail.len().saturating_sub(keep);
    crate::untrusted::text(&String::from_utf8_lossy(&tail[start..]), keep)
}

/// Call names are `&'static str` in [`PluginError`].
fn leak_call(call: &str) -> &'static str {
    match call {
        "describe" => "describe",
        "fit" => "fit",
        "sample" => "sample",
        "predict" => "predict",
        _ => "load",
    }
}

/// Why a worker ended without an answer, the cause first.
fn crash_reason(status: std::io::Result<std::process::ExitStatus>, stderr_tail: &str, os_limit: u64) -> String {
    use std::os::unix::process::ExitStatusExt;
    let limit = crate::budget::Size(os_limit);
    // The telling line: an allocation failure or a panic, else the last thing it printed.
    let lines: Vec<&str> = stderr_tail.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let last = lines.iter().find(|l| l.contains("memory allocation") || l.contains("panicked")).or(lines.last()).copied().unwrap_or("").to_string();
    let detail = if last.is_empty() { String::new() } else { format!("; its last words: {last}") };
    match status {
        Ok(s) => match s.signal() {
            Some(libc::SIGKILL) => format!("worker killed by the OS (SIGKILL), most likely for memory: its limit is {limit}{detail}"),
            Some(libc::SIGABRT) if stderr_tail.contains("memory allocation") => {
                format!("worker ran out of memory (OS limit {limit}) and aborted{detail}")
            }
            Some(libc::SIGABRT) => format!("worker aborted (SIGABRT){detail}"),
            Some(libc::SIGSEGV) => format!("worker crashed: segmentation fault{detail}"),
            Some(sig) => format!("worker ended by signal {sig}{detail}"),
            None => format!("worker exited with status {} without an answer{detail}", s.code().unwrap_or(-1)),
        },
        Err(e) => format!("could not wait for the worker: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tail_of_a_flood_is_kept_and_it_is_clean() {
        let mut flood = "warning: degrees of freedom\n".repeat(400_000).into_bytes();
        flood.extend_from_slice(b"\x1b]0;title\x07last words\n");
        let tail = tail_of(std::io::Cursor::new(flood), 4096);
        assert!(tail.len() <= 4096 && tail.ends_with("]0;titlelast words\n"), "{:?}", &tail[tail.len().saturating_sub(40)..]);
    }

    #[test]
    fn each_draw_keeps_the_fits_log_and_its_own_and_a_workers_marks_stay_inside_the_log() {
        let metric = |name: &str, step: u32| MetricRecord { name: name.into(), step, value: step as f32 };
        let metrics = vec![metric("loss", 0), metric("loss", 1), metric("sample", 0), metric("sample", 1), metric("sample", 2)];
        let messages: Vec<String> = ["fit", "draw 1", "draw 2"].map(String::from).to_vec();
        // The fit logged 2 metrics and a message; draw 1 one metric and a message, draw 2 two
        // metrics and a message.
        let draws = draw_logs(&metrics, &messages, &[(2, 1), (3, 2), (5, 3)], &[0.5, 0.25]);
        assert_eq!(draws.len(), 2);
        assert_eq!(draws[0].metrics, vec![metric("loss", 0), metric("loss", 1), metric("sample", 0)]);
        assert_eq!(draws[1].metrics, vec![metric("loss", 0), metric("loss", 1), metric("sample", 1), metric("sample", 2)]);
        assert_eq!((draws[0].messages.clone(), draws[1].messages.clone()), (vec!["fit".to_string(), "draw 1".into()], vec!["fit".to_string(), "draw 2".into()]));
        assert_eq!((draws[0].seconds, draws[1].seconds), (0.5, 0.25));
        // Marks past the end or going backwards are held inside the log, in order.
        let odd = draw_logs(&metrics, &messages, &[(9, 0), (1, 99)], &[1.0]);
        assert_eq!((odd[0].metrics.len(), odd[0].messages.len()), (5, 3));
        assert!(draw_logs(&metrics, &messages, &[], &[]).is_empty());
    }

    #[test]
    fn a_finished_job_returns_what_was_asked_for() {
        let zoo = ZooView {
            name: "z".into(),
            arch: "mlp".into(),
            layout: Vec::new(),
            parameters: 51,
            checkpoints: Vec::new(),
            dataset: String::new(),
            classes: 3,
            class_names: Vec::new(),
            sources: Vec::new(),
        };
        let run = Job::Run {
            zoo,
            rows: 0,
            config: serde_json::json!({}),
            seed: 0,
            sample_seed: 0,
            conditioning: Conditioning {
                draws: vec![Draw { samples: 4, tasks: vec![1, 2] }, Draw { samples: 3, tasks: vec![2, 1] }, Draw { samples: 5, tasks: Vec::new() }],
                ..Conditioning::default()
            },
        };
        assert_eq!(run.values(), (4 * 2 + 3 * 2 + 5) * 51);
        assert_eq!(Job::Describe.values(), 0);
    }
}
