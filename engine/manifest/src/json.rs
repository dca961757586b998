//! JSON details shared by the crates that write and read back files and messages (zoo
//! indexes, worker requests): this crate is the one they all depend on.

use serde::Deserialize;

/// Reads a number, or `null` as NaN: JSON has no NaN, and `serde_json` writes a NaN (a loss
/// nothing measured, a diverged model's) as `null` — which must read back rather than fail
/// the stage that reads it. Use as `#[serde(deserialize_with = "…::nan_if_null")]`.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Loss {
        #[serde(deserialize_with = "super::nan_if_null")]
        value: f32,
    }

    #[test]
    fn nan_goes_out_as_null_and_comes_back() {
        let json = serde_json::to_string(&Loss { value: f32::NAN }).unwrap();
        assert_eq!(json, r#"{"value":null}"#);
        assert!(serde_json::from_str::<Loss>(&json).unwrap().value.is_nan());
        assert_eq!(serde_json::from_str::<Loss>(r#"{"value":0.5}"#).unwrap().value, 0.5);
        assert!(serde_json::from_str::<Loss>(r#"{"value":"x"}"#).is_err(), "anything else is still refused");
    }
}
