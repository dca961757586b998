//! Building a table column by column and writing it as Arrow IPC and Parquet. Each file is
//! written to a temporary name and renamed into place, so a reader (or a run killed midway)
//! never sees half a table.

use std::fs::File;
use std::path::{Path, PathBuf};

pub use polars::prelude::DataType;
use polars::prelude::*;

/// Why a table could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Polars { path: PathBuf, source: PolarsError },
    #[error("{path}: {reason}")]
    Rows { path: PathBuf, reason: String },
}

/// A table under construction: named columns of equal length.
#[derive(Default)]
pub struct Table {
    columns: Vec<Column>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn f64(mut self, name: &str, values: Vec<Option<f64>>) -> Self {
        self.columns.push(Column::new(name.into(), values));
        self
    }

    pub fn i64(mut self, name: &str, values: Vec<Option<i64>>) -> Self {
        self.columns.push(Column::new(name.into(), values));
        self
    }

    pub fn str(mut self, name: &str, values: Vec<String>) -> Self {
        self.columns.push(Column::new(name.into(), values));
        self
    }

    /// True when the table has no rows (or no columns).
    pub fn is_empty(&self) -> bool {
        self.columns.first().is_none_or(|c| c.len() == 0)
    }

    pub fn into_frame(self) -> PolarsResult<DataFrame> {
        DataFrame::new(self.columns)
    }

    /// Writes `<dir>/<name>.parquet` and `<dir>/<name>.arrow`, each atomically.
    pub fn write(self, dir: &Path, name: &str) -> Result<DataFrame, TableError> {
        let mut df = self.into_frame().map_err(|source| TableError::Polars { path: dir.join(name), source })?;
        write_frame(&mut df, dir, name)?;
        Ok(df)
    }
}

/// Writes a frame as `<name>.parquet` and `<name>.arrow` in `dir`, each atomically.
pub fn write_frame(df: &mut DataFrame, dir: &Path, name: &str) -> Result<(), TableError> {
    std::fs::create_dir_all(dir).map_err(|source| TableError::Io { path: dir.to_path_buf(), source })?;
    for ext in ["parquet", "arrow"] {
        let path = dir.join(format!("{name}.{ext}"));
        let tmp = dir.join(format!(".{name}.{ext}.partial"));
        let written = File::create(&tmp).map_err(|source| TableError::Io { path: path.clone(), source }).and_then(|file| {
            let mut file = Watched { file, refused: None };
            let result = match ext {
                "parquet" => ParquetWriter::new(&mut file).finish(df).map(|_| ()),
                _ => IpcWriter::new(&mut file).finish(df),
            };
            result.map_err(|source| match file.refused {
                // The system refused a write (a full disk): that is the error, whatever polars
                // made of it (its parquet writer keeps only the text).
                Some(code) => TableError::Io { path: path.clone(), source: std::io::Error::from_raw_os_error(code) },
                None => TableError::Polars { path: path.clone(), source },
            })
        });
        if let Err(e) = written {
            // Half a table on a full disk holds space and reads as litter: gone with the error.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &path).map_err(|source| TableError::Io { path: path.clone(), source })?;
    }
    Ok(())
}

/// A table's file that remembers the system's refusal of a write (its `errno`), which polars'
/// writers pass on only as text.
struct Watched {
    file: File,
    refused: Option<i32>,
}

impl std::io::Write for Watched {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf).inspect_err(|e| self.refused = self.refused.or(e.raw_os_error()))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().inspect_err(|e| self.refused = self.refused.or(e.raw_os_error()))
    }
}

/// Writes `<dir>/<name>.csv` atomically: `header`, then `records` (quoted where needed) — the
/// small figures files a report's numbers come from, diffable and readable anywhere.
pub fn write_csv(dir: &Path, name: &str, header: &[String], records: &[Vec<String>]) -> Result<(), TableError> {
    let path = dir.join(format!("{name}.csv"));
    let tmp = dir.join(format!(".{name}.csv.partial"));
    std::fs::create_dir_all(dir).map_err(|source| TableError::Io { path: dir.to_path_buf(), source })?;
    let write = || -> Result<(), csv::Error> {
        let mut writer = csv::Writer::from_path(&tmp)?;
        writer.write_record(header)?;
        for record in records {
            writer.write_record(record)?;
        }
        writer.flush()?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        let source = match e.into_kind() {
            csv::ErrorKind::Io(e) => e,
            other => std::io::Error::other(format!("{other:?}")),
        };
        return Err(TableError::Io { path, source });
    }
    std::fs::rename(&tmp, &path).map_err(|source| TableError::Io { path: path.clone(), source })
}

/// Reads a Parquet table back.
pub fn read_parquet(path: &Path) -> Result<DataFrame, TableError> {
    // Tables may come from a run folder made elsewhere: a regular file only (a FIFO would hang).
    let file = weightlab_manifest::files::open_regular(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
    ParquetReader::new(file).finish().map_err(|source| TableError::Polars { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_refused_by_a_full_disk_is_an_io_error_and_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        // `/dev/full` refuses every write with ENOSPC: a full disk, without needing one.
        std::os::unix::fs::symlink("/dev/full", dir.path().join(".t.parquet.partial")).unwrap();
        let mut df = Table::new().f64("x", vec![Some(1.0); 1000]).into_frame().unwrap();
        match write_frame(&mut df, dir.path(), "t") {
            Err(TableError::Io { path, source }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{source}");
                assert_eq!(path, dir.path().join("t.parquet"), "named as the table, not its temporary file");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
    }
}
