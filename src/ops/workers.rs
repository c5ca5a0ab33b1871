//! A batch's forward pass run on a worker of the kernels' thread pool. Every parallel loop a
//! thread outside rayon's pool starts blocks that thread until the loop ends and wakes it again:
//! two context switches per loop, hundreds per ResNet forward pass on small images. Started on
//! a worker, the loops begin on that worker, which takes its own share at once.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::DispatchDevice;
use burn::tensor::Device;

use super::autocast::{half, with_autocast};
use super::kernels::{active_frozen_weights, with_frozen_weights};
use super::reference_ops;

/// Runs `f` on a worker thread of rayon's pool when `device` computes on the CPU through our
/// kernels (here otherwise, or when this thread is a worker already), with this thread's
/// autocast precision and frozen weights; returns what `f` returns. For inference: ResNet-18's
/// forward passes there ran 1.09–1.19× faster at 28 and 64 px, 1.02× at 224 px, on two cores
/// (docs/kernels.md, "Threads").
pub fn on_workers<R: Send>(device: &Device, f: impl FnOnce() -> R + Send) -> R {
    let ours = !reference_ops()
        && matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::Flex(_)
        );
    if !ours || rayon::current_thread_index().is_some() {
        return f();
    }
    let (half, frozen) = (half(), active_frozen_weights());
    rayon::scope(move |_| {
        let run = move || with_autocast(half, f);
        match frozen {
            Some(weights) => with_frozen_weights(&weights, run),
            None => run(),
        }
    })
}

static STEPS: AtomicBool = AtomicBool::new(false);

/// Lets training steps run on the pool's workers too ([`step_on_workers`]; off by default):
/// for a process whose threads all allocate from one malloc arena, as the command line's do.
/// With an arena per thread a step's activations came to be held by both workers' arenas (the
/// 224 px benchmark's peak 986 → 1 153 MiB); with one, ResNet-18 trained 1.13× faster at 28 px,
/// 1.01–1.02× at 64 and 224 px, the demo 1.10× (docs/kernels.md, "Threads").
pub fn set_steps_on_workers(on: bool) {
    STEPS.store(on, Ordering::Relaxed);
}

/// A training step: [`on_workers`] where [`set_steps_on_workers`] turned it on, else `f()` here.
pub fn step_on_workers<R: Send>(device: &Device, f: impl FnOnce() -> R + Send) -> R {
    if STEPS.load(Ordering::Relaxed) {
        on_workers(device, f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use burn::tensor::FloatDType;

    use super::*;
    use crate::ops::kernels::FrozenWeights;

    /// The work runs on a pool worker with the caller's autocast precision and frozen weights,
    /// and the caller keeps both.
    #[test]
    fn runs_on_a_worker_with_the_callers_settings() {
        let device = Device::flex();
        let frozen = Arc::new(FrozenWeights::new());
        let (on_worker, seen_half, seen_frozen) = with_frozen_weights(&frozen, || {
            with_autocast(Some(FloatDType::BF16), || {
                let inside = on_workers(&device, || {
                    let same = active_frozen_weights().is_some_and(|w| Arc::ptr_eq(&w, &frozen));
                    (rayon::current_thread_index().is_some(), half(), same)
                });
                assert_eq!(half(), Some(FloatDType::BF16));
                inside
            })
        });
        assert!(on_worker, "the work ran on the calling thread");
        assert_eq!(seen_half, Some(FloatDType::BF16));
        assert!(seen_frozen, "the frozen weights did not follow the work");
        assert!(active_frozen_weights().is_none());
        assert_eq!(half(), None);
    }
}
