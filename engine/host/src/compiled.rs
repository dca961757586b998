//! The disk cache of compiled components. A compiled component is native code that wasmtime
//! loads without checking it (`Component::deserialize` is `unsafe` for that reason), so an
//! entry is only used when it provably came from this user's engine compiling these bytes:
//!
//! - entries live in a folder per engine build (wasmtime's compatibility hash and this
//!   crate's version), named by the SHA-256 of the component bytes they were compiled from;
//! - each entry holds that SHA-256 and an HMAC-SHA-256 tag over (engine build, source hash,
//!   compiled bytes) under a key only this user can read (`~/.config/weightlab/cache.key`,
//!   mode 0600, outside the cache folder, or the file `WEIGHTLAB_CACHE_KEY` names).
//!
//! Swapping two entries, copying one from another machine or user, or writing a file into a
//! shared cache folder therefore makes a tag check fail, and the component is compiled again
//! from the bytes being run (and the entry rewritten). Without a usable key nothing is cached.
//!
//! [`Functions`] is the same rule one level down: Cranelift's per-function cache, so that a
//! component seen for the first time compiles only the functions no earlier one had.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"WLCC\x00\x00\x00\x01";
const HEADER: usize = MAGIC.len() + 32 + 32;
/// Largest compiled component read back.
const MAX_ENTRY_BYTES: u64 = 2 << 30;

/// A verified cache of compiled components.
#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
    key: [u8; 32],
    engine_id: [u8; 32],
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash gives stable bytes.
struct Sha(Sha256);

impl Hasher for Sha {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

impl Cache {
    /// The cache under `root` for `engine`, with this user's `key` ([`user_key`]).
    pub fn open(root: &Path, engine: &Engine, key: [u8; 32]) -> Result<Self> {
        let engine_id = engine_id(engine);
        let dir = root.join(build_folder(engine));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating component cache {}", dir.display()))?;
        Ok(Self { dir, key, engine_id })
    }

    fn tag(&self, source: &[u8; 32], compiled: &[u8]) -> Hmac<Sha256> {
        let mut mac = hmac(&self.key);
        mac.update(&self.engine_id);
        mac.update(source);
        mac.update(compiled);
        mac
    }

    /// The entry file of a component whose bytes hash to `source`.
    pub fn entry(&self, source: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.cwasm", hex::encode(source)))
    }

    /// The compiled form of `bytes`: the cached entry when it verifies, else `compile()`'s
    /// result, which is then stored.
    pub fn get_or_compile(&self, engine: &Engine, bytes: &[u8], compile: impl FnOnce() -> Result<Component>) -> Result<Component> {
        let source: [u8; 32] = Sha256::digest(bytes).into();
        let path = self.entry(&source);
        if let Some(component) = self.load(engine, &path, &source) {
            return Ok(component);
        }
        let component = compile()?;
        if let Ok(compiled) = component.serialize() {
            let mut entry = Vec::with_capacity(HEADER + compiled.len());
            entry.extend_from_slice(MAGIC);
            entry.extend_from_slice(&source);
            entry.extend_from_slice(&self.tag(&source, &compiled).finalize().into_bytes());
            entry.extend_from_slice(&compiled);
            store(&path, &entry);
        }
        Ok(component)
    }

    /// The entry at `path` when it is a regular file holding `source`'s compiled form under a
    /// valid tag; `None` for anything else.
    fn load(&self, engine: &Engine, path: &Path, source: &[u8; 32]) -> Option<Component> {
        let entry = crate::code::read_regular(path, MAX_ENTRY_BYTES).ok()?;
        let (header, compiled) = entry.split_at_checked(HEADER)?;
        if &header[..MAGIC.len()] != MAGIC || &header[MAGIC.len()..MAGIC.len() + 32] != source {
            return None;
        }
        self.tag(source, compiled).verify_slice(&header[MAGIC.len() + 32..]).ok()?;
        // SAFETY: the tag proves these bytes are what this user's engine (same build) produced
        // by compiling `source`; nobody without the user's key can make a valid tag.
        let component = unsafe { Component::deserialize(engine, compiled) }.ok()?;
        touch(path);
        Some(component)
    }
}

/// The engine build's identity: wasmtime's compatibility hash and this crate's version.
fn engine_id(engine: &Engine) -> [u8; 32] {
    let mut h = Sha(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
    h.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.0.finalize().into()
}

/// The folder (under the cache root) of `engine`'s build's compiled components.
pub fn build_folder(engine: &Engine) -> String {
    hex::encode(engine_id(engine))[..16].to_string()
}

/// How often a hit refreshes an entry's modification time: at most once a day, so that `gc`
/// can tell what was used lately without a write per hit.
const TOUCH_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Marks the entry at `path` as used now, unless that was within [`TOUCH_EVERY`].
fn touch(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let stale = std::fs::symlink_metadata(path).ok().and_then(|m| m.modified().ok()).and_then(|m| m.elapsed().ok()).is_some_and(|age| age > TOUCH_EVERY);
    if stale {
        let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(path).and_then(|f| f.set_modified(SystemTime::now()));
    }
}

/// What [`collect`] removed (with `dry_run`: would remove).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub files: usize,
    pub bytes: u64,
}

/// Trims the compiled-code caches under `root` (the components folder): removes the folders
/// of other engine builds (compiled by another wasmtime or weightlab version: this one can
/// never use them), and entries of this build (`current`, [`build_folder`]) and of the
/// function cache not used for `unused` (a hit refreshes an entry's time daily), and writes
/// left half-done by a killed process. With `dry_run`, only counts. Nothing outside those
/// folders is touched, and no link is followed.
pub fn collect(root: &Path, current: &str, unused: Duration, dry_run: bool) -> Result<Collected> {
    let mut done = Collected::default();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(done);
    };
    for entry in entries.flatten() {
        let (path, name) = (entry.path(), entry.file_name().to_string_lossy().into_owned());
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let other_build = name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) && name != current;
        if name == "functions" || name == current || other_build {
            sweep(&path, if other_build { Duration::ZERO } else { unused }, dry_run, &mut done)?;
            if other_build && !dry_run {
                let _ = remove_empty_dirs(&path);
            }
        }
    }
    Ok(done)
}

/// Removes the regular files under `dir` whose modification time is older than `unused` (and
/// temporary files of unfinished writes older than an hour), counting them into `done`.
fn sweep(dir: &Path, unused: Duration, dry_run: bool, done: &mut Collected) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let path = entry.path();
        if kind.is_dir() {
            sweep(&path, unused, dry_run, done)?;
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let age = meta.modified().ok().and_then(|m| m.elapsed().ok()).unwrap_or_default();
        let unfinished = entry.file_name().to_string_lossy().ends_with(".tmp");
        let limit = if unfinished { unused.min(Duration::from_secs(3600)) } else { unused };
        if !kind.is_file() || age < limit {
            continue;
        }
        if dry_run || std::fs::remove_file(&path).is_ok() {
            done.files += 1;
            done.bytes += meta.len();
        }
    }
    Ok(())
}

/// Removes `dir` and the empty folders under it (bottom up); stops at the first that is not.
fn remove_empty_dirs(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_dirs(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// Largest compiled function read back (Cranelift's output for one WebAssembly function).
const MAX_FUNCTION_BYTES: u64 = 64 << 20;

/// Cranelift's per-function cache ([`wasmtime::CacheStore`]): a component whose functions were
/// compiled before, in any component, compiles only the others. Python plugins are mostly the
/// same interpreter, so the second plugin built on a machine compiles in a fraction of the
/// first's time; a Rust plugin rebuilt after a small change recompiles what changed.
///
/// Entries are native code as well, so they are held to the same rule as whole components:
/// each file (named by the SHA-256 of Cranelift's key) holds an HMAC-SHA-256 tag over
/// (this crate's version, the key, the compiled function) under this user's key, and an entry
/// whose tag does not verify is treated as missing: the function is compiled again and the
/// entry rewritten. Cranelift's key covers the function's code, the target ISA and its flags,
/// and its entries carry Cranelift's version.
pub struct Functions {
    dir: PathBuf,
    key: [u8; 32],
    hits: std::sync::atomic::AtomicUsize,
}

impl Functions {
    /// The function cache under `root` (`<root>/functions`), with this user's `key`
    /// ([`user_key`]).
    pub fn open(root: &Path, key: [u8; 32]) -> Result<Self> {
        let dir = root.join("functions");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating function cache {}", dir.display()))?;
        Ok(Self { dir, key, hits: 0.into() })
    }

    /// Functions taken from the cache so far (verified entries).
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn tag(&self, key: &[u8], value: &[u8]) -> Hmac<Sha256> {
        let mut mac = hmac(&self.key);
        mac.update(b"weightlab compiled function ");
        mac.update(env!("CARGO_PKG_VERSION").as_bytes());
        mac.update(&(key.len() as u64).to_le_bytes());
        mac.update(key);
        mac.update(value);
        mac
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        let name = hex::encode(Sha256::digest(key));
        self.dir.join(&name[..2]).join(&name[2..])
    }
}

/// Without the key: a debug print must not show it.
impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions").field("dir", &self.dir).field("hits", &self.hits()).finish_non_exhaustive()
    }
}

impl wasmtime::CacheStore for Functions {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        let path = self.path(key);
        let entry = crate::code::read_regular(&path, MAX_FUNCTION_BYTES).ok()?;
        let (tag, value) = entry.split_at_checked(32)?;
        self.tag(key, value).verify_slice(tag).ok()?;
        touch(&path);
        self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(std::borrow::Cow::Owned(value.to_vec()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut entry = self.tag(key, &value).finalize().into_bytes().to_vec();
        entry.extend_from_slice(&value);
        store(&self.path(key), &entry)
    }
}

/// Writes a cache entry beside `path` and renames it into place, so that concurrent workers
/// never read half an entry; whether it was stored.
fn store(path: &Path, entry: &[u8]) -> bool {
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(dir) = path.parent() else { return false };
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{n}.tmp", std::process::id()));
    let stored = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&tmp, entry)).and_then(|()| std::fs::rename(&tmp, path));
    if stored.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    stored.is_ok()
}

/// HMAC-SHA-256 under this user's cache `key`, for the tags of both caches.
fn hmac(key: &[u8; 32]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Where this user's cache key lives.
fn key_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("WEIGHTLAB_CACHE_KEY") {
        return Ok(PathBuf::from(path));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("no HOME to keep the cache key in")?).join(".config"),
    };
    Ok(config.join("weightlab/cache.key"))
}

/// This user's 32-byte cache key, created (from the OS's random source) on first use. A key
/// file others can read or write, or one of another owner, is not used.
pub fn user_key() -> Result<[u8; 32]> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
    let path = key_path()?;
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom").and_then(|mut r| r.read_exact(&mut key)).context("reading /dev/urandom")?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(&key)?;
        drop(file);
        // Another process may have made one meanwhile: the first one in place wins.
        if std::fs::hard_link(&tmp, &path).is_err() && !path.exists() {
            let _ = std::fs::remove_file(&tmp);
            bail!("could not create {}", path.display());
        }
        let _ = std::fs::remove_file(&tmp);
    }
    let meta = std::fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        bail!("{} must be a regular file of yours that only you can read (chmod 600)", path.display());
    }
    let bytes = crate::code::read_regular(&path, 64)?;
    bytes.as_slice().try_into().map_err(|_| anyhow::anyhow!("{} does not hold a 32-byte key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn function_entries_are_used_only_under_their_own_key_and_tag() {
        let dir = tempfile::tempdir().unwrap();
        let functions = Functions::open(dir.path(), [7; 32]).unwrap();
        assert!(functions.insert(b"key one", b"code one".to_vec()) && functions.insert(b"key two", b"code two".to_vec()));
        assert_eq!(functions.get(b"key one").as_deref(), Some(&b"code one"[..]));
        assert_eq!(functions.get(b"key three"), None);
        assert_eq!(functions.hits(), 1);

        // Another user's key: their entries are not ours.
        assert_eq!(Functions::open(dir.path(), [8; 32]).unwrap().get(b"key two"), None);
        // Swapped: key two's entry under key one's name.
        let (one, two) = (functions.path(b"key one"), functions.path(b"key two"));
        let original = std::fs::read(&one).unwrap();
        std::fs::copy(&two, &one).unwrap();
        assert_eq!(functions.get(b"key one"), None, "a swapped entry was used");
        // Forged: one byte of code changed.
        let mut forged = original.clone();
        let last = forged.len() - 1;
        forged[last] ^= 0x01;
        std::fs::write(&one, &forged).unwrap();
        assert_eq!(functions.get(b"key one"), None, "a forged entry was used");
        // Cut short, or not a regular file.
        std::fs::write(&one, &original[..20]).unwrap();
        assert_eq!(functions.get(b"key one"), None);
        std::fs::remove_file(&one).unwrap();
        std::fs::create_dir(&one).unwrap();
        assert_eq!(functions.get(b"key one"), None);
        assert_eq!(functions.hits(), 1);
    }

    /// Sets `path`'s modification time to `days` ago.
    fn age(path: &Path, days: u64) {
        let when = SystemTime::now() - Duration::from_secs(days * 86_400);
        std::fs::OpenOptions::new().write(true).open(path).unwrap().set_modified(when).unwrap();
    }

    #[test]
    fn gc_removes_other_builds_and_what_was_not_used_lately_and_a_hit_counts_as_use() {
        let root = tempfile::tempdir().unwrap();
        let current = "0123456789abcdef";
        let functions = Functions::open(root.path(), [7; 32]).unwrap();
        assert!(functions.insert(b"used", b"code".to_vec()) && functions.insert(b"idle", b"code".to_vec()) && functions.insert(b"fresh", b"code".to_vec()));
        let write = |rel: &str, days: u64| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vec![1u8; 100]).unwrap();
            age(&path, days);
            path
        };
        let (old, new) = (write(&format!("{current}/old.cwasm"), 40), write(&format!("{current}/new.cwasm"), 1));
        let half_written = write(&format!("{current}/.123.0.tmp"), 1);
        let other = write("fedcba9876543210/any.cwasm", 0);
        let unrelated = write("notes/kept.txt", 400);
        age(&functions.path(b"used"), 40);
        age(&functions.path(b"idle"), 40);
        // A hit more than a day after the last one marks the entry used.
        assert!(functions.get(b"used").is_some());

        let dry = collect(root.path(), current, Duration::from_secs(30 * 86_400), true).unwrap();
        assert_eq!(dry.files, 4, "old, half-written, the other build's, idle");
        assert!(old.exists() && other.exists(), "a dry run removes nothing");
        let done = collect(root.path(), current, Duration::from_secs(30 * 86_400), false).unwrap();
        assert_eq!(done, dry);
        assert!(!old.exists() && !half_written.exists() && !other.exists() && !root.path().join("fedcba9876543210").exists());
        assert!(new.exists() && unrelated.exists(), "recent entries and folders that are not the cache's stay");
        assert!(functions.get(b"used").is_some() && functions.get(b"fresh").is_some());
        assert!(functions.get(b"idle").is_none());
    }
}
