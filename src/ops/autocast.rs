//! Mixed precision as PyTorch's autocast (and so fastai's `to_fp16`): inside [`with_autocast`],
//! convolutions (and, in bf16 on the CPU, linear layers) compute in half precision on inputs
//! and weights cast down and hand back f32, so the weights, BatchNorm and the loss stay f32.

use std::cell::Cell;

use burn::tensor::FloatDType;

thread_local! {
    static HALF: Cell<Option<FloatDType>> = const { Cell::new(None) };
}

/// Runs `f` with convolutions in `half` precision on this thread (`None`: f32), then restores
/// the previous setting.
pub fn with_autocast<R>(half: Option<FloatDType>, f: impl FnOnce() -> R) -> R {
    let before = HALF.with(|h| h.replace(half));
    let out = f();
    HALF.with(|h| h.set(before));
    out
}

/// The half-precision dtype convolutions use on this thread now, if any.
pub fn half() -> Option<FloatDType> {
    HALF.with(Cell::get)
}
