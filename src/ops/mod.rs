//! Our own kernels for the ops that dominate training on the CPU, behind burn's
//! backend-extension API, with burn's own ops as the reference and as the fallback.
//!
//! Layers call the functions here instead of burn's directly. On flex (the default CPU backend)
//! they run [`kernels`] through the [`conv::FastConv`] extension, which carries its own backward;
//! on every other backend (tch, vulkan), for dtypes other than f32, grouped convolutions, or
//! after [`use_reference_ops`]`(true)`, they call burn's op, which is also what the tests
//! compare against.

pub mod adam;
pub mod autocast;
pub mod batchnorm;
pub mod conv;
pub mod kernels;
pub mod linear;
pub mod pool;
pub mod profile;
pub mod workers;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::flex::FlexTensor;
use burn::backend::{Dispatch, DispatchDevice};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, FloatDType, Tensor};

use adam::{AdamStep, FastAdam};
use batchnorm::FastBatchNorm;
use conv::{FastConv, FastConvInference};
pub use kernels::Activation;
use kernels::ConvGeom;
use kernels::bf16::{self, Mul};
use linear::FastLinear;
use pool::{FastMaxPool, PoolGeom};
use profile::{Op, timed};

/// A contiguous, offset-free f32 flex tensor (copied only when it is strided or offset), so its
/// storage is the tensor's elements in order.
fn contiguous(t: FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "fastvision's kernels: f32 only");
    if t.is_contiguous() && t.layout().start_offset() == 0 {
        t
    } else {
        t.to_contiguous()
    }
}

/// The elements of a tensor made by [`contiguous`].
#[allow(
    clippy::expect_used,
    reason = "callers pass tensors made by `contiguous`"
)]
fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

static REFERENCE: AtomicBool = AtomicBool::new(false);

/// Use burn's own ops everywhere (`true`) or our kernels where they apply (`false`, the
/// default): for before/after benchmarks and parity tests.
pub fn use_reference_ops(on: bool) {
    REFERENCE.store(on, Ordering::Relaxed);
}

/// Whether [`use_reference_ops`] is on.
pub fn reference_ops() -> bool {
    REFERENCE.load(Ordering::Relaxed)
}

/// Whether `x` can take our kernels: f32 on the flex device, reference mode off.
fn fast_path<const D: usize>(x: &Tensor<D>) -> bool {
    !reference_ops()
        && x.dtype() == DType::F32
        && matches!(x.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// How our kernels multiply `x` on this thread now: f32, or under bf16 autocast the CPU's
/// native bf16; `None` where they do not take it (another backend or dtype, reference mode, a
/// precision they do not compute in), left to burn's ops.
fn kernel_mul<const D: usize>(x: &Tensor<D>) -> Option<Mul> {
    if !fast_path(x) {
        return None;
    }
    match autocast::half() {
        None => Some(Mul::F32),
        Some(FloatDType::BF16) => bf16::native(),
        Some(_) => None,
    }
}

/// The kernels' geometry of `x` convolved with `weight` under `options`, multiplying as `mul`.
fn geom_of(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>, mul: Mul) -> ConvGeom {
    ConvGeom::new(
        x.dims(),
        weight.dims(),
        options.stride,
        options.padding,
        options.dilation,
    )
    .with_mul(mul)
}

/// `burn::tensor::module::conv2d`, through our kernels where they apply.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let mul = kernel_mul(&x);
    let Some(mul) = mul.filter(|_| options.groups == 1) else {
        return match autocast::half() {
            // Mixed precision on a backend that has the dtype: compute in half precision, hand
            // back f32. On flex, convolutions our kernels do not take (grouped) stay f32.
            Some(half) if mul.is_none() => {
                let y = timed(Op::ConvForward, || {
                    burn::tensor::module::conv2d(
                        x.cast(half),
                        weight.cast(half),
                        bias.map(|b| b.cast(half)),
                        options,
                    )
                });
                y.cast(FloatDType::F32)
            }
            // burn's forward is timed too; its backward runs inside autodiff, out of our sight.
            _ => timed(Op::ConvForward, || {
                burn::tensor::module::conv2d(x, weight, bias, options)
            }),
        };
    };
    let geom = geom_of(&x, &weight, &options, mul);
    let y = Tensor::<4>::from_dispatch(<Dispatch as FastConv>::fast_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        geom,
    ));
    match bias {
        Some(b) => {
            let o = b.dims()[0];
            y + b.reshape([1, o, 1, 1])
        }
        None => y,
    }
}

/// The options of `conv`'s forward, or `None` for `Same` padding (left to burn's forward).
fn conv_options(conv: &Conv2d) -> Option<ConvOptions<2>> {
    let ((top, bottom), (left, right)) = match conv.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        PaddingConfig2d::Same => return None,
    };
    Some(ConvOptions::new_with_padding(
        conv.stride,
        [(top, bottom), (left, right)],
        conv.dilation,
        conv.groups,
    ))
}

/// `Conv2d::forward`, through [`conv2d`] (burn's own forward for `Same` padding).
pub fn conv2d_module(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match conv_options(conv) {
        Some(options) => conv2d(
            x,
            conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
            options,
        ),
        None => conv.forward(x),
    }
}

/// `Linear::forward` on `[n, d_input]` rows: under bf16 autocast on flex the products in bf16
/// with f32 sums, forward and backward ([`linear::FastLinear`]), as PyTorch's CPU autocast
/// runs its linear layers; burn's own op in f32 and elsewhere.
pub fn linear_module(lin: &Linear, x: Tensor<2>) -> Tensor<2> {
    let mul = match kernel_mul(&x) {
        Some(mul) if mul.is_bf16() => mul,
        _ => return lin.forward(x),
    };
    let y = Tensor::<2>::from_dispatch(<Dispatch as FastLinear>::fast_linear(
        x.into_dispatch(),
        lin.weight.val().into_dispatch(),
        mul,
    ));
    match &lin.bias {
        Some(b) => y + b.val().unsqueeze(),
        None => y,
    }
}

/// `MaxPool2d::forward`, through our kernel on flex (explicit or no padding, dilation 1, floor
/// mode); burn's op otherwise.
pub fn max_pool2d_module(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let pad = match pool.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    let pad = match pad {
        Some(p) if fast_path(&x) && pool.dilation == [1, 1] && !pool.ceil_mode => p,
        _ => return pool.forward(x),
    };
    let [b, c, h, w] = x.dims();
    let (k, s) = (pool.kernel_size, pool.stride);
    if h + 2 * pad[0] < k[0] || w + 2 * pad[1] < k[1] {
        return pool.forward(x);
    }
    let geom = PoolGeom {
        planes: b * c,
        h,
        w,
        k,
        stride: s,
        pad,
        oh: (h + 2 * pad[0] - k[0]) / s[0] + 1,
        ow: (w + 2 * pad[1] - k[1]) / s[1] + 1,
    };
    Tensor::from_dispatch(<Dispatch as FastMaxPool>::fast_max_pool2d(
        x.into_dispatch(),
        geom,
    ))
}

fn activate(y: Tensor<4>, act: Activation) -> Tensor<4> {
    match act {
        Activation::Identity => y,
        Activation::Relu => burn::tensor::activation::relu(y),
        Activation::Relu6 => y.clamp(0.0, 6.0),
    }
}

/// BatchNorm in inference as a per-channel affine map `x·s + t` on `device`:
/// `s = γ/√(var + ε)`, `t = β − μ·s`.
pub fn bn_scale_shift(bn: &BatchNorm, device: &burn::tensor::Device) -> (Tensor<1>, Tensor<1>) {
    let var = bn.running_var.value().to_device(device);
    let mean = bn.running_mean.value().to_device(device);
    let scale = bn.gamma.val() / var.add_scalar(bn.epsilon).sqrt();
    let shift = bn.beta.val() - mean * scale.clone();
    (scale, shift)
}

/// The weight and bias of `conv` followed by `bn` in inference as one convolution:
/// `w·γ/σ` and `β − μ·γ/σ` (plus the convolution's own bias, scaled), `σ = √(var + ε)`.
pub fn fold_bn(conv: &Conv2d, bn: &BatchNorm) -> (Tensor<4>, Tensor<1>) {
    let o = conv.weight.dims()[0];
    let (scale, shift) = bn_scale_shift(bn, &conv.weight.val().device());
    let weight = conv.weight.val() * scale.clone().reshape([o, 1, 1, 1]);
    let mut bias = shift;
    if let Some(b) = &conv.bias {
        bias = bias + b.val() * scale;
    }
    (weight, bias)
}

/// `act(bn(conv(x)))`. In training, exactly that; in inference (eval mode, or a frozen
/// BatchNorm) the BatchNorm is the per-channel map `y·γ/σ + (β − μ·γ/σ)`: on flex applied with
/// the activation in the convolution's output pass, elsewhere folded into the convolution's
/// weight and bias.
pub fn conv_bn(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>, act: Activation) -> Tensor<4> {
    let autodiff = x.device().is_autodiff();
    let options = conv_options(conv);
    let options = match options {
        Some(o) if !(reference_ops() || autodiff && bn.training.is_enabled()) => o,
        _ => {
            let y = conv2d_module(conv, x);
            if autodiff && bn.training.is_enabled() && fast_path(&y) {
                return batch_norm_train(bn, y, act);
            }
            return activate(timed(Op::BatchNorm, || bn.forward(y)), act);
        }
    };
    let mul = kernel_mul(&x);
    if let (false, 1, Some(mul)) = (autodiff, options.groups, mul) {
        // On flex the BatchNorm's scale and shift are applied in the convolution's output pass
        // (the same arithmetic as folding, without rewriting the weights on every call).
        let (scale, mut shift) = bn_scale_shift(bn, &x.device());
        if let Some(b) = &conv.bias {
            shift = shift + b.val() * scale.clone();
        }
        let weight = conv.weight.val();
        let geom = geom_of(&x, &weight, &options, mul).with_weight_id(conv.weight.id.val());
        return Tensor::from_dispatch(<Dispatch as FastConvInference>::fast_conv2d_affine_act(
            x.into_dispatch(),
            weight.into_dispatch(),
            scale.into_dispatch(),
            shift.into_dispatch(),
            geom,
            act,
        ));
    }
    let (weight, bias) = fold_bn(conv, bn);
    activate(conv2d(x, weight, Some(bias), options), act)
}

/// `bn(x)` over `[b, c]` rows (a tabular model's BatchNorm1d): in training on flex our
/// BatchNorm, which synchronises its statistics over data-parallel ranks when asked; elsewhere
/// burn's.
pub fn batch_norm_1d(bn: &BatchNorm, x: Tensor<2>) -> Tensor<2> {
    let [b, c] = x.dims();
    if b > 0 && x.device().is_autodiff() && bn.training.is_enabled() {
        let y = x.clone().reshape([b, c, 1, 1]);
        if fast_path(&y) {
            return batch_norm_train(bn, y, Activation::Identity).reshape([b, c]);
        }
    }
    bn.forward(x)
}

/// `act(bn(y))` in training on flex: our fused BatchNorm (+ ReLU), and the running statistics
/// updated exactly as burn's `BatchNorm::forward` does (momentum, biased batch variance).
fn batch_norm_train(bn: &BatchNorm, y: Tensor<4>, act: Activation) -> Tensor<4> {
    let relu = act == Activation::Relu;
    let (out, mean, var) = <Dispatch as FastBatchNorm>::fast_bn_train(
        y.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon as f32,
        relu,
    );
    let (out, mean, var) = (
        Tensor::<4>::from_dispatch(out),
        Tensor::<1>::from_dispatch(mean),
        Tensor::<1>::from_dispatch(var),
    );
    let device = out.device();
    let m = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean.update(
        running_mean
            .mul_scalar(1.0 - m)
            .add(mean.detach().mul_scalar(m))
            .detach(),
    );
    bn.running_var.update(
        running_var
            .mul_scalar(1.0 - m)
            .add(var.detach().mul_scalar(m))
            .detach(),
    );
    if relu { out } else { activate(out, act) }
}

/// One Adam step (fastai's, decoupled weight decay): the updated parameter and moments.
/// `m` and `v` start as zeros.
pub fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    s: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let device = param.device();
    let flex = matches!(device.as_dispatch(), DispatchDevice::Flex(_));
    if !reference_ops() && flex && param.dtype() == DType::F32 {
        let (p, m, v) = <Dispatch as FastAdam>::fast_adam(
            param.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            s,
        );
        return (
            Tensor::from_dispatch(p),
            Tensor::from_dispatch(m),
            Tensor::from_dispatch(v),
        );
    }
    let m = m.mul_scalar(s.mom) + grad.clone().mul_scalar(1.0 - s.mom);
    let v = v.mul_scalar(s.sqr_mom) + grad.square().mul_scalar(1.0 - s.sqr_mom);
    let denom = v.clone().div_scalar(s.debias2).sqrt().add_scalar(s.eps);
    let update = m.clone().div(denom).mul_scalar(s.step_size);
    let decayed = if s.decay == 1.0 {
        param
    } else {
        param.mul_scalar(s.decay)
    };
    (decayed - update, m, v)
}
