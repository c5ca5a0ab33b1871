//! Per-layer timing of the fused BatchNorm kernels on ResNet-18's activation shapes (dev tool):
//! `cargo run --example bn_kernels -- [batch 64] [size 28]`.
use burn::backend::flex::{Flex, FlexTensor};
use burn::tensor::TensorData;
use fastvision::ops::batchnorm::FastBatchNorm;
use std::time::Instant;

fn t(v: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bs: usize = args.get(1).map_or(64, |s| s.parse().unwrap());
    let size: usize = args.get(2).map_or(28, |s| s.parse().unwrap());
    let reps = 10;
    let mut shapes = vec![(64, size.div_ceil(2), 1)];
    let mut hw = size.div_ceil(4);
    shapes.push((64, hw, 4));
    for c in [128, 256, 512] {
        hw = hw.div_ceil(2);
        shapes.push((c, hw, 5));
    }
    let (mut tf, mut tb) = (0.0, 0.0);
    for (c, hw, count) in shapes {
        let len = bs * c * hw * hw;
        // Signs in no regular pattern, as in real activations (a periodic ramp lets the branch
        // predictor learn the ReLU mask and hides mispredictions).
        let noise = |i: usize| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f32;
        let x: Vec<f32> = (0..len)
            .map(|i| noise(i) / (1u64 << 23) as f32 - 1.0)
            .collect();
        let dy: Vec<f32> = (0..len).map(|i| ((i % 37) as f32) * 0.01).collect();
        let shape = vec![bs, c, hw, hw];
        let (g, b) = (vec![1.0f32; c], vec![0.1f32; c]);
        let mut f = 0.0;
        let mut bw = 0.0;
        for _ in 0..reps {
            let s = Instant::now();
            let (_, mean, var) = Flex::fast_bn_train(
                t(x.clone(), shape.clone()),
                t(g.clone(), vec![c]),
                t(b.clone(), vec![c]),
                1e-5,
                true,
            );
            f += s.elapsed().as_secs_f64();
            let (xx, gg, bb, dd) = (
                t(x.clone(), shape.clone()),
                t(g.clone(), vec![c]),
                t(b.clone(), vec![c]),
                t(dy.clone(), shape.clone()),
            );
            let s = Instant::now();
            std::hint::black_box(Flex::fast_bn_backward(
                xx, gg, bb, mean, var, dd, 1e-5, true,
            ));
            bw += s.elapsed().as_secs_f64();
        }
        let (f, bw) = (f / reps as f64 * 1e3, bw / reps as f64 * 1e3);
        println!("[{bs}, {c}, {hw}, {hw}] x{count}: fwd {f:.2} ms  bwd {bw:.2} ms");
        tf += f * count as f64;
        tb += bw * count as f64;
    }
    println!("total: fwd {tf:.1} ms, bwd {tb:.1} ms");
}
