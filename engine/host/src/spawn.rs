//! Starting worker processes without paying libtorch's start-up for each one.
//!
//! A worker is the engine's own binary ([`crate::worker`]). Started with `exec`, every worker
//! runs libtorch's static constructors again — some thousands of operators registered and
//! their schemas parsed, about 0.3 s of CPU per process (`perf stat weightlab --version`) —
//! which is more than most `describe` and `check` jobs, and many small fits, cost themselves.
//! So the engine forks a *fork server* first thing in `main` ([`start_fork_server`]), while it
//! has a single thread and has done nothing but that start-up, and forks each worker from it:
//! the same binary in the same state an `exec` would give, without the start-up. Where no
//! server runs (a program that did not start one, a failed fork, a server that died), a worker
//! is started with `exec` as before ([`Worker::start`] falls back by itself).
//!
//! A request carries the worker's standard streams and a status pipe, as `SCM_RIGHTS` over a
//! Unix socket, and the device the worker's tensors go to. The server forks a *reaper* per
//! worker, which forks the worker, writes its pid to the status pipe and, when it ends, its
//! wait status: the engine kills and waits on it as on a child of its own. Every process of
//! the chain asks to be killed when the one before it ends (`PR_SET_PDEATHSIG`), so a killed
//! engine still takes every worker with it.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use rustix::net::{AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType, recvmsg, sendmsg, socketpair};

/// The engine's fork server, once started.
static SERVER: OnceLock<Server> = OnceLock::new();

/// The server's pid and the engine's end of the socket to it (none once stopped).
struct Server {
    pid: libc::pid_t,
    socket: Mutex<Option<OwnedFd>>,
}

/// Whether [`Worker::start`] asks the server (when one runs); `weightlab bench workers` turns
/// it off for the exec side of its comparison.
static FORKING: AtomicBool = AtomicBool::new(true);

/// `WEIGHTLAB_FORK_SERVER=0` starts every worker with exec (to compare, or to rule the server
/// out when something looks wrong).
pub const OFF_VAR: &str = "WEIGHTLAB_FORK_SERVER";

/// Descriptors a request passes: the worker's stdin, stdout and stderr, and the status pipe.
const PASSED: usize = 4;

/// Longest device name a request carries (`cuda:N`).
const MAX_DEVICE: usize = 64;

/// Forks the fork server. Call it first thing in `main`, before any thread starts: a process
/// with other threads is not forked (their locks would be copied held), and workers are then
/// started with `exec`, as they are with [`OFF_VAR`] set to `0`. `worker_main` is what a
/// worker runs (what `main` runs for the worker argument); it returns the exit code.
pub fn start_fork_server(worker_main: fn() -> i32) {
    if SERVER.get().is_some() || threads() != Some(1) || std::env::var_os(OFF_VAR).is_some_and(|v| v == "0") {
        return;
    }
    let Ok((engine_end, server_end)) = socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None) else {
        return;
    };
    // With a standard stream closed, the socket would take its number and what the engine
    // prints would go to the server: no server then. (Rust's runtime reopens closed standard
    // streams on /dev/null before `main`; a program embedding the host may not.)
    if engine_end.as_raw_fd() < 3 || server_end.as_raw_fd() < 3 {
        return;
    }
    // SAFETY: getpid has no preconditions.
    let engine = unsafe { libc::getpid() };
    // SAFETY: this process has one thread (checked above), so the child is a whole copy of it:
    // no lock can be held by a thread that does not exist in the child.
    match unsafe { libc::fork() } {
        0 => {
            drop(engine_end);
            serve(server_end, engine, worker_main)
        }
        pid if pid > 0 => {
            drop(server_end);
            let _ = SERVER.set(Server { pid, socket: Mutex::new(Some(engine_end)) });
        }
        // No fork: workers are started with exec.
        _ => {}
    }
}

/// Stops the fork server and waits for it, which waits for every worker's reaper: the OS then
/// counts the workers' peak memory as the engine's children's (what `wait4` on the engine
/// reports, as it did for workers started with exec). A worker still running is killed. Call
/// it as the engine exits ([`crate::worker::exit_now`] does).
pub fn stop_fork_server() {
    let Some(server) = SERVER.get() else {
        return;
    };
    // Closing our end is the server's signal to finish.
    let socket = server.socket.lock().unwrap_or_else(|e| e.into_inner()).take();
    if socket.is_some() {
        drop(socket);
        let mut status = 0;
        // SAFETY: waitpid on our own child, writing into our integer.
        while unsafe { libc::waitpid(server.pid, &mut status, 0) } < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {}
    }
}

/// Whether this process has a fork server to fork its workers from.
pub fn fork_server_running() -> bool {
    SERVER.get().is_some_and(|s| s.socket.lock().unwrap_or_else(|e| e.into_inner()).is_some())
}

/// Has [`Worker::start`] use the fork server (`true`, the default) or exec, for benchmarks
/// that compare the two in one process.
pub fn use_fork_server(on: bool) {
    FORKING.store(on, Ordering::Relaxed);
}

/// Threads of this process, from `/proc`.
fn threads() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// Ends this process when `parent` ends, and at once if it already has (Linux only; elsewhere
/// nothing). The fork server and its reapers use it, and so do the shards of `run --jobs`,
/// which must not go on computing, or waiting a day for each other, once their command is
/// killed.
pub fn die_with(parent: libc::pid_t) {
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and changes nothing else;
    // getppid has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
    }
}

/// The fork server's loop: one worker per request, until the engine closes its end.
fn serve(socket: OwnedFd, engine: libc::pid_t, worker_main: fn() -> i32) -> ! {
    die_with(engine);
    // The server must not hold the engine's streams open (whoever reads the engine's output
    // waits for their end), and has nothing to say on them.
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    // The server waits for its reapers (so that the OS adds their workers' peak memory to
    // the engine's children's): those that ended, before each request; all, at the end.
    let mut reapers: Vec<libc::pid_t> = Vec::new();
    let finish = |reapers: &[libc::pid_t]| -> ! {
        for &pid in reapers {
            // SAFETY: kill and waitpid on the server's own children. A reaper killed here
            // takes its worker with it (PR_SET_PDEATHSIG): the engine is gone or done.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        // SAFETY: as above; `_exit` ends the process at once.
        unsafe {
            while libc::waitpid(-1, std::ptr::null_mut(), 0) > 0 || io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {}
            libc::_exit(0)
        }
    };
    loop {
        // SAFETY: waitpid on the server's own children, without blocking.
        reapers.retain(|&pid| unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0);
        let mut device = [0u8; MAX_DEVICE];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(PASSED))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = match recvmsg(&socket, &mut [IoSliceMut::new(&mut device)], &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(r) => r,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => finish(&reapers),
        };
        if received.bytes == 0 {
            // The engine is done, or gone.
            finish(&reapers);
        }
        let mut fds: Vec<OwnedFd> = Vec::with_capacity(PASSED);
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(passed) = message {
                fds.extend(passed);
            }
        }
        let device = String::from_utf8_lossy(&device[..received.bytes]).into_owned();
        let Ok(fds) = <[OwnedFd; PASSED]>::try_from(fds) else {
            // A malformed request: dropping what came closes the status pipe, and the engine
            // starts that worker with exec.
            continue;
        };
        // SAFETY: the server has one thread, so the child is a whole copy of it.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: the socket's descriptor is closed once; `reap` never returns, so the
                // OwnedFd is never dropped in this process.
                unsafe { libc::close(socket.as_raw_fd()) };
                reap(fds, &device, worker_main);
            }
            pid if pid > 0 => reapers.push(pid),
            _ => {}
        }
        // The server's copies of the worker's descriptors close here. A failed fork closes the
        // status pipe unwritten, and the engine starts that worker with exec.
    }
}

/// A reaper: forks the worker and reports its pid and, once it ends, its wait status.
fn reap(fds: [OwnedFd; PASSED], device: &str, worker_main: fn() -> i32) -> ! {
    // SAFETY: getppid and getpid have no preconditions.
    let (server, me) = unsafe { (libc::getppid(), libc::getpid()) };
    die_with(server);
    let [stdin, stdout, stderr, status] = fds;
    // SAFETY: the reaper has one thread.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        die_with(me);
        for (fd, to) in [(&stdin, 0), (&stdout, 1), (&stderr, 2)] {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            if unsafe { libc::dup2(fd.as_raw_fd(), to) } < 0 {
                // SAFETY: `_exit` ends the process at once.
                unsafe { libc::_exit(1) }
            }
        }
        drop((stdin, stdout, stderr, status));
        // SAFETY: this process has one thread, so nothing reads the environment meanwhile.
        unsafe { std::env::set_var(crate::tensors::DEVICE_VAR, device) };
        crate::worker::exit_now(worker_main());
    }
    drop((stdin, stdout, stderr));
    let mut status = File::from(status);
    if pid < 0 || status.write_all(&pid.to_le_bytes()).is_err() {
        // SAFETY: `_exit` ends the process at once.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: rusage is plain integers, for which all zeros is a value.
    let (mut wait, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    loop {
        // SAFETY: wait4 writes the status and the resource usage into our own values.
        let r = unsafe { libc::wait4(pid, &mut wait, 0, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
    // Its peak memory too (KiB): a worker that ends within moments is never seen in `/proc`.
    let mut report = wait.to_le_bytes().to_vec();
    report.extend_from_slice(&usage.ru_maxrss.to_le_bytes());
    let _ = status.write_all(&report);
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// A running worker process: its standard streams, and how to kill it and wait for it.
pub struct Worker {
    pid: u32,
    /// The worker's standard streams, to take (as `std::process::Child`'s).
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    end: End,
}

/// How a worker's end is known.
enum End {
    /// Started with exec: a child of the engine.
    Exec(std::process::Child),
    /// Forked by the fork server: its reaper writes the wait status here.
    Forked { status: File, ended: Option<(ExitStatus, u64)> },
}

impl Worker {
    /// Starts a worker of `exe` (the engine's own binary) with tensors on `device`: forked from
    /// the fork server when one runs and `exe` is this binary, else with exec.
    pub fn start(exe: &Path, device: &str) -> io::Result<Worker> {
        if let Some(server) = SERVER.get()
            && FORKING.load(Ordering::Relaxed)
            && is_this_binary(exe)
            && let Ok(worker) = fork_from(&server.socket, device)
        {
            return Ok(worker);
        }
        let mut child = Command::new(exe).arg(crate::worker::WORKER_ARG).env(crate::tensors::DEVICE_VAR, device).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let taken = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = taken else {
            let _ = child.kill();
            return Err(io::Error::other("the worker's streams were not piped"));
        };
        Ok(Worker {
            pid: child.id(),
            stdin: Some(File::from(OwnedFd::from(stdin))),
            stdout: Some(File::from(OwnedFd::from(stdout))),
            stderr: Some(File::from(OwnedFd::from(stderr))),
            end: End::Exec(child),
        })
    }

    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Kills the worker (SIGKILL), unless it has ended and been waited for.
    pub fn kill(&mut self) {
        match &mut self.end {
            End::Exec(child) => {
                let _ = child.kill();
            }
            End::Forked { ended: None, status } => {
                // Its reaper reaps it at once, so its pid is free again once it ended: a status
                // already written means there is nothing left to kill.
                let mut poll = libc::pollfd { fd: status.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: poll reads and writes the one pollfd we own, without waiting; kill
                // sends a signal to the worker we started.
                unsafe {
                    if libc::poll(&mut poll, 1, 0) == 0 {
                        libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
                    }
                }
            }
            End::Forked { .. } => {}
        }
    }

    /// Waits for the worker to end.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        match &mut self.end {
            End::Exec(child) => child.wait(),
            End::Forked { ended: Some((status, _)), .. } => Ok(*status),
            End::Forked { status, ended } => {
                let mut raw = [0u8; 12];
                status.read_exact(&mut raw).map_err(|e| io::Error::new(e.kind(), format!("the worker's reaper ended without its status: {e}")))?;
                let (code, peak_kib) = raw.split_at(4);
                let code = ExitStatus::from_raw(i32::from_le_bytes(code.try_into().unwrap_or_default()));
                let peak = u64::try_from(i64::from_le_bytes(peak_kib.try_into().unwrap_or_default())).unwrap_or(0) * 1024;
                *ended = Some((code, peak));
                Ok(code)
            }
        }
    }

    /// The worker's peak resident memory, once [`Worker::wait`] returned, where the OS told it
    /// (a forked worker's, from its reaper's `wait4`).
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        match self.end {
            End::Forked { ended: Some((_, peak)), .. } if peak > 0 => Some(peak),
            _ => None,
        }
    }
}

/// Whether `exe` names the binary this process runs.
fn is_this_binary(exe: &Path) -> bool {
    exe == Path::new("/proc/self/exe") || std::env::current_exe().is_ok_and(|me| me == exe)
}

/// Asks the fork server for a worker; an error (no server, a server that died or could not
/// fork) leaves nothing behind.
fn fork_from(server: &Mutex<Option<OwnedFd>>, device: &str) -> io::Result<Worker> {
    if device.len() > MAX_DEVICE {
        return Err(io::Error::other("device name too long"));
    }
    let (stdin_r, stdin_w) = io::pipe()?;
    let (stdout_r, stdout_w) = io::pipe()?;
    let (stderr_r, stderr_w) = io::pipe()?;
    let (status_r, status_w) = io::pipe()?;
    {
        let socket = server.lock().unwrap_or_else(|e| e.into_inner());
        let socket = socket.as_ref().ok_or_else(|| io::Error::other("the fork server was stopped"))?;
        let fds = [stdin_r.as_fd(), stdout_w.as_fd(), stderr_w.as_fd(), status_w.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(PASSED))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("no room for the descriptors"));
        }
        sendmsg(socket, &[IoSlice::new(device.as_bytes())], &mut control, SendFlags::NOSIGNAL)?;
    }
    // The worker holds its ends now; ours close, so that its streams end when it does.
    drop((stdin_r, stdout_w, stderr_w, status_w));
    let mut status = File::from(OwnedFd::from(status_r));
    let mut pid = [0u8; 4];
    status.read_exact(&mut pid)?;
    let pid = i32::from_le_bytes(pid);
    if pid <= 0 {
        return Err(io::Error::other("the fork server sent no pid"));
    }
    Ok(Worker {
        pid: pid as u32,
        stdin: Some(File::from(OwnedFd::from(stdin_w))),
        stdout: Some(File::from(OwnedFd::from(stdout_r))),
        stderr: Some(File::from(OwnedFd::from(stderr_r))),
        end: End::Forked { status, ended: None },
    })
}
