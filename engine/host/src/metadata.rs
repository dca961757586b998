//! What a built plugin says about itself without being run: its description (name, version,
//! role, about, config schema) and the WIT version it targets, stored as JSON in a custom
//! section of the component (`weightlab-plugin`). `weightlab plugin build` writes it after
//! describing the fresh component once; `weightlab plugin inspect` and `weightlab plugins` read
//! it without compiling or instantiating anything. The section is advisory: a run still
//! describes the plugin it loads, and the import names (what [`wit_versions`] reads) are the
//! truth about the WIT version.

use std::borrow::Cow;

use wasmparser::{Parser, Payload};

/// Name of the custom section.
pub const SECTION: &str = "weightlab-plugin";

/// The metadata of a built plugin.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    /// `generator`, `baseline` or `probe`.
    pub role: String,
    /// The `weightlab:plugin` version it was built against.
    pub abi: String,
    pub about: String,
    pub config_schema: serde_json::Value,
    /// What built it (e.g. `componentize-py 0.25.1`, `cargo`).
    #[serde(default)]
    pub built_with: String,
}

/// A component that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a readable WebAssembly component: {0}")]
pub struct ReadError(String);

/// What the top level of a component holds that matters here: its import and export names, and
/// its custom sections with their byte ranges.
struct TopLevel<'a> {
    names: Vec<String>,
    custom: Vec<(String, &'a [u8], std::ops::Range<usize>)>,
}

fn top_level(bytes: &[u8]) -> Result<TopLevel<'_>, ReadError> {
    // wasmparser's own message for this is a multi-line dump of the expected bytes.
    if !bytes.starts_with(b"\0asm") {
        return Err(ReadError("not WebAssembly at all (a `.wasm` file starts with the bytes `\\0asm`)".into()));
    }
    let mut out = TopLevel { names: Vec::new(), custom: Vec::new() };
    // Nested modules and components start with their own `Version` and end with `End`.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| ReadError(e.to_string()))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != wasmparser::Encoding::Component {
                    return Err(ReadError("a core module, not a component (build with the wasm32-wasip2 target or componentize-py)".into()));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    out.names.push(import.map_err(|e| ReadError(e.to_string()))?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    out.names.push(export.map_err(|e| ReadError(e.to_string()))?.name.name.to_string());
                }
            }
            Payload::CustomSection(c) if depth == 1 => {
                let range = c.range();
                // The whole section: its id byte and size come before the name.
                let start = range.start.saturating_sub(section_header_len(range.end - range.start));
                out.custom.push((c.name().to_string(), c.data(), start..range.end));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Bytes of a section's id and LEB128 size for a payload of `len` bytes.
fn section_header_len(len: usize) -> usize {
    let mut leb = 1;
    let mut rest = len >> 7;
    while rest > 0 {
        leb += 1;
        rest >>= 7;
    }
    1 + leb
}

/// The `weightlab:plugin` versions a component's imports and exports name (deduplicated,
/// sorted), read without compiling it.
pub fn wit_versions(bytes: &[u8]) -> Result<Vec<String>, ReadError> {
    Ok(versions_of(&top_level(bytes)?))
}

fn versions_of(top: &TopLevel) -> Vec<String> {
    let mut found: Vec<String> = top.names.iter().filter_map(|n| n.strip_prefix("weightlab:plugin/").and_then(|rest| rest.split_once('@')).map(|(_, v)| v.to_string())).collect();
    found.sort();
    found.dedup();
    found
}

/// What loading needs, from one pass over the component: its WIT versions
/// ([`wit_versions`]) and its bytes without the metadata section ([`strip`]).
pub fn for_loading(bytes: &[u8]) -> Result<(Vec<String>, Vec<u8>), ReadError> {
    let top = top_level(bytes)?;
    Ok((versions_of(&top), without_section(bytes, &top)))
}

/// The metadata section of a component, if it has one.
pub fn read(bytes: &[u8]) -> Result<Option<Metadata>, ReadError> {
    let top = top_level(bytes)?;
    match top.custom.iter().find(|(name, _, _)| name == SECTION) {
        None => Ok(None),
        Some((_, data, _)) => {
            let m: Metadata = serde_json::from_slice(data).map_err(|e| ReadError(format!("its `{SECTION}` section is not valid metadata: {e}")))?;
            m.checked().map(Some).map_err(|e| ReadError(format!("its `{SECTION}` section is refused: {e}")))
        }
    }
}

impl Metadata {
    /// The metadata with its text cleaned and bounded and its config schema checked, as a
    /// description a plugin gives when it runs ([`crate::Description::checked`]): the section
    /// is plugin-written bytes.
    fn checked(self) -> Result<Metadata, String> {
        use crate::untrusted::{ABOUT_BYTES, NAME_BYTES, line, text};
        crate::config_schema::check(&self.config_schema).map_err(|e| e.to_string())?;
        Ok(Metadata {
            name: line(&self.name, NAME_BYTES),
            version: line(&self.version, NAME_BYTES),
            role: line(&self.role, NAME_BYTES),
            abi: line(&self.abi, NAME_BYTES),
            about: text(&self.about, ABOUT_BYTES),
            config_schema: self.config_schema,
            built_with: line(&self.built_with, NAME_BYTES),
        })
    }
}

/// The component without its metadata section: what is compiled, so that stamping a plugin
/// after its build does not make wasmtime compile it again (its cache is keyed by the bytes).
pub fn strip(bytes: &[u8]) -> Result<Vec<u8>, ReadError> {
    Ok(without_section(bytes, &top_level(bytes)?))
}

fn without_section(bytes: &[u8], top: &TopLevel) -> Vec<u8> {
    let mut out = bytes.to_vec();
    // Remove from the back, so the ranges before stay valid.
    for (_, _, range) in top.custom.iter().rev().filter(|(name, _, _)| name == SECTION) {
        out.drain(range.clone());
    }
    out
}

/// The component with `meta` as its metadata section (replacing one it had).
pub fn embed(bytes: &[u8], meta: &Metadata) -> Result<Vec<u8>, ReadError> {
    let mut out = strip(bytes)?;
    let data = serde_json::to_vec(meta).map_err(|e| ReadError(e.to_string()))?;
    let section = wasm_encoder::CustomSection { name: Cow::Borrowed(SECTION), data: Cow::Owned(data) };
    wasm_encoder::ComponentSection::append_to_component(&section, &mut out);
    Ok(out)
}

impl Metadata {
    /// The section for a plugin that described itself as `d`, built by `built_with`.
    pub fn described(d: &crate::Description, built_with: &str) -> Self {
        Metadata {
            name: d.name.clone(),
            version: d.version.clone(),
            role: crate::role_name(d.role).to_string(),
            abi: d.abi.clone(),
            about: d.about.clone(),
            config_schema: d.config_schema.clone(),
            built_with: built_with.to_string(),
        }
    }
}

/// Why a component could not be stamped (the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum StampError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("writing the stamped component: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes `meta` into the component `code` as its metadata section, replacing the file at
/// `code.path` in one rename (a reader never sees half a component).
pub fn stamp(code: &crate::PluginCode, meta: &Metadata) -> Result<(), StampError> {
    let stamped = embed(&code.bytes, meta)?;
    let tmp = code.path.with_extension(format!("stamp-{}", std::process::id()));
    std::fs::write(&tmp, &stamped).and_then(|()| std::fs::rename(&tmp, &code.path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        StampError::Write(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the preamble alone.
    const EMPTY: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    fn meta(name: &str) -> Metadata {
        Metadata {
            name: name.into(),
            version: "1.2.3".into(),
            role: "baseline".into(),
            abi: "0.5.0".into(),
            about: "about".into(),
            config_schema: serde_json::json!({"type": "object"}),
            built_with: "test".into(),
        }
    }

    #[test]
    fn embeds_reads_and_replaces() {
        assert_eq!(read(EMPTY).unwrap(), None);
        let once = embed(EMPTY, &meta("a")).unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all()).validate_all(&once).expect("still a valid component");
        assert_eq!(read(&once).unwrap(), Some(meta("a")));
        let twice = embed(&once, &meta("b")).unwrap();
        assert_eq!(read(&twice).unwrap(), Some(meta("b")));
        assert_eq!(twice.len(), once.len(), "the old section was replaced, not kept");
        assert_eq!(strip(&twice).unwrap(), EMPTY);
    }

    #[test]
    fn refuses_what_is_not_a_component() {
        let module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        assert!(read(&module).unwrap_err().to_string().contains("core module"));
        let text = read(b"root:x:0:0:root:/root:/bin/bash\n").unwrap_err().to_string();
        assert!(text.contains("not WebAssembly at all") && !text.contains('\n'), "one line: {text}");
        assert!(read(b"not wasm").is_err());
    }
}
