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
    /// Every tap, reduction values `(t, ci)` (see `forward::tap_major_weight`).
    TapMajor,
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
