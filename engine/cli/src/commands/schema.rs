/// `weightlab schema`: the manifest JSON Schema on stdout.
pub fn schema() -> anyhow::Result<i32> {
    print!("{}", weightlab_pipeline::schema_json());
    Ok(0)
}
