//! BatchNorm in training (batch statistics), optionally followed by ReLU, as one pass for the
//! statistics and one for the output, with a two-pass handwritten backward (flex). burn's
//! generic version transposes the activation to channels-first and back several times.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::profile::{Op, timed};
use super::{contiguous, slice};

/// BatchNorm (+ ReLU) with batch statistics.
#[backend_extension(Flex, Autodiff)]
pub trait FastBatchNorm: Backend {
    /// `y = act((x − μ)/√(σ² + ε)·γ + β)` over `[b, c, h, w]` with the batch's per-channel mean
    /// and biased variance, which are returned too (untracked) for the running statistics.
    fn fast_bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f32,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of [`FastBatchNorm::fast_bn_train`] for `x`, `γ` and `β`.
    #[allow(clippy::too_many_arguments)]
    fn fast_bn_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `[b, c, spatial]` of a `[b, c, …]` shape.
fn dims(t: &FlexTensor) -> (usize, usize, usize) {
    let shape = t.layout().shape();
    let (b, c) = (shape[0], shape[1]);
    (b, c, shape.num_elements() / (b * c).max(1))
}

/// The `s`-long planes of channel `ci` across the batch.
fn planes(x: &[f32], b: usize, c: usize, s: usize, ci: usize) -> impl Iterator<Item = &[f32]> {
    (0..b).map(move |bi| &x[(bi * c + ci) * s..][..s])
}

/// Two running sums over many slices: f32 sums in 16 independent lanes (which the compiler
/// vectorises; a single running sum is bound by the add latency), moved into f64 totals every
/// few thousand values so that long channels keep f64 accuracy.
#[derive(Default)]
struct LaneSums {
    lanes: [[f32; 16]; 2],
    tail: [f32; 2],
    pending: usize,
    total: [f64; 2],
}

impl LaneSums {
    /// Adds `f(a[i], b[i])` for every pair.
    fn add(&mut self, a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) {
        let (mut ia, mut ib) = (a.chunks_exact(16), b.chunks_exact(16));
        for (ca, cb) in (&mut ia).zip(&mut ib) {
            for i in 0..16 {
                let (u, v) = f(ca[i], cb[i]);
                self.lanes[0][i] += u;
                self.lanes[1][i] += v;
            }
        }
        for (&x, &y) in ia.remainder().iter().zip(ib.remainder()) {
            let (u, v) = f(x, y);
            self.tail[0] += u;
            self.tail[1] += v;
        }
        self.pending += a.len();
        if self.pending >= 4096 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        for k in 0..2 {
            let lanes: f64 = self.lanes[k].iter().map(|&l| l as f64).sum();
            self.total[k] += lanes + self.tail[k] as f64;
        }
        (self.lanes, self.tail, self.pending) = ([[0.0; 16]; 2], [0.0; 2], 0);
    }

    /// The two totals.
    fn totals(mut self) -> (f64, f64) {
        self.flush();
        (self.total[0], self.total[1])
    }
}

/// Per-channel mean and biased variance: one pass of lane sums of `x − x₀` and `(x − x₀)²`,
/// shifted by the channel's first value `x₀` so that the difference of squares does not cancel.
pub fn batch_stats(x: &[f32], b: usize, c: usize, s: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (b * s) as f64;
    (0..c)
        .into_par_iter()
        .map(|ci| {
            let x0 = x[ci * s];
            let mut acc = LaneSums::default();
            for p in planes(x, b, c, s, ci) {
                acc.add(p, p, |v, _| {
                    let d = v - x0;
                    (d, d * d)
                });
            }
            let (sum, sq) = acc.totals();
            let mean = sum / n;
            let var = (sq / n - mean * mean).max(0.0);
            ((mean + x0 as f64) as f32, var as f32)
        })
        .unzip()
}

impl FastBatchNorm for Flex {
    fn fast_bn_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f32,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        timed(Op::BatchNorm, || {
            let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
            let (b, c, s) = dims(&x);
            let (xs, gs, bs) = (slice(&x), slice(&gamma), slice(&beta));
            let (mean, var) = batch_stats(xs, b, c, s);
            let mut y = vec![0.0f32; xs.len()];
            y.par_chunks_mut(s)
                .with_min_len((4096 / s).max(1))
                .enumerate()
                .for_each(|(p, out)| {
                    let ci = p % c;
                    let scale = gs[ci] / (var[ci] + eps).sqrt();
                    let shift = bs[ci] - mean[ci] * scale;
                    for (o, &v) in out.iter_mut().zip(&xs[p * s..][..s]) {
                        let z = v * scale + shift;
                        *o = if relu { z.max(0.0) } else { z };
                    }
                });
            let shape = x.layout().shape().clone();
            (
                FlexTensor::from_data(TensorData::new(y, shape)),
                FlexTensor::from_data(TensorData::new(mean, [c])),
                FlexTensor::from_data(TensorData::new(var, [c])),
            )
        })
    }

    fn fast_bn_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        grad: FlexTensor,
        eps: f32,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        timed(Op::BatchNorm, || {
            let (x, gamma, beta, mean, var, dy) = (
                contiguous(x),
                contiguous(gamma),
                contiguous(beta),
                contiguous(mean),
                contiguous(var),
                contiguous(grad),
            );
            let (b, c, s) = dims(&x);
            let (xs, gs, bs, ms, vs, dys) = (
                slice(&x),
                slice(&gamma),
                slice(&beta),
                slice(&mean),
                slice(&var),
                slice(&dy),
            );
            let n = (b * s) as f32;
            let invstd: Vec<f32> = vs.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
            // The forward's affine map; dy through the ReLU is zero where its output was ≤ 0.
            let affine = |ci: usize| {
                let scale = gs[ci] / (vs[ci] + eps).sqrt();
                (scale, bs[ci] - ms[ci] * scale)
            };
            let dz = |v: f32, g: f32, (scale, shift): (f32, f32)| {
                if relu && v * scale + shift <= 0.0 {
                    0.0
                } else {
                    g
                }
            };
            let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = (0..c)
                .into_par_iter()
                .map(|ci| {
                    let (m, inv, aff) = (ms[ci], invstd[ci], affine(ci));
                    let mut acc = LaneSums::default();
                    for bi in 0..b {
                        let o = (bi * c + ci) * s;
                        acc.add(&xs[o..o + s], &dys[o..o + s], |v, g| {
                            let g = dz(v, g, aff);
                            (g * ((v - m) * inv), g)
                        });
                    }
                    let (dg, db) = acc.totals();
                    (dg as f32, db as f32)
                })
                .unzip();
            let mut dx = vec![0.0f32; xs.len()];
            dx.par_chunks_mut(s)
                .with_min_len((4096 / s).max(1))
                .enumerate()
                .for_each(|(p, out)| {
                    let ci = p % c;
                    let (m, inv, aff) = (ms[ci], invstd[ci], affine(ci));
                    let k = gs[ci] * inv / n;
                    let (db, dg) = (dbeta[ci], dgamma[ci]);
                    for ((o, &v), &g) in out
                        .iter_mut()
                        .zip(&xs[p * s..][..s])
                        .zip(&dys[p * s..][..s])
                    {
                        let xhat = (v - m) * inv;
                        *o = k * (n * dz(v, g, aff) - db - xhat * dg);
                    }
                });
            let shape = x.layout().shape().clone();
            (
                FlexTensor::from_data(TensorData::new(dx, shape)),
                FlexTensor::from_data(TensorData::new(dgamma, [c])),
                FlexTensor::from_data(TensorData::new(dbeta, [c])),
            )
        })
    }
}

impl<B: Backend + FastBatchNorm, C: CheckpointStrategy> FastBatchNorm for Autodiff<B, C> {
    fn fast_bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f32,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct FastBnBackward;

        type Prim<B> = <B as burn::backend::BackendTypes>::FloatTensorPrimitive;

        impl<B: Backend + FastBatchNorm> Backward<B, 3> for FastBnBackward {
            // x, γ, β, the batch mean and variance, ε, ReLU.
            type State = (Prim<B>, Prim<B>, Prim<B>, Prim<B>, Prim<B>, f32, bool);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [node_x, node_g, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, gamma, beta, mean, var, eps, relu) = ops.state;
                let (dx, dg, db) = B::fast_bn_backward(x, gamma, beta, mean, var, grad, eps, relu);
                for (node, g) in [(node_x, dx), (node_g, dg), (node_b, db)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, g);
                    }
                }
            }
        }

        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let (y, mean, var) = B::fast_bn_train(x.clone(), gamma.clone(), beta.clone(), eps, relu);
        let stats = (
            <FloatTensor<Self>>::new(mean.clone()),
            <FloatTensor<Self>>::new(var.clone()),
        );
        let y = match FastBnBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, gamma, beta, mean, var, eps, relu), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, stats.0, stats.1)
    }

    fn fast_bn_backward(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _beta: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _var: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _eps: f32,
        _relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("the BatchNorm backward runs on the inner backend, never under autodiff")
    }
}
