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

use super::kernels::{rows_filled_by, rows_from};
use super::profile::{Op, timed};
use super::{contiguous, slice};
use crate::distributed::Collective;

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

/// Planes (pixels per channel and image) below this size take the image-row kernels: one task
/// per block of an image's `[c, s]` values instead of one per plane, with per-element f32 sums
/// across the batch instead of a [`LaneSums`] per plane, whose set-up cost more than its few
/// values (ResNet's last stages: `[64, 512, 1, 1]` took 0.55 ms forward, 17 ns a value).
const SMALL_PLANE: usize = 64;

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

/// Per channel of two `[b, c, s]` arrays, the two sums of `f(a, b, params[channel])` over every
/// element of the channel: f32 partial sums moved into f64 totals (see [`LaneSums`]).
fn channel_sums<P: Copy + Send + Sync>(
    (a, bb): (&[f32], &[f32]),
    (b, c, s): (usize, usize, usize),
    params: &[P],
    f: impl Fn(f32, f32, P) -> (f32, f32) + Sync + Send,
) -> Vec<(f64, f64)> {
    if s >= SMALL_PLANE {
        return (0..c)
            .into_par_iter()
            .map(|ci| {
                let p = params[ci];
                let mut acc = LaneSums::default();
                for bi in 0..b {
                    let o = (bi * c + ci) * s;
                    acc.add(&a[o..o + s], &bb[o..o + s], |u, v| f(u, v, p));
                }
                acc.totals()
            })
            .collect();
    }
    // Blocks of whole channels, about 2048 values of an image each: per image, the block's
    // values are added element by element into f32 sums (one per element, flushed to f64 every
    // 64 images), which are then folded per channel.
    let per_block = (2048 / s).max(1);
    (0..c.div_ceil(per_block))
        .into_par_iter()
        .flat_map_iter(|blk| {
            let (c0, c1) = (blk * per_block, ((blk + 1) * per_block).min(c));
            let (lo, hi) = (c0 * s, c1 * s);
            let mut part = vec![[0.0f32; 2]; hi - lo];
            let mut total = vec![[0.0f64; 2]; hi - lo];
            for bi in 0..b {
                let o = bi * c * s;
                let (ra, rb) = (&a[o + lo..o + hi], &bb[o + lo..o + hi]);
                let planes = part.chunks_exact_mut(s).zip(ra.chunks_exact(s));
                for ((acc, pa), (pb, &p)) in planes.zip(rb.chunks_exact(s).zip(&params[c0..c1])) {
                    for (acc, (&u, &v)) in acc.iter_mut().zip(pa.iter().zip(pb)) {
                        let (x, y) = f(u, v, p);
                        acc[0] += x;
                        acc[1] += y;
                    }
                }
                if bi % 64 == 63 || bi + 1 == b {
                    for (t, acc) in total.iter_mut().zip(part.iter_mut()) {
                        t[0] += acc[0] as f64;
                        t[1] += acc[1] as f64;
                        *acc = [0.0; 2];
                    }
                }
            }
            total
                .chunks_exact(s)
                .map(|ch| ch.iter().fold((0.0, 0.0), |(x, y), t| (x + t[0], y + t[1])))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `out[i] = f(a[i], b[i], params[channel of i])` over two `[b, c, s]` arrays, in parallel.
fn map_channels<P: Copy + Send + Sync>(
    (a, bb): (&[f32], &[f32]),
    (c, s): (usize, usize),
    params: &[P],
    f: impl Fn(f32, f32, P) -> f32 + Sync + Send,
) -> Vec<f32> {
    if s >= SMALL_PLANE {
        return rows_from(a.len(), s, |row| {
            let p = params[row % c];
            let src = a[row * s..][..s].iter().zip(&bb[row * s..][..s]);
            let f = &f;
            src.map(move |(&u, &v)| f(u, v, p))
        });
    }
    rows_filled_by(a.len(), c * s, |bi, out| {
        let o = bi * c * s;
        let planes = a[o..o + c * s].chunks_exact(s).zip(bb[o..].chunks_exact(s));
        for ((d, (pa, pb)), &p) in out.chunks_exact_mut(s).zip(planes).zip(params) {
            for (d, (&u, &v)) in d.iter_mut().zip(pa.iter().zip(pb)) {
                *d = f(u, v, p);
            }
        }
    })
}

/// Per-channel mean and biased variance: one pass of sums of `x − x₀` and `(x − x₀)²`, shifted
/// by the channel's first value `x₀` so that the difference of squares does not cancel.
pub fn batch_stats(x: &[f32], b: usize, c: usize, s: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (b * s) as f64;
    let x0: Vec<f32> = (0..c).map(|ci| x[ci * s]).collect();
    let sums = channel_sums((x, x), (b, c, s), &x0, |v, _, x0| {
        let d = v - x0;
        (d, d * d)
    });
    sums.iter()
        .zip(&x0)
        .map(|(&(sum, sq), &x0)| {
            let mean = sum / n;
            let var = (sq / n - mean * mean).max(0.0);
            ((mean + x0 as f64) as f32, var as f32)
        })
        .unzip()
}

/// The group BatchNorm synchronises over, when it does (PyTorch's `SyncBatchNorm`).
fn synced() -> Option<&'static dyn Collective> {
    crate::distributed::group().filter(|_| crate::distributed::sync_batchnorm())
}

/// Per-channel mean and biased variance over the batches of every rank (synchronised
/// BatchNorm): the sums and counts summed over the ranks, then the squared deviations from the
/// global mean.
fn synced_stats(
    x: &[f32],
    (b, c, s): (usize, usize, usize),
    group: &dyn Collective,
) -> (Vec<f32>, Vec<f32>) {
    let sums = channel_sums((x, x), (b, c, s), &vec![(); c], |v, _, ()| (v, 0.0));
    let mut buf: Vec<f64> = sums.iter().map(|t| t.0).chain([(b * s) as f64]).collect();
    timed(Op::Communication, || group.all_reduce_sum_f64(&mut buf));
    let n = buf[c].max(1.0);
    let mean: Vec<f32> = buf[..c].iter().map(|v| (v / n) as f32).collect();
    let sq = channel_sums((x, x), (b, c, s), &mean, |v, _, m| {
        let d = v - m;
        (d * d, 0.0)
    });
    let mut buf: Vec<f64> = sq.iter().map(|t| t.0).collect();
    timed(Op::Communication, || group.all_reduce_sum_f64(&mut buf));
    let var = buf.iter().map(|v| (v / n) as f32).collect();
    (mean, var)
}

/// The backward pass's per-channel sums (`dγ`, `dβ`) of a rank with `n` of the values, as sums
/// over the global batch: each rank's loss is the mean over its own items, so its sums count
/// `n / N` of the global batch's (`N` every rank's values together).
fn synced_sums(sums: &[(f64, f64)], n: usize, group: &dyn Collective) -> Vec<(f64, f64)> {
    let n = n as f64;
    let mut buf: Vec<f64> = sums
        .iter()
        .flat_map(|&(g, b)| [g * n, b * n])
        .chain([n])
        .collect();
    timed(Op::Communication, || group.all_reduce_sum_f64(&mut buf));
    let total = buf[2 * sums.len()].max(1.0);
    buf[..2 * sums.len()]
        .chunks_exact(2)
        .map(|p| (p[0] / total, p[1] / total))
        .collect()
}

/// One channel's values in the backward pass: the forward's affine map (`scale`, `shift`), the
/// batch mean and `1/σ`, and (for `dx`) the `γ/(σ·n)` factor and the sums `dβ`, `dγ`.
#[derive(Clone, Copy)]
struct ChannelGrad {
    scale: f32,
    shift: f32,
    mean: f32,
    invstd: f32,
    k: f32,
    dbeta: f32,
    dgamma: f32,
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
            let (mean, var) = match synced() {
                Some(g) => synced_stats(xs, (b, c, s), g),
                None => batch_stats(xs, b, c, s),
            };
            let affine: Vec<(f32, f32)> = (0..c)
                .map(|ci| {
                    let scale = gs[ci] / (var[ci] + eps).sqrt();
                    (scale, bs[ci] - mean[ci] * scale)
                })
                .collect();
            let y = map_channels((xs, xs), (c, s), &affine, |v, _, (scale, shift)| {
                let z = v * scale + shift;
                if relu { z.max(0.0) } else { z }
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
            let mut params: Vec<ChannelGrad> = (0..c)
                .map(|ci| {
                    let invstd = 1.0 / (vs[ci] + eps).sqrt();
                    // As in the forward, so that the ReLU's mask is the same.
                    let scale = gs[ci] / (vs[ci] + eps).sqrt();
                    ChannelGrad {
                        scale,
                        shift: bs[ci] - ms[ci] * scale,
                        mean: ms[ci],
                        invstd,
                        k: gs[ci] * invstd / n,
                        dbeta: 0.0,
                        dgamma: 0.0,
                    }
                })
                .collect();
            // dy through the ReLU: zero where the forward's output was ≤ 0. As a bit mask, not
            // a branch: on real activations the sign is unpredictable, and the mispredictions
            // made the stem's backward 3× slower in training than on a regular test pattern.
            let dz = move |v: f32, g: f32, p: ChannelGrad| {
                let keep = !(relu && v * p.scale + p.shift <= 0.0);
                f32::from_bits(g.to_bits() & (keep as u32).wrapping_neg())
            };
            let sums = channel_sums((xs, dys), (b, c, s), &params, |v, g, p| {
                let g = dz(v, g, p);
                (g * ((v - p.mean) * p.invstd), g)
            });
            // dx takes the sums over every rank's batch when BatchNorm is synchronised; γ and β
            // get this rank's own (the gradient all-reduce sums them).
            let local: Vec<(f32, f32)> = sums.iter().map(|&(g, b)| (g as f32, b as f32)).collect();
            let sums = match synced() {
                Some(g) => synced_sums(&sums, b * s, g),
                None => sums,
            };
            for (p, &(dg, db)) in params.iter_mut().zip(&sums) {
                (p.dgamma, p.dbeta) = (dg as f32, db as f32);
            }
            let dx = map_channels((xs, dys), (c, s), &params, |v, g, p| {
                let xhat = (v - p.mean) * p.invstd;
                p.k * (n * dz(v, g, p) - p.dbeta - xhat * p.dgamma)
            });
            let (dgamma, dbeta) = local.into_iter().unzip();
            let shape = x.layout().shape().clone();
            (
                FlexTensor::from_data(TensorData::new(dx, shape)),
                FlexTensor::from_data(TensorData::new::<f32, _>(dgamma, [c])),
                FlexTensor::from_data(TensorData::new::<f32, _>(dbeta, [c])),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-channel statistics and the mapped output equal a direct f64 computation on planes
    /// below and above [`SMALL_PLANE`], with channels spread over several blocks (the last one
    /// partial) and the per-element sums flushed across more than 64 images.
    #[test]
    fn stats_and_map_match_the_definition_on_every_path() {
        for (b, c, s) in [(3, 300, 16), (2, 5000, 1), (70, 130, 4), (2, 7, 100)] {
            let x: Vec<f32> = (0..b * c * s)
                .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f32 / 1e6 + 3.0)
                .collect();
            let (mean, var) = batch_stats(&x, b, c, s);
            for ci in 0..c {
                let vals: Vec<f64> = (0..b)
                    .flat_map(|bi| x[(bi * c + ci) * s..][..s].iter().map(|&v| v as f64))
                    .collect();
                let m = vals.iter().sum::<f64>() / vals.len() as f64;
                let v = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
                assert!(
                    (mean[ci] as f64 - m).abs() < 1e-4 * m.abs(),
                    "{b} {c} {s} mean {ci}"
                );
                assert!(
                    (var[ci] as f64 - v).abs() < 1e-3 * v + 1e-6,
                    "{b} {c} {s} var {ci}"
                );
            }
            let params: Vec<f32> = (0..c).map(|ci| ci as f32 * 0.5).collect();
            let y = map_channels((&x, &x), (c, s), &params, |u, v, p| u * p + v);
            for (i, (&yi, &xi)) in y.iter().zip(&x).enumerate() {
                let p = params[(i / s) % c];
                assert_eq!(yi, xi * p + xi, "{b} {c} {s} map {i}");
            }
        }
    }
}
