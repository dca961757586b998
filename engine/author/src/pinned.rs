//! Reproducible Python builds: the build tool runs under a tracer that pins what it learns from
//! the machine.
//!
//! componentize-py snapshots the memory of a CPython interpreter after it imported the plugin.
//! What that interpreter learnt from the build machine while importing — file-status results
//! (inode numbers, devices, times), the order of directory listings, entropy, the clocks — is
//! in the snapshot. wasmtime answers the file and entropy questions with raw system calls
//! (cap-std over rustix), which no `LD_PRELOAD` shim can reach, so the tool runs under
//! `ptrace`, and a seccomp filter stops it at exactly those calls, whose answers the tracer
//! rewrites with values that depend only on the build's inputs:
//! - `stat`, `lstat`, `fstat`, `newfstatat`, `statx`: times become one fixed instant, the device
//!   one fixed number, an inode a hash of the path the file was first seen at (with the build's
//!   temporary folders written alike), the block count what the size needs;
//! - `getdents64`: a directory lists in byte order of its names, whatever the file system's;
//! - `getrandom`: a fixed stream.
//!
//! The clocks are read through the vDSO, which a tracer cannot see, and which the compiler's
//! threads read hundreds of thousands of times per build; `pinned_clock.c`, preloaded, answers
//! the main thread (where the interpreter runs) from a clock that starts at the fixed instant.
//!
//! Nothing else is touched: file contents, sizes and modes are the real ones. Linux on x86-64
//! only (the register and structure layouts are that ABI's); elsewhere the tool runs as it is
//! and its output varies as upstream's does (componentize-py#247).

use std::io;
use std::path::Path;
use std::process::{Command, ExitStatus};

/// Turns pinning off: a build then runs as upstream's does and says it is not reproducible.
/// For a system where tracing misbehaves; `0` turns it off.
pub const OFF_VAR: &str = "WEIGHTLAB_REPRODUCIBLE_BUILDS";

/// How a build ran.
pub enum Pinning {
    /// Traced: its output depends only on its inputs.
    Pinned,
    /// Not traced, and why.
    Unpinned(String),
}

/// Runs the command `make` gives to completion, its file-status, directory, entropy and clock
/// readings answered reproducibly. `root` is the build's own folder (the clock library is
/// written there) and `tool` the folder the build tool is installed in: paths under either
/// hash alike wherever they are. Where this platform, the system
/// (ptrace or seccomp not permitted, the engine itself traced) or [`OFF_VAR`] rules pinning
/// out, the command runs as it is, and [`Pinning::Unpinned`] says why.
pub fn status(make: &dyn Fn() -> Command, root: &Path, tool: &Path) -> io::Result<(ExitStatus, Pinning)> {
    if std::env::var_os(OFF_VAR).is_some_and(|v| v == "0") {
        return Ok((make().status()?, Pinning::Unpinned(format!("{OFF_VAR}=0"))));
    }
    match imp::status(&mut make(), root, tool) {
        Ok((status, None)) => Ok((status, Pinning::Pinned)),
        Ok((status, Some(why))) => Ok((status, Pinning::Unpinned(why))),
        // Not started traced, or the tracer failed (the tool was killed): run it as it is.
        Err(why) => Ok((make().status()?, Pinning::Unpinned(why))),
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    use super::*;
    pub fn status(_command: &mut Command, _root: &Path, _tool: &Path) -> Result<(ExitStatus, Option<String>), String> {
        Err("builds are pinned on Linux on x86-64 only".into())
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use std::collections::HashMap;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::path::Path;
    use std::process::{Command, ExitStatus};

    use sha2::{Digest, Sha256};

    /// The instant every file time and the clock's start are pinned to (2001-09-09): after
    /// 1980, so a tool that zips what it stats never meets a time ZIP cannot hold.
    const EPOCH: i64 = 1_000_000_000;
    const DEVICE: u64 = 0x2a;

    /// The system calls the tracer answers or follows (descriptors that end or are reused end
    /// a directory listing); the seccomp filter lets every other call run without a stop.
    const TRACED: [i64; 17] = [
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_getdents64,
        libc::SYS_getrandom,
        libc::SYS_close,
        libc::SYS_lseek,
        libc::SYS_open,
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_dup,
        libc::SYS_dup2,
        libc::SYS_dup3,
        libc::SYS_fcntl,
        libc::SYS_close_range,
    ];
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

    /// A classic-BPF seccomp program: `SECCOMP_RET_TRACE` for the calls in `TRACED`, allow
    /// everything else.
    fn filter() -> Vec<libc::sock_filter> {
        let op = |code: u32, jt: usize, jf: usize, k: u32| libc::sock_filter { code: code as u16, jt: jt as u8, jf: jf as u8, k };
        let n = TRACED.len();
        let mut program = vec![
            op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 4),
            op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, n + 1, AUDIT_ARCH_X86_64),
            op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        ];
        program.extend(TRACED.iter().enumerate().map(|(i, &nr)| op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, n - i, 0, nr as u32)));
        program.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW));
        program.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_TRACE));
        program
    }

    /// `pinned_clock.c`, compiled by the build script.
    const CLOCK: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pinned_clock.so"));

    /// Runs `command` traced: its exit status, and why its output may vary if some answer
    /// could not be pinned; `Err` (why) when it could not be started traced or the tracer
    /// failed (the tool is then killed).
    pub fn status(command: &mut Command, root: &Path, tool: &Path) -> Result<(ExitStatus, Option<String>), String> {
        let clock = root.join("pinned_clock.so");
        std::fs::write(&clock, CLOCK).map_err(|e| format!("writing {}: {e}", clock.display()))?;
        let mut preload = clock.into_os_string();
        if let Some(theirs) = std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
            preload.push(" ");
            preload.push(theirs);
        }
        command.env("LD_PRELOAD", preload);
        let program = filter();
        // SAFETY: between fork and exec the child only makes system calls (no allocation, no
        // locks): it asks to be traced by its parent and installs the seccomp filter, which
        // its exec'd program and everything it starts inherit.
        unsafe {
            command.pre_exec(move || {
                let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
                if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0
                    || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
                    || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog) < 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| format!("the build tool could not be traced: {e}; weightlab may itself be traced, or this system does not permit ptrace or seccomp"))?;
        let pid = child.id() as libc::pid_t;
        let mut tracer = Tracer::new(root, tool);
        let status = tracer.trace(pid).map_err(|e| {
            // SAFETY: plain system calls on our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
            }
            format!("tracing the build tool failed ({e})")
        })?;
        let missed = (tracer.missed > 0).then(|| format!("{} of its system calls could not be answered reproducibly", tracer.missed));
        Ok((status, missed))
    }

    /// One traced thread's system call in flight.
    #[derive(Clone, Copy)]
    struct Call {
        nr: i64,
        args: [u64; 6],
    }

    /// A file as the file system knows it: device, inode and status-change time (seconds and
    /// nanoseconds). The time tells a file from a later one that reuses a deleted file's inode.
    type File = (u64, u64, i64, i64);

    /// A directory being listed: its entries, sorted and encoded, and how far the reader is.
    struct Listing {
        entries: Vec<Vec<u8>>,
        next: usize,
    }

    struct Tracer {
        /// Folders whose paths are written alike wherever they are: (real path, stand-in).
        folders: [(String, &'static str); 2],
        /// The system call each thread is in (between its entry and exit stops).
        calls: HashMap<libc::pid_t, Call>,
        /// Thread id → process id, for descriptors (shared by a process's threads).
        processes: HashMap<libc::pid_t, libc::pid_t>,
        /// A real file (device, inode, status-change time) → the inode shown.
        inodes: HashMap<File, u64>,
        listings: HashMap<(libc::pid_t, i32), Listing>,
        random: u64,
        /// Answers that could not be rewritten for a task that was still there.
        missed: usize,
    }

    impl Tracer {
        fn new(root: &Path, tool: &Path) -> Tracer {
            let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf()).to_string_lossy().into_owned();
            Tracer {
                folders: [(real(root), "/build"), (real(tool), "/tool")],
                calls: HashMap::new(),
                processes: HashMap::new(),
                inodes: HashMap::new(),
                listings: HashMap::new(),
                random: 0,
                missed: 0,
            }
        }

        fn trace(&mut self, root_pid: libc::pid_t) -> io::Result<ExitStatus> {
            let mut status = 0;
            // The child stops with SIGTRAP once its exec succeeded.
            // SAFETY: waitpid on our own child.
            if unsafe { libc::waitpid(root_pid, &mut status, libc::__WALL) } < 0 {
                return Err(io::Error::last_os_error());
            }
            if !libc::WIFSTOPPED(status) {
                return Ok(ExitStatus::from_raw(status));
            }
            let options = libc::PTRACE_O_TRACESYSGOOD
                | libc::PTRACE_O_TRACESECCOMP
                | libc::PTRACE_O_TRACECLONE
                | libc::PTRACE_O_TRACEFORK
                | libc::PTRACE_O_TRACEVFORK
                | libc::PTRACE_O_TRACEEXEC
                | libc::PTRACE_O_EXITKILL;
            ptrace(libc::PTRACE_SETOPTIONS, root_pid, 0, options as u64)?;
            self.processes.insert(root_pid, root_pid);
            ptrace(libc::PTRACE_CONT, root_pid, 0, 0)?;
            loop {
                // SAFETY: waitpid with a valid status pointer.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
                if pid < 0 {
                    let error = io::Error::last_os_error();
                    if error.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(error);
                }
                if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                    self.calls.remove(&pid);
                    self.processes.remove(&pid);
                    if pid == root_pid {
                        return Ok(ExitStatus::from_raw(status));
                    }
                    continue;
                }
                if !libc::WIFSTOPPED(status) {
                    continue;
                }
                let (signal, event) = (libc::WSTOPSIG(status), (status >> 16) & 0xff);
                let known = self.processes.contains_key(&pid);
                if !known {
                    self.processes.insert(pid, process_of(pid));
                }
                let mut deliver = 0;
                if signal == libc::SIGTRAP | 0x80 || (signal == libc::SIGTRAP && event == libc::PTRACE_EVENT_SECCOMP) {
                    // A thread can vanish between its stop and our look (another thread exec'd or
                    // the process was killed): what failed for it is moot.
                    if let Err(e) = self.on_syscall(pid)
                        && e.raw_os_error() != Some(libc::ESRCH)
                    {
                        self.missed += 1;
                    }
                } else if signal == libc::SIGTRAP && event == libc::PTRACE_EVENT_EXEC {
                    // After exec the thread leader has the pid of the thread that called it.
                    self.calls.remove(&pid);
                    self.processes.insert(pid, pid);
                    self.listings.retain(|&(process, _), _| process != pid);
                } else if signal == libc::SIGTRAP && event != 0 {
                    // Fork, vfork or clone: the new task announces itself with its own stop.
                } else if signal == libc::SIGSTOP && !known {
                    // A new task's first stop.
                } else {
                    deliver = signal as u64;
                }
                // A task in a traced call runs to that call's exit stop; any other runs to the
                // filter's next stop. One that died since its stop cannot be resumed; its exit
                // comes next.
                let request = if self.calls.contains_key(&pid) { libc::PTRACE_SYSCALL } else { libc::PTRACE_CONT };
                let _ = ptrace(request, pid, 0, deliver);
            }
        }

        fn on_syscall(&mut self, pid: libc::pid_t) -> io::Result<()> {
            // SAFETY: ptrace_syscall_info is plain data the kernel fills up to the given size.
            let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
            ptrace(libc::PTRACE_GET_SYSCALL_INFO, pid, std::mem::size_of_val(&info) as u64, &mut info as *mut _ as u64)?;
            match info.op {
                libc::PTRACE_SYSCALL_INFO_SECCOMP => {
                    // SAFETY: the kernel filled the seccomp member for a seccomp stop.
                    let entry = unsafe { info.u.seccomp };
                    self.calls.insert(pid, Call { nr: entry.nr as i64, args: entry.args });
                    Ok(())
                }
                libc::PTRACE_SYSCALL_INFO_EXIT => {
                    // SAFETY: the kernel filled the exit member for an exit stop.
                    let exit = unsafe { info.u.exit };
                    match self.calls.remove(&pid) {
                        Some(call) if exit.is_error == 0 => self.on_return(pid, call, exit.sval),
                        _ => Ok(()),
                    }
                }
                _ => Ok(()),
            }
        }

        fn on_return(&mut self, pid: libc::pid_t, call: Call, value: i64) -> io::Result<()> {
            let [a0, a1, a2, _, a4, _] = call.args;
            let process = self.processes.get(&pid).copied().unwrap_or(pid);
            match call.nr {
                libc::SYS_stat | libc::SYS_lstat => {
                    let path = self.path_at(pid, libc::AT_FDCWD as u64, a0)?;
                    self.pin_stat(pid, a1, &path)
                }
                libc::SYS_fstat => {
                    let path = descriptor_path(pid, a0);
                    self.pin_stat(pid, a1, &path)
                }
                libc::SYS_newfstatat => {
                    let path = self.path_at(pid, a0, a1)?;
                    self.pin_stat(pid, a2, &path)
                }
                libc::SYS_statx => {
                    let path = self.path_at(pid, a0, a1)?;
                    self.pin_statx(pid, a4, &path)
                }
                libc::SYS_getdents64 => self.list(pid, process, a0 as i32, a1, a2 as usize),
                libc::SYS_getrandom => {
                    let bytes: Vec<u8> = (0..value as u64)
                        .map(|_| {
                            self.random = self.random.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            (self.random >> 33) as u8
                        })
                        .collect();
                    write(pid, a0, &bytes)
                }
                libc::SYS_close => {
                    self.listings.remove(&(process, a0 as i32));
                    Ok(())
                }
                libc::SYS_close_range => {
                    self.listings.retain(|&(owner, fd), _| owner != process || (fd as u32 as u64) < a0 || (fd as u32 as u64) > a1);
                    Ok(())
                }
                libc::SYS_lseek => {
                    if let Some(listing) = self.listings.get_mut(&(process, a0 as i32))
                        && a2 == libc::SEEK_SET as u64
                    {
                        listing.next = a1 as usize;
                    }
                    Ok(())
                }
                libc::SYS_open | libc::SYS_openat | libc::SYS_openat2 | libc::SYS_dup | libc::SYS_dup2 | libc::SYS_dup3 | libc::SYS_fcntl => {
                    // A new descriptor with a number a listing had: that listing is over.
                    if call.nr != libc::SYS_fcntl || a1 == libc::F_DUPFD as u64 || a1 == libc::F_DUPFD_CLOEXEC as u64 {
                        self.listings.remove(&(process, value as i32));
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        }

        /// The path a `*at` call named: `path` (a pointer into the tracee) relative to `dirfd`.
        fn path_at(&self, pid: libc::pid_t, dirfd: u64, path: u64) -> io::Result<String> {
            let name = if path == 0 { String::new() } else { read_string(pid, path)? };
            if name.starts_with('/') {
                return Ok(name);
            }
            let base =
                if dirfd as i32 == libc::AT_FDCWD { std::fs::read_link(format!("/proc/{pid}/cwd")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default() } else { descriptor_path(pid, dirfd) };
            Ok(if name.is_empty() { base } else { format!("{base}/{name}") })
        }

        /// The inode shown for a real file first seen at `path`: the hash of that path, so
        /// another path to the same file (a link) shows the same inode.
        fn inode(&mut self, file: File, path: &str) -> u64 {
            if let Some(&shown) = self.inodes.get(&file) {
                return shown;
            }
            let shown = self.path_hash(path);
            self.inodes.insert(file, shown);
            shown
        }

        /// The hash of `path` as it would be in any folder ([`Tracer::normalise`]).
        fn path_hash(&self, path: &str) -> u64 {
            hash(&self.normalise(path))
        }

        /// `path` as it would be in any folder: the build folder as `/build`, the tool's as
        /// `/tool`, and the random part of a temporary folder's name (`.tmpXXXXXX`, as the
        /// tempfile crate and Python's tempfile make them) dropped.
        fn normalise(&self, path: &str) -> String {
            let mut path = path.to_string();
            for (real, stand_in) in &self.folders {
                if let Some(rest) = path.strip_prefix(real.as_str()).filter(|rest| rest.is_empty() || rest.starts_with('/')) {
                    path = format!("{stand_in}{rest}");
                    break;
                }
            }
            let random =
                |part: &str, prefix: &str, len: usize| part.len() == prefix.len() + len && part.starts_with(prefix) && part[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            path.split('/').map(|part| if random(part, ".tmp", 6) || random(part, "tmp", 8) { "tmp" } else { part }).collect::<Vec<_>>().join("/")
        }

        /// Rewrites a `struct stat` (x86-64: dev 0, ino 8, nlink 16, blksize 56, blocks 64,
        /// atime 72, mtime 88, ctime 104; each time seconds then nanoseconds).
        fn pin_stat(&mut self, pid: libc::pid_t, at: u64, path: &str) -> io::Result<()> {
            let mut s = read_exact(pid, at, std::mem::size_of::<libc::stat>())?;
            let inode = self.inode((get(&s, 0), get(&s, 8), get(&s, 104) as i64, get(&s, 112) as i64), path);
            let size = pinned_size(get(&s, 24) as u32, get(&s, 48));
            for (offset, value) in [(0, DEVICE), (8, inode), (16, 1), (48, size), (56, 4096), (64, size.div_ceil(512))] {
                put(&mut s, offset, value);
            }
            for time in [72, 88, 104] {
                put(&mut s, time, EPOCH as u64);
                put(&mut s, time + 8, 0);
            }
            write(pid, at, &s)
        }

        /// Rewrites a `struct statx` (mask 0, blksize 4, attributes 8, nlink 16, ino 32, size
        /// 40, blocks 48, attributes_mask 56, atime 64, btime 80, ctime 96, mtime 112, dev
        /// major 136 and minor 140, mnt_id 144, then what newer kernels add, up to 256).
        fn pin_statx(&mut self, pid: libc::pid_t, at: u64, path: &str) -> io::Result<()> {
            let mut s = read_exact(pid, at, 256)?;
            let device = (get(&s, 136) & 0xffff_ffff) << 32 | get(&s, 140) & 0xffff_ffff;
            let inode = self.inode((device, get(&s, 32), get(&s, 96) as i64, get(&s, 104) as u32 as i64), path);
            let size = pinned_size(get(&s, 28) as u16 as u32, get(&s, 40));
            // What was filled: the basic fields, the birth time and the mount id, on any kernel.
            s[0..8].copy_from_slice(&[0xff, 0x1f, 0, 0, 0, 16, 0, 0]);
            for (offset, value) in [(8, 0), (16, 1), (32, inode), (40, size), (48, size.div_ceil(512)), (56, 0), (136, DEVICE << 32), (144, 1)] {
                put(&mut s, offset, value);
            }
            for time in [64, 80, 96, 112] {
                put(&mut s, time, EPOCH as u64);
                put(&mut s, time + 8, 0);
            }
            s[152..].fill(0);
            write(pid, at, &s)
        }

        /// Answers a `getdents64` from the directory's own listing in name order.
        fn list(&mut self, pid: libc::pid_t, process: libc::pid_t, fd: i32, at: u64, room: usize) -> io::Result<()> {
            if !self.listings.contains_key(&(process, fd)) {
                let listing = self.listing(pid, fd)?;
                self.listings.insert((process, fd), listing);
            }
            let Some(listing) = self.listings.get_mut(&(process, fd)) else {
                return Ok(());
            };
            let mut out = Vec::new();
            while let Some(entry) = listing.entries.get(listing.next) {
                if out.len() + entry.len() > room {
                    break;
                }
                out.extend_from_slice(entry);
                listing.next += 1;
            }
            if out.is_empty() && listing.next < listing.entries.len() {
                return set_return(pid, -(libc::EINVAL as i64));
            }
            write(pid, at, &out)?;
            set_return(pid, out.len() as i64)
        }

        fn listing(&mut self, pid: libc::pid_t, fd: i32) -> io::Result<Listing> {
            let path = descriptor_path(pid, fd as u64);
            let dir = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))?;
            let mut names: Vec<(Vec<u8>, u64, u8)> = Vec::new();
            for entry in std::fs::read_dir(format!("/proc/{pid}/fd/{fd}"))? {
                let entry = entry?;
                let kind = entry.file_type()?;
                let code = if kind.is_dir() {
                    libc::DT_DIR
                } else if kind.is_file() {
                    libc::DT_REG
                } else if kind.is_symlink() {
                    libc::DT_LNK
                } else {
                    libc::DT_UNKNOWN
                };
                let name = entry.file_name().as_bytes().to_vec();
                let at = format!("{path}/{}", String::from_utf8_lossy(&name));
                let inode = match entry.metadata() {
                    Ok(m) => self.inode((m.dev(), m.ino(), m.ctime(), m.ctime_nsec()), &at),
                    // Gone since it was listed: its path's hash.
                    Err(_) => self.path_hash(&at),
                };
                names.push((name, inode, code));
            }
            names.sort();
            let own = self.inode((dir.dev(), dir.ino(), dir.ctime(), dir.ctime_nsec()), &path);
            let mut all = vec![(b".".to_vec(), own, libc::DT_DIR), (b"..".to_vec(), self.path_hash(&format!("{path}/..")), libc::DT_DIR)];
            all.extend(names);
            let entries = all
                .into_iter()
                .enumerate()
                .map(|(i, (name, inode, code))| {
                    // struct linux_dirent64: ino, offset of the next entry, record length, type, name.
                    let length = (19 + name.len() + 1).div_ceil(8) * 8;
                    let mut record = Vec::with_capacity(length);
                    record.extend_from_slice(&inode.to_ne_bytes());
                    record.extend_from_slice(&(i as i64 + 1).to_ne_bytes());
                    record.extend_from_slice(&(length as u16).to_ne_bytes());
                    record.push(code);
                    record.extend_from_slice(&name);
                    record.resize(length, 0);
                    record
                })
                .collect();
            Ok(Listing { entries, next: 0 })
        }
    }

    fn hash(text: &str) -> u64 {
        let digest = Sha256::digest(text.as_bytes());
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default()) | 1
    }

    /// A file's size, and a directory's as ext4's: the size a file system gives a directory
    /// is its own (tmpfs counts entries, btrfs name bytes).
    fn pinned_size(mode: u32, size: u64) -> u64 {
        if mode & libc::S_IFMT == libc::S_IFDIR { 4096 } else { size }
    }

    fn get(bytes: &[u8], offset: usize) -> u64 {
        u64::from_ne_bytes(bytes[offset..offset + 8].try_into().unwrap_or_default())
    }

    fn put(bytes: &mut [u8], offset: usize, value: u64) {
        bytes[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
    }

    fn descriptor_path(pid: libc::pid_t, fd: u64) -> String {
        std::fs::read_link(format!("/proc/{pid}/fd/{}", fd as i32)).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// The process a thread belongs to (its `Tgid`).
    fn process_of(pid: libc::pid_t) -> libc::pid_t {
        std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|s| s.lines().find_map(|l| l.strip_prefix("Tgid:").and_then(|v| v.trim().parse().ok()))).unwrap_or(pid)
    }

    fn ptrace(request: libc::c_uint, pid: libc::pid_t, addr: u64, data: u64) -> io::Result<libc::c_long> {
        // SAFETY: the requests used here read or write only the tracee or the buffers passed.
        let value = unsafe { libc::ptrace(request, pid, addr as *mut libc::c_void, data as *mut libc::c_void) };
        if value < 0 && request != libc::PTRACE_PEEKDATA { Err(io::Error::last_os_error()) } else { Ok(value) }
    }

    fn registers(pid: libc::pid_t) -> io::Result<libc::user_regs_struct> {
        // SAFETY: user_regs_struct is plain data.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut _ as u64)?;
        Ok(regs)
    }

    fn set_return(pid: libc::pid_t, value: i64) -> io::Result<()> {
        let mut regs = registers(pid)?;
        regs.rax = value as u64;
        ptrace(libc::PTRACE_SETREGS, pid, 0, &mut regs as *mut _ as u64).map(|_| ())
    }

    fn read(pid: libc::pid_t, at: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
        let remote = libc::iovec { iov_base: at as *mut libc::c_void, iov_len: len };
        // SAFETY: the local buffer is ours and `len` long; the kernel checks the remote range.
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// `len` bytes of the tracee at `at`, all of them.
    fn read_exact(pid: libc::pid_t, at: u64, len: usize) -> io::Result<Vec<u8>> {
        let buf = read(pid, at, len)?;
        if buf.len() < len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a partial read of the tracee"));
        }
        Ok(buf)
    }

    fn write(pid: libc::pid_t, at: u64, bytes: &[u8]) -> io::Result<()> {
        let local = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
        let remote = libc::iovec { iov_base: at as *mut libc::c_void, iov_len: bytes.len() };
        // SAFETY: the local buffer is ours; the kernel checks the remote range.
        let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// A NUL-terminated string in the tracee, read a page at most at a time (a string can end
    /// right before an unmapped page).
    fn read_string(pid: libc::pid_t, mut at: u64) -> io::Result<String> {
        let mut out = Vec::new();
        while out.len() < 4096 {
            let room = 4096 - (at % 4096) as usize;
            let chunk = read(pid, at, room.min(256))?;
            if chunk.is_empty() {
                break;
            }
            if let Some(end) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                break;
            }
            at += chunk.len() as u64;
            out.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
