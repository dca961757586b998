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
        let io = |source| TableError::Io { path: tmp.clone(), source };
        let file = File::create(&tmp).map_err(io)?;
        let result = match ext {
            "parquet" => ParquetWriter::new(file).finish(df).map(|_| ()),
            _ => IpcWriter::new(file).finish(df),
        };
        result.map_err(|source| TableError::Polars { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &path).map_err(|source| TableError::Io { path: path.clone(), source })?;
    }
    Ok(())
}

/// Writes `<dir>/<name>.csv` atomically: `header`, then `records` (quoted where needed) — the
/// small figures files a report's numbers come from, diffable and readable anywhere.
pub fn write_csv(dir: &Path, name: &str, header: &[String], records: &[Vec<String>]) -> Result<(), TableError> {
    let path = dir.join(format!("{name}.csv"));
    let tmp = dir.join(format!(".{name}.csv.partial"));
    let failed = |e: csv::Error| TableError::Io { path: tmp.clone(), source: std::io::Error::other(e) };
    std::fs::create_dir_all(dir).map_err(|source| TableError::Io { path: dir.to_path_buf(), source })?;
    let mut writer = csv::Writer::from_path(&tmp).map_err(failed)?;
    writer.write_record(header).map_err(failed)?;
    for record in records {
        writer.write_record(record).map_err(failed)?;
    }
    writer.flush().map_err(|source| TableError::Io { path: tmp.clone(), source })?;
    drop(writer);
    std::fs::rename(&tmp, &path).map_err(|source| TableError::Io { path: path.clone(), source })
}

/// Reads a Parquet table back.
pub fn read_parquet(path: &Path) -> Result<DataFrame, TableError> {
    // Tables may come from a run folder made elsewhere: a regular file only (a FIFO would hang).
    let file = weightlab_manifest::files::open_regular(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
    ParquetReader::new(file).finish().map_err(|source| TableError::Polars { path: path.to_path_buf(), source })
}
