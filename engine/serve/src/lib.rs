//! `weightlab serve [FOLDER]`: the runs under a folder in a browser, the view MLflow users reach
//! for — without a database or a service. Every run folder under it (and each run its history
//! keeps) is listed with its status, date, manifest, commit and failures; each opens its report;
//! a run in progress shows its stages live; any runs selected together are compared side by
//! side (one summary table with a column per run, and their report rendered together, so every
//! plot overlays them).
//!
//! The server is read-only and binds to 127.0.0.1 unless told otherwise. Run folders may come
//! from elsewhere: what they hold is escaped into the pages, files are read with a size bound,
//! and only a discovered run's own report is ever served.

mod compare;
mod pages;
mod runs;

use std::path::{Path, PathBuf};

pub use runs::{RunEntry, discover};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {reason}")]
    Bind { address: String, reason: String },
    #[error("{path} is not a folder")]
    NotAFolder { path: PathBuf },
}

/// Serves the runs under `root` on `address` (`host:port`; port 0 picks a free one) until the
/// process ends. `ready` is told the address bound before the first request is answered.
pub fn serve(root: &Path, address: &str, ready: impl FnOnce(&str)) -> Result<(), ServeError> {
    if !root.is_dir() {
        return Err(ServeError::NotAFolder { path: root.to_path_buf() });
    }
    let server = tiny_http::Server::http(address).map_err(|e| ServeError::Bind { address: address.to_string(), reason: e.to_string() })?;
    let bound = server.server_addr().to_ip().map_or_else(|| address.to_string(), |a| a.to_string());
    ready(&bound);
    for request in server.incoming_requests() {
        let response = if *request.method() == tiny_http::Method::Get { pages::answer(root, request.url()) } else { pages::Page::error(405, "read-only: only GET") };
        let _ = request.respond(response.into_response());
    }
    Ok(())
}
