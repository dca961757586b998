//! The manifest's JSON Schema, generated from the serde types. A committed copy
//! (`engine/manifest/weightlab.schema.json`) lets editors complete and check manifests through
//! a `#:schema` comment; a test keeps it in sync with this function.

use crate::types::Manifest;

/// The JSON Schema of a manifest, pretty-printed.
pub fn manifest_schema_json() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    text.push('\n');
    text
}
