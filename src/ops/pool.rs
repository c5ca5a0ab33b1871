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
            for (d, &(x0, x1)) in dst.iter_mut().zip(&cols) {
                *d = rows_max[x0..x1]
                    .iter()
                    .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            }
        }
    })
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
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    if let Some(i) = g.argmax(src, oy, ox) {
                        dst[i] += grad[oy * g.ow + ox];
                    }
                }
            }
        },
    )
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
