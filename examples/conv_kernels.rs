//! Per-layer timing of fastvision's convolution kernels on ResNet-18's geometries (dev tool).
use fastvision::ops::kernels::{
    ConvGeom, Mat, col2im, conv2d_backward, conv2d_forward, im2col, matmul, scatter_taps,
    swap_leading, transpose,
};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bs: usize = args.get(1).map_or(64, |s| s.parse().unwrap());
    let size: usize = args.get(2).map_or(28, |s| s.parse().unwrap());
    let reps: usize = args.get(3).map_or(5, |s| s.parse().unwrap());
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
        let g = ConvGeom::new(xs, ws, [s, s], [(p, p), (p, p)], [1, 1]);
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
        if std::env::var("PARTS").is_ok() {
            let mut p = [0.0f64; 8];
            let taps = g.live_taps();
            let (k, n) = (g.c * taps.len(), g.n());
            let mut lap = |i: usize, t: &mut Instant| {
                p[i] += t.elapsed().as_secs_f64();
                *t = Instant::now();
            };
            for _ in 0..reps {
                let mut t = Instant::now();
                let dyt = swap_leading(&dy, g.b, g.o, g.s());
                lap(0, &mut t);
                let col = im2col(&x, &g, &taps);
                lap(1, &mut t);
                let dw = if 16 * n >= k {
                    let dwt = matmul(k, g.o, n, Mat::rows(&col, n), Mat::transposed(&dyt, n));
                    lap(2, &mut t);
                    let r = transpose(&dwt, k, g.o);
                    lap(3, &mut t);
                    r
                } else {
                    let r = matmul(g.o, k, n, Mat::rows(&dyt, n), Mat::transposed(&col, n));
                    lap(2, &mut t);
                    r
                };
                drop(col);
                let wg = w.clone();
                lap(4, &mut t);
                let dcol = matmul(k, n, g.o, Mat::transposed(&wg, k), Mat::rows(&dyt, n));
                lap(5, &mut t);
                let dx = col2im(dcol, &g, &taps);
                lap(6, &mut t);
                let dw = scatter_taps(dw, &g, &taps);
                lap(7, &mut t);
                std::hint::black_box((dw, dx));
            }
            let p = p.map(|v| v / reps as f64 * 1e3);
            println!(
                "      swap {:.2} im2col {:.2} dW {:.2} dWT {:.2} gather {:.2} dcol {:.2} col2im {:.2} scatter {:.2}",
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
            );
        }
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
