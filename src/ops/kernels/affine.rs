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
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F; the lengths are equal.
        unsafe { write_affine_wide(dst, src, mul, add, act) };
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

/// [`write_affine`] 16 values at a time (the tail masked), with the same roundings (a product,
/// then a sum) and the same NaNs as the scalar maps (a ReLU of −0 may give +0, as `f32::max`
/// may).
///
/// # Safety
/// The CPU has AVX-512 F; `dst` and `src` have one length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn write_affine_wide(
    dst: &mut [MaybeUninit<f32>],
    src: &[f32],
    mul: f32,
    add: f32,
    act: Activation,
) {
    use std::arch::x86_64::*;
    let (m, a) = (_mm512_set1_ps(mul), _mm512_set1_ps(add));
    let (zero, six) = (_mm512_setzero_ps(), _mm512_set1_ps(6.0));
    for i in (0..src.len()).step_by(16) {
        let n = (src.len() - i).min(16);
        let lanes: __mmask16 = if n == 16 { u16::MAX } else { (1 << n) - 1 };
        // SAFETY: lanes past the end are masked off.
        unsafe {
            let v = _mm512_maskz_loadu_ps(lanes, src.as_ptr().add(i));
            let v = _mm512_add_ps(_mm512_mul_ps(v, m), a);
            let v = match act {
                Activation::Identity => v,
                // `max(v, 0)` is 0 for a NaN, as `f32::max`; a clamp keeps it, as `f32::clamp`.
                Activation::Relu => _mm512_max_ps(v, zero),
                Activation::Relu6 => _mm512_min_ps(six, _mm512_max_ps(zero, v)),
            };
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(i).cast(), lanes, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map as each activation defines it, value by value (`f32::max` and `f32::clamp`).
    fn scalar(v: f32, mul: f32, add: f32, act: Activation) -> f32 {
        act.apply(v * mul + add)
    }

    /// Every length from 0 to 40 (whole vectors and masked tails), NaNs and infinities among
    /// the values: what [`write_affine`] writes equals the scalar map bit for bit (no value
    /// maps to −0, whose sign `f32::max` leaves open).
    #[test]
    fn write_affine_equals_the_scalar_map() {
        let values: Vec<f32> = (0..40)
            .map(|i| match i % 9 {
                4 => f32::NAN,
                7 => f32::INFINITY,
                8 => -f32::INFINITY,
                _ => (i as f32 * 0.37).sin() * 9.0,
            })
            .collect();
        for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
            for (mul, add) in [(1.0, 0.0), (0.7, -0.3), (-1.5, 2.0)] {
                for len in 0..=values.len() {
                    let mut dst = vec![MaybeUninit::new(-7.0f32); len];
                    write_affine(&mut dst, &values[..len], mul, add, act);
                    for (i, d) in dst.iter().enumerate() {
                        // SAFETY: `dst` was made initialised.
                        let got = unsafe { d.assume_init() };
                        let want = scalar(values[i], mul, add, act);
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{act:?} {mul}·{}+{add}: {got} vs {want}",
                            values[i]
                        );
                    }
                }
            }
        }
    }
}
