//! Data parallelism in the training step: each rank back-propagates its share of the global
//! batch, then the ranks sum their gradients, weighted by their items, so that every rank
//! steps its optimizer with the gradient of the global batch's mean loss — PyTorch DDP's step.
//!
//! A gradient is a large buffer that every pass over costs milliseconds (ResNet-18's are 45
//! MB), so each large gradient is all-reduced from its own buffer into a scratch buffer and
//! copied back scaled (PyTorch DDP copies into 25 MB buckets instead); the small ones travel
//! together in one bucket, so that the number of messages stays small. The items of every
//! rank and their losses go first, in one tiny all-reduce: the gradients are weighted by their
//! rank's items only when the shares differ (a last, uneven batch).

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};

use crate::distributed::Collective;
use crate::ops::profile::{Op, timed};

/// Gradients of at least this many values are all-reduced alone; smaller ones in one bucket.
const ALONE: usize = 1 << 16;

/// Replaces `grads` (of a loss that is the mean over `items` items) and `loss` by their means
/// over the global batch of every rank.
pub fn all_reduce_grads<M: Module>(
    model: &M,
    grads: GradientsParams,
    loss: f64,
    items: usize,
    group: &dyn Collective,
) -> (GradientsParams, f64) {
    let w = items as f64;
    // Σ items, Σ items², Σ loss × items over the ranks (in f64: the sums of whole numbers are
    // exact, so equal shares are told apart from nearly equal ones).
    let mut totals = [w, w * w, loss * w];
    timed(Op::Communication, || group.all_reduce_sum_f64(&mut totals));
    let [total, squares, losses] = totals;
    let total = total.max(1.0);
    let loss = losses / total;
    // Equal shares: the sum divided by the ranks; otherwise each rank's gradient weighted by
    // its items first.
    let n = group.size() as f64;
    let (weight, scale) = if n * squares == total * total {
        (1.0, 1.0 / n as f32)
    } else {
        (w as f32, 1.0 / total as f32)
    };

    let mut gather = Gather {
        grads,
        parts: Vec::new(),
    };
    model.visit(&mut gather);
    let Gather { grads, mut parts } = gather;
    SCRATCH.with(|s| {
        let (sum, bucket) = &mut *s.borrow_mut();
        reduce_parts(&mut parts, weight, scale, group, sum, bucket);
    });
    let mut scatter = Scatter {
        grads,
        parts: parts.into_iter().peekable(),
    };
    model.visit(&mut scatter);
    (scatter.grads, loss)
}

/// Sums `parts` over the ranks in place, each value times `weight` before and `scale` after:
/// the large ones alone, the small ones in `bucket`; `sum` receives every all-reduce.
fn reduce_parts(
    parts: &mut [Part],
    weight: f32,
    scale: f32,
    group: &dyn Collective,
    sum: &mut Vec<f32>,
    bucket: &mut Vec<f32>,
) {
    bucket.clear();
    for part in parts.iter_mut() {
        let values = part.values();
        if weight != 1.0 {
            values.iter_mut().for_each(|v| *v *= weight);
        }
        if values.len() < ALONE {
            bucket.extend_from_slice(values);
            continue;
        }
        let summed = all_reduce(group, values, sum);
        values
            .iter_mut()
            .zip(summed)
            .for_each(|(v, s)| *v = s * scale);
    }
    if bucket.is_empty() {
        return;
    }
    let summed = all_reduce(group, bucket, sum);
    let mut offset = 0;
    for part in parts.iter_mut() {
        let values = part.values();
        if values.len() < ALONE {
            values
                .iter_mut()
                .zip(&summed[offset..])
                .for_each(|(v, s)| *v = s * scale);
            offset += values.len();
        }
    }
}

/// `send` summed over the ranks into the start of `sum` (grown when too short, never cleared:
/// zeroing megabytes every step would cost what the buffer saves); the sums.
fn all_reduce<'a>(group: &dyn Collective, send: &[f32], sum: &'a mut Vec<f32>) -> &'a [f32] {
    if sum.len() < send.len() {
        sum.resize(send.len(), 0.0);
    }
    let out = &mut sum[..send.len()];
    timed(Op::Communication, || group.all_reduce_sum(send, out));
    out
}

thread_local! {
    /// The buffers of [`all_reduce_grads`] (what an all-reduce receives, the bucket of small
    /// gradients), kept between steps: new ones would fault in their pages at every step.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// One parameter's gradient, taken out of burn's tensors (its own buffer on the CPU).
struct Part {
    id: ParamId,
    device: Device,
    data: TensorData,
}

impl Part {
    /// The gradient's values (bytes not aligned for f32, none from burn's CPU backend, are
    /// first copied into a buffer of their own).
    fn values(&mut self) -> &mut [f32] {
        if self.data.as_mut_slice::<f32>().is_err() {
            let shape = self.data.shape().clone();
            self.data = TensorData::new(self.data.iter::<f32>().collect(), shape);
        }
        self.data.as_mut_slice::<f32>().unwrap_or_default()
    }
}

/// Takes each parameter's gradient out, as f32 values (in visiting order).
struct Gather {
    grads: GradientsParams,
    parts: Vec<Part>,
}

impl ModuleVisitor for Gather {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let device = g.device();
            let data = g.cast(FloatDType::F32).into_data();
            self.parts.push(Part {
                id: param.id,
                device,
                data,
            });
        }
    }
}

/// Puts the summed gradients back, in the same order.
struct Scatter {
    grads: GradientsParams,
    parts: std::iter::Peekable<std::vec::IntoIter<Part>>,
}

impl ModuleVisitor for Scatter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Only the parameters that had a gradient were gathered, in this order.
        if self.parts.peek().is_none_or(|p| p.id != param.id) {
            return;
        }
        let Some(part) = self.parts.next() else {
            return;
        };
        let g = Tensor::<D>::from_data(part.data, &part.device);
        self.grads.register::<D>(param.id, g);
    }
}

/// Seconds this process has spent communicating with its data-parallel ranks so far.
pub fn communication_seconds() -> f64 {
    let op = crate::ops::profile::Op::Communication;
    crate::ops::profile::totals()[op as usize].as_secs_f64()
}

/// The note that ends a data-parallel fit of `steps` steps that took `step_time` seconds, of
/// which `comm_time` communicating (`None` alone).
pub fn communication_note(steps: usize, step_time: f64, comm_time: f64) -> Option<String> {
    let group = crate::distributed::group()?;
    (steps > 0).then(|| {
        format!(
            "data parallel over {} ranks: {:.1} ms per step communicating, {:.0} % of the \
             training steps' time",
            group.size(),
            1e3 * comm_time / steps as f64,
            100.0 * comm_time / step_time.max(1e-9),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Rank 0 of two, whose peer sends `peer` times what this rank sends; records each
    /// all-reduce's length.
    struct Pair {
        peer: f32,
        calls: Mutex<Vec<usize>>,
    }

    impl Collective for Pair {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            2
        }
        fn all_reduce_sum(&self, send: &[f32], recv: &mut [f32]) {
            assert_eq!(send.len(), recv.len());
            self.calls.lock().unwrap().push(send.len());
            for (r, s) in recv.iter_mut().zip(send) {
                *r = s + self.peer * s;
            }
        }
        fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
            buf.iter_mut()
                .for_each(|v| *v *= 1.0 + f64::from(self.peer));
        }
        fn broadcast_f64(&self, _: &mut [f64]) {}
        fn leave(&self) {}
    }

    fn part(n: usize, device: &Device) -> Part {
        let values = (0..n).map(|i| (i % 97) as f32 - 48.0).collect();
        Part {
            id: ParamId::new(),
            device: device.clone(),
            data: TensorData::new(values, [n]),
        }
    }

    #[test]
    fn large_gradients_go_alone_small_ones_in_one_bucket_each_back_in_place() {
        let cpu = crate::backend::select(crate::backend::DeviceChoice::Cpu);
        let device = cpu.expect("the CPU").device;
        let sizes = [ALONE + 3, 5, ALONE, 7, 1];
        let mut parts: Vec<Part> = sizes.iter().map(|&n| part(n, &device)).collect();
        let before: Vec<Vec<f32>> = parts.iter_mut().map(|p| p.values().to_vec()).collect();
        let group = Pair {
            peer: 3.0,
            calls: Mutex::new(Vec::new()),
        };
        // A longer buffer from an earlier step: only its start is used.
        let (mut sum, mut bucket) = (vec![f32::NAN; 2 * ALONE], Vec::new());
        let (weight, scale) = (2.0, 0.125);
        reduce_parts(&mut parts, weight, scale, &group, &mut sum, &mut bucket);
        assert_eq!(*group.calls.lock().unwrap(), [ALONE + 3, ALONE, 13]);
        for (p, was) in parts.iter_mut().zip(&before) {
            let want: Vec<f32> = was.iter().map(|v| v * weight * 4.0 * scale).collect();
            assert_eq!(p.values(), &want[..]);
        }
    }
}
