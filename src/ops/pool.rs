//! Max pooling (ResNet's stem) on flex, forward and backward: one pass per plane with the window
//! clipped to the image. burn's generic op compares element by element with NaN checks and was
//! 14 % of an inference batch's profile at 28 px.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::TensorData;

use super::kernels::chunks_filled_by;
use super::{contiguous, slice};

/// Geometry of a 2-D max pooling (dilation 1, floor mode): input `[b, c, h, w]`, output
/// `[b, c, oh, ow]`, padding (top, left) with the output size already computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeom {
    /// Batch × channels: the number of planes.
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window height and width.
    pub k: [usize; 2],
    /// Strides (rows, columns).
    pub stride: [usize; 2],
    /// Padding before the first row and column.
    pub pad: [usize; 2],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl PoolGeom {
    /// The input rows (or columns, `axis` 1) of output position `o`: a half-open range clipped
    /// to the image.
    fn window(&self, axis: usize, o: usize) -> (usize, usize) {
        let n = if axis == 0 { self.h } else { self.w };
        let start = (o * self.stride[axis]) as isize - self.pad[axis] as isize;
        let end = (start + self.k[axis] as isize).min(n as isize);
        (start.max(0) as usize, end.max(0) as usize)
    }

    /// The input index (within its plane) of the largest value in output `(oy, ox)`'s window,
    /// the first one on ties; `None` for a window that lies in the padding only.
    fn argmax(&self, plane: &[f32], oy: usize, ox: usize) -> Option<usize> {
        let ((y0, y1), (x0, x1)) = (self.window(0, oy), self.window(1, ox));
        let mut best: Option<(usize, f32)> = None;
        for iy in y0..y1 {
            for ix in x0..x1 {
                let v = plane[iy * self.w + ix];
                if best.is_none_or(|(_, m)| v > m) {
                    best = Some((iy * self.w + ix, v));
                }
            }
        }
        best.map(|(i, _)| i)
    }
}

/// Forward: the maximum of each window (−∞ for a window in the padding only). Per output row,
/// the elementwise maximum of its window's input rows first (vectorised), then each output's
/// columns of that: a tenth of the instructions of one window at a time (whose bookkeeping made
/// the stem's pooling 3.5–4.3 ms at 64 px), and no argmax, which only the backward needs.
pub fn max_pool2d_forward(x: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (plane, out) = (g.h * g.w, g.oh * g.ow);
    let cols: Vec<(usize, usize)> = (0..g.ow).map(|ox| g.window(1, ox)).collect();
    chunks_filled_by(g.planes * out, out, (1024 / out.max(1)).max(1), |p, dst| {
        let src = &x[p * plane..][..plane];
        let mut rows_max = vec![f32::NEG_INFINITY; g.w];
        for (oy, dst) in dst.chunks_exact_mut(g.ow).enumerate() {
            let (y0, y1) = g.window(0, oy);
            rows_max.fill(f32::NEG_INFINITY);
            for row in src[y0 * g.w..y1 * g.w].chunks_exact(g.w) {
                for (m, &v) in rows_max.iter_mut().zip(row) {
                    *m = m.max(v);
                }
            }
            if (g.k[1], g.stride[1], g.pad[1]) == (3, 2, 1) && g.w >= 3 {
                max3_stride2(&rows_max, dst);
                continue;
            }
            for (d, &(x0, x1)) in dst.iter_mut().zip(&cols) {
                *d = rows_max[x0..x1]
                    .iter()
                    .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            }
        }
    })
}

/// The columns of ResNet's pooling (3 wide, stride 2, padding 1) over one row `r`:
/// `dst[ox] = max(r[2·ox − 1], r[2·ox], r[2·ox + 1])`, clipped to the row. The inner outputs
/// read the row as pairs, which the compiler turns into vector de-interleaves, where one window
/// at a time stayed scalar (3 % of a 224 px inference batch).
fn max3_stride2(r: &[f32], dst: &mut [f32]) {
    let ow = dst.len();
    debug_assert_eq!(ow, (r.len() - 1) / 2 + 1);
    dst[0] = r[0].max(r[1]);
    // Outputs 1.. whose window lies inside the row: r[2·ox − 1..=2·ox + 1].
    let inner = (r.len() - 2) / 2;
    let (left, right) = (r[1..].chunks_exact(2), r[2..].chunks_exact(2));
    for ((d, a), b) in dst[1..=inner].iter_mut().zip(left).zip(right) {
        *d = a[0].max(a[1]).max(b[1]);
    }
    if inner + 1 < ow {
        // An odd row: the last window holds its last two values.
        dst[ow - 1] = r[2 * ow - 3].max(r[2 * ow - 2]);
    }
}

/// Backward: each output's gradient added to the input position that was its maximum.
pub fn max_pool2d_backward(x: &[f32], dy: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (plane, out) = (g.h * g.w, g.oh * g.ow);
    chunks_filled_by(
        g.planes * plane,
        plane,
        (1024 / plane.max(1)).max(1),
        |p, dst| {
            let (src, grad) = (&x[p * plane..][..plane], &dy[p * out..][..out]);
            let stem = (g.k[1], g.stride[1], g.pad[1]) == (3, 2, 1) && g.w >= 3;
            // ResNet's pooling: the outputs whose window lies inside the row, many at a time.
            let inner = if stem { (g.w - 2) / 2 } else { 0 };
            let mut best = Argmax3 {
                v: vec![0.0; inner],
                i: vec![0; inner],
                even: vec![0.0; g.w / 2],
                odd: vec![0.0; g.w / 2],
            };
            for oy in 0..g.oh {
                let grad = &grad[oy * g.ow..][..g.ow];
                let (y0, y1) = g.window(0, oy);
                // Outputs in order (the sums into shared inputs as before): the first, the
                // inner ones together where the window has rows, the rest one at a time.
                let batched = if y0 < y1 { inner } else { 0 };
                for ox in 0..g.ow {
                    if ox == 1 && batched > 0 {
                        argmax3_stride2(src, g.w, (y0, y1), &mut best);
                        for (&i, d) in best.i.iter().zip(&grad[1..]) {
                            dst[i as usize] += d;
                        }
                    }
                    if (1..=batched).contains(&ox) {
                        continue;
                    }
                    if let Some(i) = g.argmax(src, oy, ox) {
                        dst[i] += grad[ox];
                    }
                }
            }
        },
    )
}

/// [`PoolGeom::argmax`] of outputs `1..=inner` of one output row of ResNet's pooling (3 wide,
/// stride 2, padding 1; `best` holds `inner` values and indices), whose windows lie inside the
/// row, over the input rows `y0..y1` of a plane `w` wide: the candidates in the same order,
/// each taken where it is strictly larger, one candidate for every output at a time over the
/// row's even and odd columns laid out apart, so that each pass is a vectorised compare and
/// select (a window at a time, the backward was 30–40 ms a training step at 224 px).
fn argmax3_stride2(plane: &[f32], w: usize, rows: (usize, usize), best: &mut Argmax3) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        /// [`argmax3_stride2`] compiled for AVX2: eight lanes a compare, where the baseline's
        /// SSE2 has four and no masked select.
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(plane: &[f32], w: usize, rows: (usize, usize), best: &mut Argmax3) {
            argmax3_passes(plane, w, rows, best);
        }
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2(plane, w, rows, best) };
    }
    argmax3_passes(plane, w, rows, best);
}

/// The body of [`argmax3_stride2`], inlined into each of its builds.
#[inline(always)]
fn argmax3_passes(plane: &[f32], w: usize, (y0, y1): (usize, usize), best: &mut Argmax3) {
    let Argmax3 {
        v: best_v,
        i: best_i,
        even,
        odd,
    } = best;
    let inner = best_v.len();
    for iy in y0..y1 {
        let row = &plane[iy * w..][..w];
        for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2)) {
            (*e, *o) = (pair[0], pair[1]);
        }
        // Output ox (1..=inner) reads columns 2·ox − 1, 2·ox, 2·ox + 1: odd[ox − 1], even[ox],
        // odd[ox].
        let at = (iy * w) as u32;
        for (dx, (cols, col0)) in [
            (&odd[..inner], 1),
            (&even[1..=inner], 2),
            (&odd[1..=inner], 3),
        ]
        .into_iter()
        .enumerate()
        {
            let base = at + col0;
            if iy == y0 && dx == 0 {
                best_v.copy_from_slice(cols);
                for (k, i) in best_i.iter_mut().enumerate() {
                    *i = base + 2 * k as u32;
                }
                continue;
            }
            for (k, ((v, i), &c)) in best_v
                .iter_mut()
                .zip(best_i.iter_mut())
                .zip(cols)
                .enumerate()
            {
                let take = c > *v;
                *v = if take { c } else { *v };
                *i = if take { base + 2 * k as u32 } else { *i };
            }
        }
    }
}

/// [`argmax3_stride2`]'s values and indices of the best candidates so far, and one input row's
/// even and odd columns.
struct Argmax3 {
    v: Vec<f32>,
    i: Vec<u32>,
    even: Vec<f32>,
    odd: Vec<f32>,
}

/// Max pooling with its own backward.
#[backend_extension(Flex, Autodiff)]
pub trait FastMaxPool: Backend {
    /// `max_pool2d` of `x` `[b, c, h, w]`.
    fn fast_max_pool2d(x: FloatTensor<Self>, geom: PoolGeom) -> FloatTensor<Self>;

    /// The input gradient of [`FastMaxPool::fast_max_pool2d`].
    fn fast_max_pool2d_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geom: PoolGeom,
    ) -> FloatTensor<Self>;
}

impl FastMaxPool for Flex {
    fn fast_max_pool2d(x: FlexTensor, g: PoolGeom) -> FlexTensor {
        let x = contiguous(x);
        let shape = x.layout().shape();
        let (b, c) = (shape[0], shape[1]);
        let y = max_pool2d_forward(slice(&x), &g);
        FlexTensor::from_data(TensorData::new(y, [b, c, g.oh, g.ow]))
    }

    fn fast_max_pool2d_backward(x: FlexTensor, grad: FlexTensor, g: PoolGeom) -> FlexTensor {
        let (x, dy) = (contiguous(x), contiguous(grad));
        let shape = x.layout().shape().clone();
        let dx = max_pool2d_backward(slice(&x), slice(&dy), &g);
        FlexTensor::from_data(TensorData::new(dx, shape))
    }
}

impl<B: Backend + FastMaxPool, C: CheckpointStrategy> FastMaxPool for Autodiff<B, C> {
    fn fast_max_pool2d(x: FloatTensor<Self>, geom: PoolGeom) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct FastMaxPoolBackward;

        impl<B: Backend + FastMaxPool> Backward<B, 1> for FastMaxPoolBackward {
            type State = (NodeId, PoolGeom);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, geom) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::fast_max_pool2d_backward(x, grad, geom));
                }
            }
        }

        match FastMaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let y = B::fast_max_pool2d(x.into_primitive(), geom);
                prep.finish((x_state, geom), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_max_pool2d(x.into_primitive(), geom)),
        }
    }

    fn fast_max_pool2d_backward(
        _x: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _geom: PoolGeom,
    ) -> FloatTensor<Self> {
        unreachable!("the max-pool backward runs on the inner backend, never under autodiff")
    }
}
