//! Wall time spent in each kind of op, so `fastvision bench` can say where a step's time goes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The kinds of op that are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Convolution forward (our kernels).
    ConvForward,
    /// Convolution backward: input and weight gradients (our kernels; burn's backward is not
    /// visible from here and counts as "other").
    ConvBackward,
    /// BatchNorm in training: forward and backward on our kernels; with burn's op (reference
    /// mode) its forward only, its backward counting as "other".
    BatchNorm,
    /// The optimizer step over all parameters.
    OptimizerStep,
    /// Data-parallel communication: the gradient all-reduce and synchronised BatchNorm's
    /// statistics (waiting for the slowest rank included).
    Communication,
}

impl Op {
    /// Every op, in report order.
    pub const ALL: [Op; 5] = [
        Op::ConvForward,
        Op::ConvBackward,
        Op::BatchNorm,
        Op::OptimizerStep,
        Op::Communication,
    ];

    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Op::ConvForward => "conv forward",
            Op::ConvBackward => "conv backward",
            Op::BatchNorm => "batchnorm (+ReLU)",
            Op::OptimizerStep => "optimizer step",
            Op::Communication => "communication",
        }
    }
}

static NANOS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// Runs `f`, adding its wall time to `op`'s total.
pub fn timed<R>(op: Op, f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    NANOS[op as usize].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    r
}

/// Sets every total back to zero.
pub fn reset() {
    for n in &NANOS {
        n.store(0, Ordering::Relaxed);
    }
}

/// The totals since the last [`reset`], in the order of [`Op::ALL`].
pub fn totals() -> [Duration; 5] {
    Op::ALL.map(|op| Duration::from_nanos(NANOS[op as usize].load(Ordering::Relaxed)))
}
