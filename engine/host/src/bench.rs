//! The native half of `weightlab bench plugin`: the same autoencoder loop as the
//! `bench-autoencoder` plugin, through the very same host tensor API (`PluginState`'s
//! `tensors` implementation) but called directly from Rust, without a WebAssembly boundary.
//! The ratio of the two timings is the cost of running a method as a sandboxed plugin.

use std::time::{Duration, Instant};

use anyhow::Result;
use wasmtime::component::Resource;

use crate::bindings::weightlab::plugin::tensors::{HostOptimizer, HostTensor, OptimizerKind, Unary};
use crate::state::PluginState;
use crate::tensors::{TensorEntry, borrow};

/// Trains the autoencoder for `steps` steps on `weights` (rows × p); returns the wall time.
pub fn native_autoencoder(weights: &[f32], rows: usize, p: usize, steps: usize, hidden: usize) -> Result<Duration> {
    let mut s = PluginState::new(wasmtime::StoreLimitsBuilder::new().build(), u64::MAX, 0);
    let started = Instant::now();
    let x = s.from_list(weights.to_vec(), vec![rows as u32, p as u32])?;
    let param = |s: &mut PluginState, shape: Vec<u32>, seed: Option<u64>| -> Result<Resource<TensorEntry>> {
        let t = match seed {
            Some(seed) => {
                let r = s.randn(shape, seed)?;
                let a = s.affine(borrow(&r), 0.01, 0.0)?;
                HostTensor::drop(s, r)?;
                a
            }
            None => s.zeros(shape)?,
        };
        let p = s.parameter(borrow(&t))?;
        HostTensor::drop(s, t)?;
        Ok(p)
    };
    let w1 = param(&mut s, vec![hidden as u32, p as u32], Some(1))?;
    let b1 = param(&mut s, vec![hidden as u32], None)?;
    let w2 = param(&mut s, vec![p as u32, hidden as u32], Some(2))?;
    let b2 = param(&mut s, vec![p as u32], None)?;
    let opt = HostOptimizer::new(&mut s, OptimizerKind::Adam, vec![borrow(&w1), borrow(&b1), borrow(&w2), borrow(&b2)], 1e-3, 0.0)?;
    for _ in 0..steps {
        let h0 = s.linear(borrow(&x), borrow(&w1), Some(borrow(&b1)))?;
        let h = s.apply(borrow(&h0), Unary::Tanh)?;
        let y = s.linear(borrow(&h), borrow(&w2), Some(borrow(&b2)))?;
        let loss = s.mse(borrow(&y), borrow(&x))?;
        s.zero_grad(borrow(&opt))?;
        s.backward(borrow(&loss))?;
        s.step(borrow(&opt))?;
        for r in [h0, h, y, loss] {
            HostTensor::drop(&mut s, r)?;
        }
    }
    Ok(started.elapsed())
}
