//! A model's convolution weights rounded and packed once for many forward passes: in inference
//! the weights do not change from batch to batch, so repacking them on every call (7–14 % of a
//! bf16 inference at 28–64 px) buys nothing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::bf16::{Left, Mul, Packed};
use super::mat::Mat;

/// Which packed operand: the weight's parameter id, its address and length (two models whose
/// parameters share ids keep apart), the product's shape and arithmetic, and which part of the
/// weight in which order.
type Key = (u64, usize, usize, usize, usize, Mul, Part);

/// The part of a convolution's weight `[o, c, kh, kw]` a packed operand holds, as rows of
/// reduction values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Part {
    /// Every tap, reduction values `(ci, t)` as the weight lies.
    All,
    /// One kernel tap's `[o × c]`.
    Tap(usize),
    /// Every tap, reduction values `(t, ci)` (see `geom::tap_major_weight`).
    TapMajor,
    /// The transpose of [`Part::TapMajor`], packed as right panels
    /// ([`super::bf16::Packed::columns`]).
    Columns,
}

/// Sixteen values spread over the weight, bit for bit: a packed copy is used only while they
/// still match, so a model replaced in place (new values where the old ones lay, under the
/// same ids) is packed again rather than read stale.
type Fingerprint = [u32; 16];

/// Packed copies of a model's convolution weights, kept across forward passes while
/// [`with_frozen_weights`] runs them (an inference session holds one per model).
#[derive(Default)]
pub struct FrozenWeights(Mutex<HashMap<Key, (Fingerprint, Arc<Packed>)>>);

impl FrozenWeights {
    /// An empty set: weights are packed on first use.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// How many packed operands it holds.
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

thread_local! {
    static ACTIVE: RefCell<Option<Arc<FrozenWeights>>> = const { RefCell::new(None) };
}

/// Runs `f` with the convolutions on this thread taking the weights of parameters
/// ([`super::ConvGeom::weight_id`]) from `weights`, packing each on first use. The caller
/// promises that no parameter `f` reads changes while it runs or between runs with the same
/// `weights` (inference, validation).
pub fn with_frozen_weights<R>(weights: &Arc<FrozenWeights>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<FrozenWeights>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|a| *a.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(ACTIVE.with(|a| a.borrow_mut().replace(weights.clone())));
    f()
}

/// The [`FrozenWeights`] that [`with_frozen_weights`] made active on this thread, if any: what
/// work handed to another thread takes along.
pub fn active_frozen_weights() -> Option<Arc<FrozenWeights>> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// The left operand `a` (`m × k`) of a convolution's products packed for `mul`, from the
/// active [`FrozenWeights`] (packed there on first use): `None` outside
/// [`with_frozen_weights`], for a weight that is not a parameter, or for f32 products (the
/// caller then packs it itself, as in training).
pub(super) fn kept_weight(
    id: Option<u64>,
    a: Mat,
    m: usize,
    k: usize,
    mul: Mul,
    part: Part,
) -> Option<Arc<Packed>> {
    kept_weight_with(id, a.data, (m, k, mul, part), || Packed::new(a, m, k, mul))
}

/// [`kept_weight`] for an operand made from the weight `w` by `pack` (called only when the
/// active [`FrozenWeights`] lacks it): `(m, k, mul, part)` say what `pack` makes.
pub(super) fn kept_weight_with(
    id: Option<u64>,
    w: &[f32],
    (m, k, mul, part): (usize, usize, Mul, Part),
    pack: impl FnOnce() -> Option<Packed>,
) -> Option<Arc<Packed>> {
    let id = id?;
    let weights = ACTIVE.with(|a| a.borrow().clone())?;
    let key = (id, w.as_ptr() as usize, w.len(), m, k, mul, part);
    let print = fingerprint(w);
    if let Some((seen, p)) = weights.0.lock().ok()?.get(&key)
        && *seen == print
    {
        return Some(p.clone());
    }
    let packed = Arc::new(pack()?);
    weights.0.lock().ok()?.insert(key, (print, packed.clone()));
    Some(packed)
}

/// See [`Fingerprint`].
fn fingerprint(data: &[f32]) -> Fingerprint {
    let mut print = [0; 16];
    if !data.is_empty() {
        for (i, v) in print.iter_mut().enumerate() {
            *v = data[i * (data.len() - 1) / 15].to_bits();
        }
    }
    print
}

/// `a` packed as `packed` where there is a packed copy (see [`kept_weight`]), else as it lies.
pub(super) fn left<'a>(a: Mat<'a>, packed: &'a Option<Arc<Packed>>) -> Left<'a> {
    packed.as_deref().map_or(Left::Mat(a), Left::Packed)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Case, PATH_CASES, ramp};
    use super::super::{ConvGeom, conv2d_forward};
    use super::*;

    /// Under `with_frozen_weights` a parameter's weight is packed once and reused on every path,
    /// with the same result as packing it on each call; a weight rewritten in place (same address,
    /// same id) is packed again; a weight that is not a parameter is never kept.
    #[test]
    fn frozen_weights_are_packed_once_and_never_read_stale() {
        let units = super::super::bf16::units();
        if units.is_empty() {
            eprintln!("no native bf16 on this CPU: nothing to check");
            return;
        }
        // With PATH_CASES, two batch-innermost layers: every tap in tap-major pairs, and the
        // taps multiplied on their live columns (packed per tap); a layer by pixel rows (AVX-512
        // BF16, up to 16 cores), its weight packed transposed.
        let inner: [Case; 3] = [
            (
                [16, 32, 6, 6],
                [8, 32, 3, 3],
                [1, 1],
                [(1, 1), (1, 1)],
                [1, 1],
            ),
            ([8, 4, 2, 2], [8, 4, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            (
                [64, 32, 7, 7],
                [32, 32, 3, 3],
                [1, 1],
                [(1, 1), (1, 1)],
                [1, 1],
            ),
        ];
        for (xs, ws, st, pad, dil) in PATH_CASES.into_iter().chain(inner) {
            for &unit in &units {
                let plain = ConvGeom::new(xs, ws, st, pad, dil).with_mul(unit);
                let g = plain.with_weight_id(42);
                let x = ramp(xs.iter().product(), 0.1);
                let mut w = ramp(ws.iter().product(), 0.7);
                let want = conv2d_forward(&x, &w, &g);
                let frozen = FrozenWeights::new();
                with_frozen_weights(&frozen, || {
                    let _ = conv2d_forward(&x, &w, &plain);
                    assert!(frozen.is_empty(), "{g:?}: kept a weight with no id");
                    for _ in 0..2 {
                        assert_eq!(conv2d_forward(&x, &w, &g), want, "{g:?}");
                    }
                });
                let kept = frozen.len();
                assert!(kept > 0, "{g:?}: nothing kept");
                w.iter_mut().for_each(|v| *v = 0.5 - *v);
                let fresh = conv2d_forward(&x, &w, &plain);
                let got = with_frozen_weights(&frozen, || conv2d_forward(&x, &w, &g));
                assert_eq!(got, fresh, "{g:?}: read a stale packing");
                assert_eq!(frozen.len(), kept, "{g:?}: repacked beside, not in place");
            }
        }
    }
}
