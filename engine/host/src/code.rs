//! A plugin's code as the engine resolved it: the component's bytes, read once, and their
//! SHA-256. Pins, plan keys and provenance use that hash, and workers are handed these bytes
//! (through their stdin, checked against the hash on arrival): a file swapped on disk after
//! the engine read it is never what runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest;

/// Largest component accepted (a Python plugin is about 20 MB).
pub const MAX_COMPONENT_BYTES: u64 = 512 << 20;

/// A plugin's component bytes and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCode {
    /// Where the bytes were read from (for messages).
    pub path: PathBuf,
    pub bytes: Arc<[u8]>,
    /// SHA-256 of `bytes`, 64 lowercase hex digits.
    pub sha256: String,
}

/// Why a plugin's file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("reading plugin {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("plugin {} is not a regular file (a device, pipe or socket is never loaded)", path.display())]
    NotAFile { path: PathBuf },
    #[error("plugin {} is {size} bytes, more than the {} MiB a component may have", path.display(), MAX_COMPONENT_BYTES >> 20)]
    TooLarge { path: PathBuf, size: u64 },
}

impl PluginCode {
    /// Reads the component at `path`: a regular file (symlinks followed) of at most
    /// [`MAX_COMPONENT_BYTES`]; opening never blocks on a FIFO.
    pub fn read(path: &Path) -> Result<Self, CodeError> {
        let bytes = read_regular(path, MAX_COMPONENT_BYTES)?;
        Ok(Self::from_bytes(path, bytes))
    }

    /// Bytes already in memory.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Self {
        let sha256 = sha256_hex(&bytes);
        Self { path: path.to_path_buf(), bytes: bytes.into(), sha256 }
    }
}

/// Reads a regular file of at most `max` bytes; anything else (a FIFO, a device, a folder) is
/// refused without blocking (see [`weightlab_manifest::files`]).
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, CodeError> {
    weightlab_manifest::files::read_regular(path, max).map_err(|source| match source.kind() {
        std::io::ErrorKind::InvalidInput => CodeError::NotAFile { path: path.to_path_buf() },
        std::io::ErrorKind::InvalidData => CodeError::TooLarge { path: path.to_path_buf(), size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) },
        _ => CodeError::Io { path: path.to_path_buf(), source },
    })
}

/// SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile_dir();
        let fifo = dir.join("plugin.wasm");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(PluginCode::read(&fifo), Err(CodeError::NotAFile { .. })));
        std::fs::write(dir.join("a.wasm"), b"abc").unwrap();
        let code = PluginCode::read(&dir.join("a.wasm")).unwrap();
        assert_eq!(code.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(matches!(read_regular(&dir.join("a.wasm"), 2), Err(CodeError::TooLarge { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weightlab-code-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
