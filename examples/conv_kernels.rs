//! Per-layer timing of fastvision's convolution kernels on ResNet-18's geometries (dev tool):
//! `cargo run --example conv_kernels -- [batch 64] [size 28] [repeats 5] [fp32|bf16] [layer]` (bf16:
//! the CPU's native bf16 products, where it has them; layer: only the layers of that name, e.g.
//! `stem`). GF/s count every
//! kernel tap, so layers whose taps over padding are skipped show a dense-equivalent rate.
use fastvision::ops::kernels::{ConvGeom, bf16, conv2d_backward, conv2d_forward};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bs: usize = args.get(1).map_or(64, |s| s.parse().unwrap());
    let size: usize = args.get(2).map_or(28, |s| s.parse().unwrap());
    let reps: usize = args.get(3).map_or(5, |s| s.parse().unwrap());
    let mul = match args.get(4).map(String::as_str) {
        Some("bf16") => bf16::native().expect("no native bf16 on this CPU"),
        _ => bf16::Mul::F32,
    };
    let only = args.get(5).cloned();
    let mut layers = vec![];
    let stem = size.div_ceil(2);
    layers.push(("stem", [bs, 3, size, size], [64, 3, 7, 7], 2, 3, 1));
    let mut hw = stem.div_ceil(2);
    layers.push(("l1", [bs, 64, hw, hw], [64, 64, 3, 3], 1, 1, 4));
    let mut c = 64;
    for (name, o) in [("l2", 128), ("l3", 256), ("l4", 512)] {
        layers.push((name, [bs, c, hw, hw], [o, c, 3, 3], 2, 1, 1));
        layers.push((name, [bs, c, hw, hw], [o, c, 1, 1], 2, 0, 1));
        hw = hw.div_ceil(2);
        layers.push((name, [bs, o, hw, hw], [o, o, 3, 3], 1, 1, 3));
        c = o;
    }
    let (mut tf, mut tb, mut fl) = (0.0, 0.0, 0.0);
    for (name, xs, ws, s, p, count) in layers {
        if only.as_deref().is_some_and(|l| l != name) {
            continue;
        }
        let g = ConvGeom::new(xs, ws, [s, s], [(p, p), (p, p)], [1, 1]).with_mul(mul);
        let x: Vec<f32> = (0..xs.iter().product())
            .map(|i| ((i % 97) as f32) * 0.01)
            .collect();
        let w: Vec<f32> = (0..ws.iter().product())
            .map(|i| ((i % 89) as f32) * 0.01)
            .collect();
        let dy: Vec<f32> = (0..g.b * g.o * g.s())
            .map(|i| ((i % 83) as f32) * 0.01)
            .collect();
        let _ = conv2d_forward(&x, &w, &g);
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(conv2d_forward(&x, &w, &g));
        }
        let f = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(conv2d_backward(&x, &w, &dy, &g, name != "stem"));
        }
        let b = t.elapsed().as_secs_f64() / reps as f64;
        let flop = 2.0 * (g.o * g.k() * g.n()) as f64;
        println!(
            "{name:5} x{xs:?} w{ws:?} s{s} x{count}: fwd {:7.2} ms ({:5.1} GF/s)  bwd {:7.2} ms ({:5.1} GF/s)",
            f * 1e3,
            flop / f / 1e9,
            b * 1e3,
            2.0 * flop / b / 1e9
        );
        tf += f * count as f64;
        tb += b * count as f64;
        fl += flop * count as f64;
    }
    println!(
        "total: fwd {:.1} ms, bwd {:.1} ms, {:.2} GFLOP fwd",
        tf * 1e3,
        tb * 1e3,
        fl / 1e9
    );
}
