//! Prints the manifest JSON Schema (what `weightlab schema` prints), without building the engine.
fn main() {
    print!("{}", weightlab_manifest::schema::manifest_schema_json());
}
