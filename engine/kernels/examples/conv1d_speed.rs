//! Times the 1-D convolution kernels on p-diff's autoencoder shapes (200 checkpoints, 16
//! channels): `cargo run --release -p weightlab-kernels --example conv1d_speed`.
use weightlab_kernels::conv1d::{Conv1d, ConvTranspose1d};

fn best(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
        * 1e3
}

fn main() {
    for len in [2048usize, 1024, 512, 256] {
        let ci = if len == 2048 { 1 } else { 16 };
        let c = Conv1d::new(200, ci, 16, 4, 2, 1, len).expect("valid");
        let x = vec![0.5f32; 200 * ci * len];
        let w = vec![0.1f32; 16 * ci * 4];
        let mut y = vec![0.0f32; 200 * 16 * c.out_len()];
        let mut dx = vec![0.0f32; x.len()];
        let mut dw = vec![0.0f32; w.len()];
        let flops = (200 * 16 * c.out_len() * ci * 4 * 2) as f64;
        let f = best(|| c.forward(&x, &w, None, &mut y));
        let d = best(|| c.backward_data(&y, &w, &mut dx));
        let g = best(|| c.backward_weight(&y, &x, &mut dw));
        println!("conv  len {len:5} ci {ci:2}: forward {f:.2} ms ({:.0} GFLOP/s), data {d:.2} ms ({:.0}), weight {g:.2} ms ({:.0})", flops / f / 1e6, flops / d / 1e6, flops / g / 1e6);
    }
    for len in [128usize, 256, 512, 1024] {
        let t = ConvTranspose1d::new(200, 16, 16, 4, 2, 1, 0, len).expect("valid");
        let x: Vec<f32> = (0..200 * 16 * len).map(|i| ((i as f32) * 0.37).sin()).collect();
        let w = vec![0.1f32; 16 * 16 * 4];
        let mut y = vec![0.0f32; 200 * 16 * t.out_len()];
        let mut dx = vec![0.0f32; x.len()];
        let mut dw = vec![0.0f32; w.len()];
        let flops = (200 * 16 * len * 16 * 4 * 2) as f64;
        let f = best(|| t.forward(&x, &w, None, &mut y));
        let d = best(|| t.backward_data(&y, &w, &mut dx));
        let g = best(|| t.backward_weight(&y, &x, &mut dw));
        println!("convT len {len:5}: forward {f:.2} ms ({:.0} GFLOP/s), data {d:.2} ms ({:.0}), weight {g:.2} ms ({:.0})", flops / f / 1e6, flops / d / 1e6, flops / g / 1e6);
    }
}
