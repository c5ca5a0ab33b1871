//! fastai's Adam step fused into one pass over each parameter (flex), instead of a dozen tensor
//! operations that each read and write the whole parameter.

use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::contiguous;
use super::kernels::{assume_init, uninit, zeroed};

/// The scalars of one Adam step, already combined (see [`AdamStep::new`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// β1 (the scheduled momentum).
    pub mom: f32,
    /// β2.
    pub sqr_mom: f32,
    /// ε, added to √(v / (1 − β2ᵗ)).
    pub eps: f32,
    /// 1 − lr·wd: decoupled weight decay.
    pub decay: f32,
    /// lr / (1 − β1ᵗ).
    pub step_size: f32,
    /// 1 − β2ᵗ.
    pub debias2: f32,
}

impl AdamStep {
    /// Step `t` (from 1) at learning rate `lr` with weight decay `wd`.
    pub fn new(lr: f64, mom: f64, sqr_mom: f64, eps: f64, wd: f64, t: usize) -> Self {
        Self {
            mom: mom as f32,
            sqr_mom: sqr_mom as f32,
            eps: eps as f32,
            decay: (1.0 - lr * wd) as f32,
            step_size: (lr / (1.0 - mom.powi(t as i32))) as f32,
            debias2: (1.0 - sqr_mom.powi(t as i32)) as f32,
        }
    }
}

/// The fused Adam step.
#[backend_extension(Flex)]
pub trait FastAdam: Backend {
    /// Updated (parameter, first moment, second moment).
    fn fast_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl FastAdam for Flex {
    fn fast_adam(
        param: FlexTensor,
        grad: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        s: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut p, g, mut m, mut v) = (
            contiguous(param),
            contiguous(grad),
            contiguous(m),
            contiguous(v),
        );
        #[allow(clippy::expect_used, reason = "made contiguous f32 just above")]
        let g = g.as_slice::<f32>().expect("contiguous");
        let (ms, vs) = (m.storage_mut::<f32>(), v.storage_mut::<f32>());
        // `out = p·decay − step·m/(√(v/debias2) + ε)` after the moments' update, chunk by chunk
        // (`out` is `p` itself when the parameter can be updated in place).
        let update =
            |p: Option<&[f32]>, out: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
                for i in 0..out.len() {
                    let gi = g[i];
                    let mi = s.mom * m[i] + (1.0 - s.mom) * gi;
                    let vi = s.sqr_mom * v[i] + (1.0 - s.sqr_mom) * gi * gi;
                    m[i] = mi;
                    v[i] = vi;
                    let pi = p.map_or(out[i], |p| p[i]);
                    out[i] = pi * s.decay - s.step_size * mi / ((vi / s.debias2).sqrt() + s.eps);
                }
            };
        const CHUNK: usize = 1 << 14;
        let moments = ms.par_chunks_mut(CHUNK).zip(vs.par_chunks_mut(CHUNK));
        let grads = g.par_chunks(CHUNK);
        if let Some(ps) = p.try_storage_mut::<f32>() {
            ps.par_chunks_mut(CHUNK)
                .zip(grads)
                .zip(moments)
                .for_each(|((p, g), (m, v))| update(None, p, g, m, v));
        } else {
            // The module still holds the parameter (the learner steps a clone of the model), so
            // the update goes into a new buffer: writing through `storage_mut` would first copy
            // the old values (copy-on-write), an extra single-threaded pass over every weight.
            #[allow(clippy::expect_used, reason = "made contiguous f32 just above")]
            let old = p.as_slice::<f32>().expect("contiguous");
            let mut out = uninit(old.len());
            out.par_chunks_mut(CHUNK)
                .zip(old.par_chunks(CHUNK))
                .zip(grads)
                .zip(moments)
                .for_each(|(((out, p), g), (m, v))| update(Some(p), zeroed(out), g, m, v));
            // SAFETY: every chunk of `out` went through `zeroed`.
            let out = unsafe { assume_init(out) };
            let shape = p.layout().shape().clone();
            p = FlexTensor::from_data(TensorData::new(out, shape));
        }
        (p, m, v)
    }
}
