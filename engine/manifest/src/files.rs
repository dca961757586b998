//! Opening files that a manifest, an import folder or a run folder from elsewhere names. Such a
//! path may be a FIFO (opening it for reading blocks until someone writes: the engine would
//! hang), a device, or a folder: only regular files are read, and the check never blocks,
//! because the file is opened non-blocking and its type checked on the open handle.

use std::fs::File;
use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// Opens `path` (links followed) for reading when it is a regular file; anything else is an
/// `InvalidInput` error that says what it is.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let t = file.metadata()?.file_type();
    let what = match () {
        _ if t.is_file() => {
            // Reads block again as usual (a regular file never would, but be plain about it).
            // SAFETY: fcntl on a descriptor we own, clearing one status flag.
            unsafe {
                use std::os::fd::AsRawFd;
                let fd = file.as_raw_fd();
                let flags = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
            return Ok(file);
        }
        _ if t.is_dir() => "a folder",
        _ if t.is_fifo() => "a FIFO (named pipe)",
        _ if t.is_socket() => "a socket",
        _ => "a device",
    };
    Err(Error::new(ErrorKind::InvalidInput, format!("is {what}, not a regular file")))
}

/// Reads the regular file `path` whole, refusing one of more than `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(Error::new(ErrorKind::InvalidData, format!("is {len} bytes, more than the {max} allowed")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Error::new(ErrorKind::InvalidData, format!("holds more than the {max} bytes allowed")));
    }
    Ok(bytes)
}

/// Largest manifest read (a manifest, or a file it `extends`).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Reads a manifest: a regular UTF-8 file of at most [`MAX_MANIFEST_BYTES`].
pub fn read_manifest(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_regular(path, MAX_MANIFEST_BYTES)?).map_err(|_| Error::new(ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// weightlab's cache folder, shared by every clone and run of a machine: `WEIGHTLAB_CACHE`,
/// else `~/.cache/weightlab` (compiled components, unpacked plugins, the stage store, the SIMD
/// calibration, …). Here, in the crate every other depends on, so there is one lookup.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("WEIGHTLAB_CACHE").map(std::path::PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/weightlab")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_folders_and_oversized_files_are_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("weightlab-files-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("model.safetensors");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&fifo, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert!(read_regular(&dir, 1 << 20).unwrap_err().to_string().contains("folder"));
        std::fs::write(dir.join("f"), b"0123456789").unwrap();
        assert_eq!(read_regular(&dir.join("f"), 10).unwrap(), b"0123456789");
        assert!(read_regular(&dir.join("f"), 9).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
