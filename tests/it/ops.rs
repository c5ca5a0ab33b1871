//! fastvision's kernels against burn's own ops: outputs and gradients on random shapes, and a
//! short training run whose loss curve matches the reference path.

use crate::common;

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use fastvision::learner::Learner;

/// Largest |a − b| relative to the largest |b|.
fn rel_err(got: Tensor<4>, want: Tensor<4>) -> f32 {
    let got = got.into_data().try_to_vec::<f32>().unwrap();
    let want = want.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f32, |a, b| a.max(b.abs())).max(1e-12);
    got.iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
        / scale
}

/// One case: input shape, weight shape, stride, padding (top, bottom), (left, right), dilation.
type Case = (
    [usize; 4],
    [usize; 4],
    [usize; 2],
    [(usize, usize); 2],
    [usize; 2],
);

const CASES: &[Case] = &[
    ([2, 3, 9, 9], [4, 3, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]), // 3×3 stride 1, same
    (
        [2, 5, 10, 7],
        [6, 5, 3, 3],
        [2, 2],
        [(1, 1), (1, 1)],
        [1, 1],
    ), // stride 2, odd width
    (
        [1, 3, 17, 13],
        [8, 3, 7, 7],
        [2, 2],
        [(3, 3), (3, 3)],
        [1, 1],
    ), // ResNet stem, batch 1, odd
    ([3, 6, 5, 5], [4, 6, 1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1]), // 1×1
    ([2, 6, 7, 7], [5, 6, 1, 1], [2, 2], [(0, 0), (0, 0)], [1, 1]), // 1×1 stride 2 (downsample)
    ([2, 4, 8, 9], [3, 4, 3, 3], [2, 2], [(0, 1), (0, 1)], [1, 1]), // TF "SAME": extra pad at the end
    (
        [1, 2, 11, 10],
        [3, 2, 3, 3],
        [1, 1],
        [(2, 2), (2, 2)],
        [2, 2],
    ), // dilation 2
    ([2, 3, 4, 4], [2, 3, 3, 3], [1, 1], [(0, 0), (0, 0)], [1, 1]), // no padding, 2×2 output
    // Taps that only read padding are skipped (ResNet's last stages at 28 px): a 1×1 map under
    // a 3×3 kernel (one live tap), and 2×2 → 1×1 at stride 2 (four live taps).
    ([3, 5, 1, 1], [4, 5, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
    ([2, 5, 2, 2], [6, 5, 3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1]),
];

#[test]
fn convolution_matches_burn_forward_and_gradients() {
    let _lock = common::rng_lock();
    let device = fastvision::device().autodiff();
    for (i, &(xs, ws, stride, padding, dilation)) in CASES.iter().enumerate() {
        let options = ConvOptions::new_with_padding(stride, padding, dilation, 1);
        let x = Tensor::<4>::random(xs, Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random(ws, Distribution::Normal(0.0, 0.5), &device);
        let b = Tensor::<1>::random([ws[0]], Distribution::Normal(0.0, 1.0), &device);
        let run = |fast: bool| {
            let (x, w, b) = (
                x.clone().require_grad(),
                w.clone().require_grad(),
                b.clone().require_grad(),
            );
            let y = if fast {
                fastvision::ops::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone())
            } else {
                burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone())
            };
            // A random linear functional of y, so every output position gets its own gradient.
            let r = Tensor::<4>::from_data(
                TensorData::new(
                    (0..y.shape().num_elements())
                        .map(|k| ((k * 7919) % 13) as f32 / 6.0 - 1.0)
                        .collect(),
                    y.dims(),
                ),
                &device,
            );
            let grads = (y.clone() * r).sum().backward();
            let gx = x.grad(&grads).unwrap();
            let gw = w.grad(&grads).unwrap();
            let gb = b.grad(&grads).unwrap();
            (y.inner(), gx, gw, gb.reshape([1, 1, 1, ws[0]]))
        };
        let (y, gx, gw, gb) = run(true);
        let (ry, rgx, rgw, rgb) = run(false);
        assert_eq!(y.dims(), ry.dims(), "case {i}: output shape");
        for (what, got, want) in [
            ("output", y, ry),
            ("dx", gx, rgx),
            ("dw", gw, rgw),
            ("dbias", gb, rgb),
        ] {
            let e = rel_err(got, want);
            assert!(
                e <= 1e-4,
                "case {i} {:?}: {what} relative error {e}",
                CASES[i]
            );
        }
    }
}

#[test]
fn grouped_convolution_falls_back_to_burn() {
    // Depthwise (EfficientNet): not ours, so it must be exactly burn's result.
    let _lock = common::rng_lock();
    let device = fastvision::device();
    let x = Tensor::<4>::random([2, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<4>::random([4, 1, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 4);
    let got = fastvision::ops::conv2d(x.clone(), w.clone(), None, options.clone());
    let want = burn::tensor::module::conv2d(x, w, None, options);
    assert_eq!(rel_err(got, want), 0.0);
}

#[test]
fn training_follows_the_reference_loss_curve() {
    let _lock = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 3, 16, 4);
    let data = fastvision::data::ImageFolder::from_folder(dir.path(), Default::default()).unwrap();
    let curve = |reference: bool| {
        fastvision::ops::use_reference_ops(reference);
        let device = fastvision::device().autodiff();
        device.seed(7);
        let model = common::tiny_model(3).init(&device).unwrap();
        let dls = fastvision::data::DataLoaders::from_folder(&data, 32, 16, 7);
        let mut learn = Learner::new(model, dls, Default::default(), &device, 7);
        device.seed(11);
        let x = Tensor::<4>::random([16, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<1, Int>::from_data(
            TensorData::new((0..16i64).map(|i| i % 3).collect(), [16]),
            &device,
        );
        let losses: Vec<f64> = (0..8)
            .map(|_| learn.step_tensors(x.clone(), y.clone(), 1e-2, 0.9))
            .collect();
        fastvision::ops::use_reference_ops(false);
        losses
    };
    let fast = curve(false);
    let reference = curve(true);
    assert!(fast[7] < 0.5 * fast[0], "the loss falls: {fast:?}");
    // Float sums in another order drift apart slowly as the weights move: equal to 1e-3 for the
    // first steps, within 5 % at the end of this (deliberately high-LR) run.
    for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
        let tol = if i < 3 { 1e-3 } else { 5e-2 };
        assert!(
            (a - b).abs() <= tol * b.abs(),
            "step {i}: fast {fast:?}\nreference {reference:?}"
        );
    }
}

/// In bf16 (where the CPU has it: AVX-512 BF16 or AMX) the same run as in f32 from the same
/// weights: the first loss close, the loss falling as fast. Without native bf16 the precision
/// is refused.
#[test]
fn bf16_training_follows_the_f32_loss_curve() {
    use fastvision::learner::Precision;
    let _lock = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 3, 16, 4);
    let data = fastvision::data::ImageFolder::from_folder(dir.path(), Default::default()).unwrap();
    let device = burn::tensor::Device::flex().autodiff();
    let curve = |precision: Precision| -> fastvision::Result<Vec<f64>> {
        device.seed(7);
        let model = common::tiny_model(3).init(&device).unwrap();
        let dls = fastvision::data::DataLoaders::from_folder(&data, 32, 16, 7);
        let mut learn = Learner::new(model, dls, Default::default(), &device, 7);
        learn.set_precision(precision)?;
        assert_eq!(learn.precision(), precision);
        device.seed(11);
        let x = Tensor::<4>::random([16, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<1, Int>::from_data(
            TensorData::new((0..16i64).map(|i| i % 3).collect(), [16]),
            &device,
        );
        Ok((0..8)
            .map(|_| learn.step_tensors(x.clone(), y.clone(), 1e-2, 0.9))
            .collect())
    };
    let f32 = curve(Precision::Fp32).unwrap();
    let bf16 = match curve(Precision::Bf16) {
        Ok(c) => c,
        Err(e) => {
            let native = fastvision::ops::kernels::bf16::native();
            assert!(native.is_none(), "bf16 refused on a CPU that has it: {e}");
            assert!(e.to_string().contains("no native bf16"), "{e}");
            return;
        }
    };
    assert!(bf16[7] < 0.5 * bf16[0], "the loss falls in bf16: {bf16:?}");
    // bf16 keeps 8 significant bits: through the net's layers the logits move by about a
    // percent, the first loss by a few (2 % here); the high-LR run then takes its own path.
    assert!(
        (bf16[0] - f32[0]).abs() <= 5e-2 * f32[0],
        "first loss within 5 %: bf16 {bf16:?}\nf32 {f32:?}"
    );
    assert!(
        bf16[7] < 1.5 * f32[7],
        "bf16 ends no worse than half again f32's loss: bf16 {bf16:?}\nf32 {f32:?}"
    );
}

/// `v` rounded to bf16 (nearest, ties to even), as the bf16 products round their operands.
fn round_bf16(v: f32) -> f32 {
    let b = v.to_bits();
    f32::from_bits((b + 0x7fff + ((b >> 16) & 1)) & 0xffff_0000)
}

/// A linear layer under bf16 autocast multiplies in bf16 with f32 sums, forward and both
/// gradients: equal to burn's f32 op on the bf16-rounded input and weight (the output
/// gradient's values are exact in bf16), where rounding moves the f32 results by about 1e-3.
/// Without native bf16 it is burn's f32 op; the extension's own products are checked in f32
/// on every CPU.
#[test]
fn bf16_linear_layer_equals_f32_on_rounded_operands() {
    use burn::tensor::FloatDType;
    let _lock = common::rng_lock();
    let device = fastvision::device().autodiff();
    let (n, i, o) = (37, 70, 45);
    let lin = burn::nn::LinearConfig::new(i, o).init(&device);
    let x = Tensor::<2>::random([n, i], Distribution::Normal(0.0, 1.0), &device);
    let r = Tensor::<2>::from_data(
        TensorData::new(
            (0..n * o)
                .map(|k| ((k * 7919) % 13) as f32 / 4.0 - 1.5)
                .collect(),
            [n, o],
        ),
        &device,
    );
    let rounded = |t: Tensor<2>| {
        let dims = t.dims();
        let v = t.into_data().try_to_vec::<f32>().unwrap();
        Tensor::<2>::from_data(
            TensorData::new(v.into_iter().map(round_bf16).collect(), dims),
            &device,
        )
    };
    let w = lin.weight.val();
    let b = lin.bias.as_ref().unwrap().val();
    // y, dx, dw and dbias of `sum(y ∘ r)`, as 4-D tensors for `rel_err`.
    let run = |fast: bool, x: Tensor<2>, w: Tensor<2>| {
        let (x, w, b) = (x.require_grad(), w.require_grad(), b.clone().require_grad());
        let y = if fast {
            let lin = burn::nn::Linear {
                weight: burn::module::Param::from_tensor(w.clone()),
                bias: Some(burn::module::Param::from_tensor(b.clone())),
            };
            fastvision::ops::autocast::with_autocast(Some(FloatDType::BF16), || {
                fastvision::ops::linear_module(&lin, x.clone())
            })
        } else {
            x.clone().matmul(w.clone()) + b.clone().unsqueeze()
        };
        let grads = (y.clone() * r.clone()).sum().backward();
        let four = |t: Tensor<2>| {
            let [a, c] = t.dims();
            t.reshape([1, 1, a, c])
        };
        [
            four(y.inner()),
            four(x.grad(&grads).unwrap()),
            four(w.grad(&grads).unwrap()),
            four(b.grad(&grads).unwrap().unsqueeze()),
        ]
    };
    let got = run(true, x.clone(), w.clone());
    let native = fastvision::ops::kernels::bf16::native().is_some();
    let want = if native {
        run(false, rounded(x.clone()), rounded(w.clone()))
    } else {
        run(false, x.clone(), w.clone())
    };
    let unrounded = run(false, x.clone(), w.clone());
    for (k, what) in ["output", "dx", "dw", "dbias"].iter().enumerate() {
        let e = rel_err(got[k].clone(), want[k].clone());
        assert!(
            e <= 1e-5,
            "{what}: relative error {e} (native bf16: {native})"
        );
    }
    // The extension's products in f32 (any CPU): the same three products as burn's, so the
    // operands' strides are checked where the CPU has no bf16; without the input's gradient.
    {
        use fastvision::burn::backend::Dispatch;
        use fastvision::ops::kernels::bf16::Mul;
        use fastvision::ops::linear::FastLinear;
        let (x, w) = (x.clone().inner(), w.clone().inner());
        let r2 = r.clone().inner();
        let y = Tensor::<2>::from_dispatch(<Dispatch as FastLinear>::fast_linear(
            x.clone().into_dispatch(),
            w.clone().into_dispatch(),
            Mul::F32,
        ));
        let (dx, dw) = <Dispatch as FastLinear>::fast_linear_backward(
            x.clone().into_dispatch(),
            w.clone().into_dispatch(),
            r2.clone().into_dispatch(),
            Mul::F32,
            false,
        );
        let (dx, dw) = (
            Tensor::<1>::from_dispatch(dx),
            Tensor::<2>::from_dispatch(dw),
        );
        assert_eq!(dx.dims(), [0], "no input gradient asked for");
        let four = |t: Tensor<2>| {
            let [a, c] = t.dims();
            t.reshape([1, 1, a, c])
        };
        for (what, got, want) in [
            ("f32 output", y, x.clone().matmul(w.clone())),
            ("f32 dw", dw, x.transpose().matmul(r2)),
        ] {
            let e = rel_err(four(got), four(want));
            assert!(e <= 1e-5, "{what}: relative error {e}");
        }
    }
    if native {
        // The bf16 path was taken: the output is not f32's on the unrounded operands.
        let e = rel_err(got[0].clone(), unrounded[0].clone());
        assert!(
            e > 1e-4,
            "output within {e} of f32's: not multiplied in bf16"
        );
    }
}

#[test]
fn fused_adam_equals_the_tensor_formula() {
    use fastvision::ops::adam::AdamStep;
    let _lock = common::rng_lock();
    let device = fastvision::device();
    let p = Tensor::<2>::random([37, 101], Distribution::Normal(0.0, 1.0), &device);
    let g = Tensor::<2>::random([37, 101], Distribution::Normal(0.0, 0.1), &device);
    let m = Tensor::<2>::random([37, 101], Distribution::Normal(0.0, 0.05), &device);
    let v = Tensor::<2>::random([37, 101], Distribution::Uniform(0.0, 0.01), &device);
    for (t, wd) in [(1, 0.01), (7, 0.0)] {
        let step = AdamStep::new(3e-3, 0.87, 0.99, 1e-5, wd, t);
        // The parameter shared (as when the model still holds it: a new buffer is written) or
        // owned by the step alone (updated in place).
        let run = |reference: bool, shared: bool| {
            fastvision::ops::use_reference_ops(reference);
            let param = if shared {
                p.clone()
            } else {
                p.clone().mul_scalar(1.0)
            };
            let out = fastvision::ops::adam_step(param, g.clone(), m.clone(), v.clone(), step);
            fastvision::ops::use_reference_ops(false);
            out
        };
        for shared in [true, false] {
            let (fp, fm, fv) = run(false, shared);
            let (rp, rm, rv) = run(true, shared);
            for (what, a, b) in [("param", fp, rp), ("m", fm, rm), ("v", fv, rv)] {
                let e = rel_err(a.reshape([1, 1, 37, 101]), b.reshape([1, 1, 37, 101]));
                assert!(
                    e <= 1e-6,
                    "step {t}, shared {shared}: {what} relative error {e}"
                );
            }
        }
    }
    // The inputs are not modified in place (they may be shared with the model).
    let before = p.clone().into_data();
    let (updated, _, _) = fastvision::ops::adam_step(
        p.clone(),
        g,
        m,
        v,
        AdamStep::new(1e-3, 0.9, 0.99, 1e-5, 0.0, 1),
    );
    assert_eq!(p.into_data(), before);
    assert_ne!(updated.into_data(), before);
}

#[test]
fn inference_batchnorm_in_the_convolution_equals_the_reference() {
    use fastvision::models::{Arch, ClassifierConfig};
    let _lock = common::rng_lock();
    for config in [
        common::tiny_model(3),
        ClassifierConfig::new(Arch::EfficientnetLite0, 3).with_hidden(16),
    ] {
        let model = common::briefly_trained(&config, 4, 3);
        let plain = fastvision::device();
        let x = Tensor::<4>::random([5, 3, 40, 36], Distribution::Normal(0.0, 1.5), &plain);
        let folded = model.forward(x.clone());
        fastvision::ops::use_reference_ops(true);
        let reference = model.forward(x);
        fastvision::ops::use_reference_ops(false);
        let e = rel_err(
            folded.reshape([1, 1, 5, 3]),
            reference.reshape([1, 1, 5, 3]),
        );
        assert!(
            e <= 1e-5,
            "{:?}: inference with BatchNorm in the convolution differs by {e}",
            config.arch
        );
    }
}

#[test]
fn fused_batchnorm_training_matches_burn() {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};
    use fastvision::ops::{Activation, conv_bn};
    let _lock = common::rng_lock();
    let device = fastvision::device().autodiff();
    device.seed(9);
    let conv = Conv2dConfig::new([3, 5], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(&device);
    // A fresh BatchNorm per run: its running statistics are shared between clones.
    let new_bn = || {
        let mut bn = BatchNormConfig::new(5).init(&device);
        let vec5 = |v: [f32; 5]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [5]), &device);
        bn.gamma = burn::module::Param::from_tensor(vec5([1.3, 0.7, 1.9, 0.4, 1.1]));
        bn.beta = burn::module::Param::from_tensor(vec5([-0.3, 0.2, 0.0, 0.5, -0.1]));
        bn
    };
    // Planes of 42 and 72 pixels (below and above the kernels' small-plane size), 2 pixels over
    // 70 images (their f32 sums flushed to f64 after 64), 1 pixel.
    let shapes = [[4, 3, 7, 6], [2, 3, 9, 8], [70, 3, 1, 2], [6, 3, 1, 1]];
    let cases = shapes
        .into_iter()
        .flat_map(|shape| [Activation::Relu, Activation::Identity].map(|act| (shape, act)));
    for (shape, act) in cases {
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.3, 2.0), &device);
        let run = |reference: bool| {
            fastvision::ops::use_reference_ops(reference);
            let (conv, bn) = (conv.clone(), new_bn());
            let x = x.clone().require_grad();
            assert!(bn.gamma.val().is_require_grad() && bn.beta.val().is_require_grad());
            let y = conv_bn(&conv, &bn, x.clone(), act);
            let r = Tensor::<4>::from_data(
                TensorData::new(
                    (0..y.shape().num_elements())
                        .map(|k| ((k * 31) % 17) as f32 / 8.0 - 1.0)
                        .collect(),
                    y.dims(),
                ),
                &device,
            );
            let grads = (y.clone() * r).sum().backward();
            fastvision::ops::use_reference_ops(false);
            let c = |t: Tensor<1>| t.reshape([1, 1, 1, 5]);
            (
                y.inner(),
                x.grad(&grads).unwrap(),
                conv.weight.grad(&grads).unwrap(),
                c(bn.gamma.grad(&grads).unwrap()),
                c(bn.beta.grad(&grads).unwrap()),
                c(bn.running_mean.value().inner()),
                c(bn.running_var.value().inner()),
            )
        };
        let fast = run(false);
        let reference = run(true);
        let pairs = [
            ("output", fast.0, reference.0),
            ("dx", fast.1, reference.1),
            ("dw", fast.2, reference.2),
            ("dgamma", fast.3, reference.3),
            ("dbeta", fast.4, reference.4),
            ("running mean", fast.5, reference.5),
            ("running var", fast.6, reference.6),
        ];
        for (what, a, b) in pairs {
            let e = rel_err(a, b);
            assert!(e <= 1e-4, "{shape:?} {act:?}: {what} relative error {e}");
        }
    }
}

#[test]
fn max_pooling_matches_burn_forward_and_gradient() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::pool::MaxPool2dConfig;
    let _lock = common::rng_lock();
    let device = fastvision::device().autodiff();
    // ResNet's stem pool (3×3, stride 2, padding 1) on even and odd sizes, batch 1, rows of 3
    // and 4; a 2×2 pool without padding; a 3×3 stride-1 pool; a 1-pixel map.
    for (xs, k, s, p) in [
        ([2, 3, 14, 14], 3, 2, 1),
        ([1, 4, 9, 7], 3, 2, 1),
        ([1, 2, 4, 3], 3, 2, 1),
        ([2, 2, 5, 4], 3, 2, 1),
        ([2, 2, 8, 7], 2, 2, 0),
        ([3, 2, 5, 6], 3, 1, 1),
        ([2, 3, 1, 1], 3, 2, 1),
    ] {
        let pool = MaxPool2dConfig::new([k, k])
            .with_strides([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init();
        let x = Tensor::<4>::random(xs, Distribution::Normal(0.0, 1.0), &device);
        let run = |reference: bool| {
            fastvision::ops::use_reference_ops(reference);
            let x = x.clone().require_grad();
            let y = fastvision::ops::max_pool2d_module(&pool, x.clone());
            let r = Tensor::<4>::from_data(
                TensorData::new(
                    (0..y.shape().num_elements())
                        .map(|i| ((i * 13) % 11) as f32 / 5.0 - 1.0)
                        .collect(),
                    y.dims(),
                ),
                &device,
            );
            let grads = (y.clone() * r).sum().backward();
            fastvision::ops::use_reference_ops(false);
            (y.inner(), x.grad(&grads).unwrap())
        };
        let (fast, reference) = (run(false), run(true));
        assert_eq!(fast.0.dims(), reference.0.dims(), "{xs:?} k{k} s{s} p{p}");
        for (what, a, b) in [("output", fast.0, reference.0), ("dx", fast.1, reference.1)] {
            let e = rel_err(a, b);
            assert!(
                e <= 1e-6,
                "{xs:?} k{k} s{s} p{p}: {what} relative error {e}"
            );
        }
    }
}
