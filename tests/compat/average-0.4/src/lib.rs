//! `average` against `weightlab:plugin@0.4.0` (conditions, several architectures; no `check`): each sample is the mean of k training
//! checkpoints chosen at random without replacement, drawn with the same host calls as today's
//! `average` (a seeded permutation's first k rows, for seed + i), so on the same zoo and seed it
//! returns the same samples. Written on the raw bindings of the frozen WIT, so it stays a 0.4 plugin
//! whatever the SDK becomes.

wit_bindgen::generate!({ path: "../../../plugins/wit/frozen/0.4.0", world: "baseline" });

use exports::weightlab::plugin::method::Guest;
use weightlab::plugin::tensors::Tensor;
use weightlab::plugin::types::{Description, Role};
use exports::weightlab::plugin::method::Condition;
use weightlab::plugin::zoo::ZooInfo;

struct Average;

struct State {
    weights: Tensor,
    k: u32,
}

static mut STATE: Option<State> = None;

#[allow(static_mut_refs)]
fn state() -> Option<&'static State> {
    // A component instance runs one call at a time.
    unsafe { STATE.as_ref() }
}

impl Guest for Average {
    fn describe() -> Description {
        Description {
            name: "average-0.4".into(),
            version: "0.1.0".into(),
            role: Role::Baseline,
            about: "The mean of k random training checkpoints per sample, built against WIT 0.4.0.".into(),
            config_schema: r#"{"type":"object","properties":{"k":{"type":"integer","minimum":1,"default":16}},"additionalProperties":false}"#.into(),
        }
    }

    fn fit(zoo: ZooInfo, weights: &Tensor, _condition: Condition<'_>, config: String, _seed: u64) -> Result<(), String> {
        let k = config.split("\"k\":").nth(1).map(|rest| rest.trim_matches(|c: char| !c.is_ascii_digit()).parse::<u32>().map_err(|e| format!("config k: {e}"))).transpose()?.unwrap_or(16);
        let rows = zoo.checkpoints.len() as u32;
        if k == 0 || k >= rows {
            return Err(format!("k = {k}: use 1 ≤ k < {rows}"));
        }
        #[allow(static_mut_refs)]
        unsafe {
            STATE = Some(State { weights: weights.detach(), k })
        };
        Ok(())
    }

    fn sample(n: u32, seed: u64, _condition: Condition<'_>) -> Result<Tensor, String> {
        let s = state().ok_or("sample called before fit")?;
        let rows = s.weights.shape()[0];
        let means: Vec<Tensor> = (0..n)
            .map(|i| {
                let pick = Tensor::randperm(rows, seed.wrapping_add(i as u64)).narrow(0, 0, s.k);
                s.weights.index_select(0, &pick).mean(0, false)
            })
            .collect();
        Ok(Tensor::stack(&means.iter().collect::<Vec<_>>(), 0))
    }
}

export!(Average);
