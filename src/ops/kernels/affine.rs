//! What follows a convolution in inference, applied as its output is written: a per-channel
//! affine map (the BatchNorm) and an activation.

use std::mem::MaybeUninit;

/// What follows a convolution in inference, applied as its output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Nothing.
    Identity,
    /// max(0, y).
    Relu,
    /// min(max(0, y), 6) (EfficientNet-Lite).
    Relu6,
}

impl Activation {
    #[inline]
    pub(super) fn apply(self, y: f32) -> f32 {
        match self {
            Activation::Identity => y,
            Activation::Relu => y.max(0.0),
            Activation::Relu6 => y.clamp(0.0, 6.0),
        }
    }
}

/// Output channel `o`'s `(scale, shift)`, `(1, 0)` where either is absent.
pub(super) fn channel_affine(scale: Option<&[f32]>, shift: Option<&[f32]>, o: usize) -> (f32, f32) {
    (scale.map_or(1.0, |m| m[o]), shift.map_or(0.0, |b| b[o]))
}

/// `dst = act(src·mul + add)`, a plain copy for the identity map.
pub(super) fn write_affine(
    dst: &mut [MaybeUninit<f32>],
    src: &[f32],
    mul: f32,
    add: f32,
    act: Activation,
) {
    assert_eq!(dst.len(), src.len(), "rows of one length");
    if (mul, add, act) == (1.0, 0.0, Activation::Identity) {
        // SAFETY: MaybeUninit<f32> has f32's layout; the lengths are equal and the two
        // slices are distinct borrows.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast(), src.len()) };
        return;
    }
    fn each(dst: &mut [MaybeUninit<f32>], src: &[f32], f: impl Fn(f32) -> f32) {
        for (d, v) in dst.iter_mut().zip(src) {
            d.write(f(*v));
        }
    }
    match act {
        Activation::Identity => each(dst, src, |v| v * mul + add),
        Activation::Relu => each(dst, src, |v| (v * mul + add).max(0.0)),
        Activation::Relu6 => each(dst, src, |v| (v * mul + add).clamp(0.0, 6.0)),
    }
}
