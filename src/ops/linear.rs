//! The linear-layer extension op for bf16 autocast on flex: `x · w` with the products in bf16
//! and f32 sums (as PyTorch's CPU autocast runs `nn.Linear`), forward and both gradients on
//! [`kernels::matmul`], with a handwritten backward under autodiff. In f32 linear layers keep
//! burn's own op.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::TensorData;

use super::kernels::bf16::Mul;
use super::kernels::{self, Mat};
use super::{contiguous, slice};

/// A linear layer's product `x · w` (`x` `[n, i]`, `w` `[i, o]`, burn's layout) multiplied
/// by `mul`, forward and backward.
#[backend_extension(Flex, Autodiff)]
pub trait FastLinear: Backend {
    /// `x · w`: `[n, o]`.
    fn fast_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, mul: Mul) -> FloatTensor<Self>;

    /// The input gradient `dy · wᵀ` (an empty tensor unless `need_dx`) and the weight
    /// gradient `xᵀ · dy`.
    fn fast_linear_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mul: Mul,
        need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// The `[rows, cols]` of a 2-D flex tensor.
fn dims2(t: &FlexTensor) -> [usize; 2] {
    let shape = t.layout().shape();
    assert_eq!(
        shape.num_dims(),
        2,
        "a linear layer's operands are matrices"
    );
    [shape[0], shape[1]]
}

fn matrix(v: Vec<f32>, shape: [usize; 2]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

impl FastLinear for Flex {
    fn fast_linear(x: FlexTensor, weight: FlexTensor, mul: Mul) -> FlexTensor {
        let (x, w) = (contiguous(x), contiguous(weight));
        let ([n, i], [wi, o]) = (dims2(&x), dims2(&w));
        assert_eq!(wi, i, "linear: {i} input features, a weight for {wi}");
        let y = kernels::matmul(
            n,
            o,
            i,
            Mat::rows(slice(&x), i),
            Mat::rows(slice(&w), o),
            mul,
        );
        matrix(y, [n, o])
    }

    fn fast_linear_backward(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        mul: Mul,
        need_dx: bool,
    ) -> (FlexTensor, FlexTensor) {
        let (x, w, dy) = (contiguous(x), contiguous(weight), contiguous(grad));
        let ([n, i], [wi, o]) = (dims2(&x), dims2(&w));
        assert_eq!(wi, i, "linear: {i} input features, a weight for {wi}");
        let dy_rows = Mat::rows(slice(&dy), o);
        let dx = if need_dx {
            let dx = kernels::matmul(n, i, o, dy_rows, Mat::transposed(slice(&w), o), mul);
            matrix(dx, [n, i])
        } else {
            FlexTensor::from_data(TensorData::new(Vec::<f32>::new(), [0]))
        };
        let dw = kernels::matmul(i, o, n, Mat::transposed(slice(&x), i), dy_rows, mul);
        (dx, matrix(dw, [i, o]))
    }
}

impl<B: Backend + FastLinear, C: CheckpointStrategy> FastLinear for Autodiff<B, C> {
    fn fast_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, mul: Mul) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct FastLinearBackward;

        impl<B: Backend + FastLinear> Backward<B, 2> for FastLinearBackward {
            type State = (NodeId, NodeId, Mul);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_w] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, w_state, mul) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
                let (dx, dw) = B::fast_linear_backward(x, w, grad, mul, node_x.is_some());
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, dx);
                }
                if let Some(node) = node_w {
                    grads.register::<B>(node.id, dw);
                }
            }
        }

        match FastLinearBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let y = B::fast_linear(x.into_primitive(), weight.into_primitive(), mul);
                prep.finish((x_state, w_state, mul), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_linear(
                x.into_primitive(),
                weight.into_primitive(),
                mul,
            )),
        }
    }

    fn fast_linear_backward(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _mul: Mul,
        _need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("the linear backward runs on the inner backend, never under autodiff")
    }
}
