//! Convolution as a few large GEMMs, on plain `f32` slices (NCHW activations, OIHW weights).
//!
//! Forward `Y = W · col(X)`, weight gradient `dW = dY · col(X)ᵀ`, input gradient
//! `dX = col⁻¹(Wᵀ · dY)`, where `col(X)` is `[C·kh·kw × B·OH·OW]`. Small maps build one im2col
//! matrix for the whole batch, so every product is one large GEMM (with the batch as the
//! innermost column axis, forward and backward, on maps narrower than 8 pixels); maps of 64
//! pixels or more run image by image, each image's im2col block in cache; in bf16 on AVX-512
//! BF16, maps of 14×14 and fewer run by pixel rows (`by_pixel`: output pixels across the images
//! as the products' rows, read in place from NHWC images). burn's generic
//! backward (a transposed convolution and a batch/channel-swapped convolution) turns the same
//! work into many skinny products; see docs/kernels.md. The products multiply in f32 or, where
//! the CPU has native bf16 ([`bf16`]), in bf16 with f32 accumulation.

mod affine;
mod backward;
pub mod bf16;
mod buffers;
mod by_pixel;
mod forward;
mod frozen;
mod gemm;
mod geom;
mod im2col;
mod mat;
mod one_pixel;
mod phases;
#[cfg(test)]
mod tests;

pub use affine::Activation;
pub use backward::conv2d_backward;
pub(crate) use buffers::{
    assume_init, chunks_filled_by, rows_filled_by, rows_from, uninit, zeroed,
};
pub use forward::{conv2d_forward, conv2d_forward_fused};
pub use frozen::{FrozenWeights, active_frozen_weights, with_frozen_weights};
pub use gemm::matmul;
pub use geom::ConvGeom;
pub use mat::Mat;
