//! Times the 1-D convolution kernels on p-diff's autoencoder shapes (200 checkpoints, 16
//! channels): `cargo run --release -p weightlab-kernels --example conv1d_speed -- [THREADS]
//! [cold] [fresh]`. `cold` evicts the caches before every call (as other work does in a real
//! fit), `fresh` gives each call new output memory (as a new tensor is).
use weightlab_kernels::conv1d::{Conv1d, ConvTranspose1d};

/// Best of 5 calls of `f`, in ms; with `cold`, 256 MB are written before each.
fn best(cold: bool, mut f: impl FnMut()) -> f64 {
    let mut evict = if cold { vec![0u8; 256 << 20] } else { Vec::new() };
    f();
    (0..5)
        .map(|i| {
            evict.iter_mut().for_each(|b| *b = b.wrapping_add(i as u8 + 1));
            std::hint::black_box(&evict);
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
        * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or_else(weightlab_kernels::conv1d::default_threads);
    let cold = args.iter().any(|a| a == "cold");
    let new = args.iter().any(|a| a == "fresh");
    println!("{threads} threads, {} caches, {} outputs", if cold { "cold" } else { "warm" }, if new { "fresh" } else { "reused" });
    for len in [2048usize, 1024, 512, 256] {
        let ci = if len == 2048 { 1 } else { 16 };
        let c = Conv1d { threads, ..Conv1d::new(200, ci, 16, 4, 2, 1, len).expect("valid") };
        let x = vec![0.5f32; 200 * ci * len];
        let w = vec![0.1f32; 16 * ci * 4];
        let mut y = vec![0.0f32; 200 * 16 * c.out_len()];
        let mut dx = vec![0.0f32; x.len()];
        let mut dw = vec![0.0f32; w.len()];
        let flops = (200 * 16 * c.out_len() * ci * 4 * 2) as f64;
        let f = best(cold, || fresh(new, &mut y, |y| c.forward(&x, &w, None, y)));
        let d = best(cold, || fresh(new, &mut dx, |dx| c.backward_data(&y, &w, dx)));
        let g = best(cold, || c.backward_weight(&y, &x, &mut dw));
        println!("conv  len {len:5} ci {ci:2}: forward {f:.2} ms ({:.0} GFLOP/s), data {d:.2} ms ({:.0}), weight {g:.2} ms ({:.0})", flops / f / 1e6, flops / d / 1e6, flops / g / 1e6);
    }
    for len in [128usize, 256, 512, 1024] {
        let t = ConvTranspose1d { threads, ..ConvTranspose1d::new(200, 16, 16, 4, 2, 1, 0, len).expect("valid") };
        let x: Vec<f32> = (0..200 * 16 * len).map(|i| ((i as f32) * 0.37).sin()).collect();
        let w = vec![0.1f32; 16 * 16 * 4];
        let mut y = vec![0.0f32; 200 * 16 * t.out_len()];
        let mut dx = vec![0.0f32; x.len()];
        let mut dw = vec![0.0f32; w.len()];
        let flops = (200 * 16 * len * 16 * 4 * 2) as f64;
        let f = best(cold, || fresh(new, &mut y, |y| t.forward(&x, &w, None, y)));
        let d = best(cold, || fresh(new, &mut dx, |dx| t.backward_data(&y, &w, dx)));
        let g = best(cold, || t.backward_weight(&y, &x, &mut dw));
        println!("convT len {len:5}: forward {f:.2} ms ({:.0} GFLOP/s), data {d:.2} ms ({:.0}), weight {g:.2} ms ({:.0})", flops / f / 1e6, flops / d / 1e6, flops / g / 1e6);
    }
}

/// `f(out)`, into new memory of `out`'s length when `fresh` (then dropped), else into `out`.
fn fresh(fresh: bool, out: &mut [f32], f: impl FnOnce(&mut [f32])) {
    if fresh {
        let mut new = vec![0.0f32; out.len()];
        f(&mut new);
        std::hint::black_box(&new);
    } else {
        f(out);
    }
}
