//! The convolution extension op: our GEMM kernels on flex, with a handwritten backward under
//! autodiff (burn's backend-extension API; no fork of burn).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::TensorData;

use super::kernels::{self, Activation, ConvGeom};
use super::profile::{Op, timed};
use super::{contiguous, slice};

/// Convolutions (groups 1, f32) computed as large GEMMs, forward and backward.
#[backend_extension(Flex, Autodiff)]
pub trait FastConv: Backend {
    /// `conv2d` without bias: `x` `[b, c, h, w]`, `weight` `[o, c, kh, kw]`.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geom: ConvGeom,
    ) -> FloatTensor<Self>;

    /// The input gradient (an empty tensor unless `need_dx`) and the weight gradient.
    fn fast_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geom: ConvGeom,
        need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

fn tensor(v: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

impl FastConv for Flex {
    fn fast_conv2d(x: FlexTensor, weight: FlexTensor, g: ConvGeom) -> FlexTensor {
        timed(Op::ConvForward, || {
            let (x, w) = (contiguous(x), contiguous(weight));
            let y = kernels::conv2d_forward(slice(&x), slice(&w), &g);
            tensor(y, [g.b, g.o, g.oh, g.ow])
        })
    }

    fn fast_conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        g: ConvGeom,
        need_dx: bool,
    ) -> (FlexTensor, FlexTensor) {
        timed(Op::ConvBackward, || {
            let (x, w, dy) = (contiguous(x), contiguous(weight), contiguous(grad));
            let (dx, dw) = kernels::conv2d_backward(slice(&x), slice(&w), slice(&dy), &g, need_dx);
            let dx = match dx {
                Some(dx) => tensor(dx, [g.b, g.c, g.h, g.w]),
                None => FlexTensor::from_data(TensorData::new(Vec::<f32>::new(), [0])),
            };
            (dx, tensor(dw, [g.o, g.c, g.kh, g.kw]))
        })
    }
}

impl<B: Backend + FastConv, C: CheckpointStrategy> FastConv for Autodiff<B, C> {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geom: ConvGeom,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct FastConv2dBackward;

        impl<B: Backend + FastConv> Backward<B, 2> for FastConv2dBackward {
            type State = (NodeId, NodeId, ConvGeom);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_w] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, w_state, geom) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
                let (dx, dw) = B::fast_conv2d_backward(x, w, grad, geom, node_x.is_some());
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, dx);
                }
                if let Some(node) = node_w {
                    grads.register::<B>(node.id, dw);
                }
            }
        }

        match FastConv2dBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let y = B::fast_conv2d(x.into_primitive(), weight.into_primitive(), geom);
                prep.finish((x_state, w_state, geom), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                geom,
            )),
        }
    }

    fn fast_conv2d_backward(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _geom: ConvGeom,
        _need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("the convolution backward runs on the inner backend, never under autodiff")
    }
}

/// Inference convolution with a per-channel affine map (BatchNorm) and activation fused into
/// its output pass (no autodiff).
#[backend_extension(Flex)]
pub trait FastConvInference: Backend {
    /// `act(conv2d(x, weight) · scale + shift)`, per output channel.
    fn fast_conv2d_affine_act(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        geom: ConvGeom,
        act: Activation,
    ) -> FloatTensor<Self>;
}

impl FastConvInference for Flex {
    fn fast_conv2d_affine_act(
        x: FlexTensor,
        weight: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        g: ConvGeom,
        act: Activation,
    ) -> FlexTensor {
        timed(Op::ConvForward, || {
            let (x, w) = (contiguous(x), contiguous(weight));
            let (m, b) = (contiguous(scale), contiguous(shift));
            let (m, b) = (Some(slice(&m)), Some(slice(&b)));
            let y = kernels::conv2d_forward_fused(slice(&x), slice(&w), &g, m, b, act);
            tensor(y, [g.b, g.o, g.oh, g.ow])
        })
    }
}
