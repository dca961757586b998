//! `weightlab embed`: the label embeddings probes get, for inspection and for checking the
//! native MiniLM against another implementation.

use anyhow::Context;

pub fn embed(texts: &[String]) -> anyhow::Result<i32> {
    let e = weightlab_pipeline::text::embeddings(texts).context("embedding texts")?;
    let rows: Vec<&[f32]> = e.values.chunks(e.dim).collect();
    println!("{}", serde_json::to_string(&rows)?);
    Ok(0)
}
