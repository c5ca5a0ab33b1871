//! Data parallelism in the training step: each rank back-propagates its share of the global
//! batch, then the ranks sum their gradients, weighted by their items, in one all-reduce (one
//! bucket: the whole model's gradients and the loss travel in one message), so that every rank
//! steps its optimizer with the gradient of the global batch's mean loss — PyTorch DDP's step.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};

use crate::distributed::Collective;

/// Replaces `grads` (of a loss that is the mean over `items` items) and `loss` by their means
/// over the global batch of every rank.
pub fn all_reduce_grads<M: Module>(
    model: &M,
    grads: GradientsParams,
    loss: f64,
    items: usize,
    group: &dyn Collective,
) -> (GradientsParams, f64) {
    let w = items as f32;
    // One buffer for the process's life: a new one would fault in its pages at every step.
    let mut buf = SCRATCH.with(|b| std::mem::take(&mut *b.borrow_mut()));
    buf.clear();
    let mut gather = Gather {
        grads,
        buf,
        parts: Vec::new(),
        weight: w,
    };
    model.visit(&mut gather);
    let Gather {
        grads,
        mut buf,
        parts,
        ..
    } = gather;
    buf.push(loss as f32 * w);
    buf.push(w);
    crate::ops::profile::timed(crate::ops::profile::Op::Communication, || {
        group.all_reduce_sum(&mut buf)
    });
    let total = buf.pop().unwrap_or(1.0).max(1.0);
    let loss = f64::from(buf.pop().unwrap_or(0.0) / total);
    let mut scatter = Scatter {
        grads,
        buf,
        parts: parts.into_iter().peekable(),
        offset: 0,
        scale: 1.0 / total,
    };
    model.visit(&mut scatter);
    SCRATCH.with(|b| *b.borrow_mut() = scatter.buf);
    (scatter.grads, loss)
}

thread_local! {
    /// The gradient buffer of [`all_reduce_grads`], kept between steps.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Takes each parameter's gradient, weighted, into one flat buffer (in visiting order).
struct Gather {
    grads: GradientsParams,
    buf: Vec<f32>,
    parts: Vec<(ParamId, Device)>,
    weight: f32,
}

impl ModuleVisitor for Gather {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.parts.push((param.id, g.device()));
            let w = self.weight;
            let data = g.cast(FloatDType::F32).into_data();
            match data.as_slice::<f32>() {
                Ok(values) => self.buf.extend(values.iter().map(|v| v * w)),
                Err(_) => self.buf.extend(data.iter::<f32>().map(|v| v * w)),
            }
        }
    }
}

/// Puts the summed gradients back, scaled to the global mean, in the same order.
struct Scatter {
    grads: GradientsParams,
    buf: Vec<f32>,
    parts: std::iter::Peekable<std::vec::IntoIter<(ParamId, Device)>>,
    offset: usize,
    scale: f32,
}

impl ModuleVisitor for Scatter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Only the parameters that had a gradient were gathered, in this order.
        if self.parts.peek().is_none_or(|(id, _)| *id != param.id) {
            return;
        }
        let Some((_, device)) = self.parts.next() else {
            return;
        };
        let shape = param.shape();
        let n = shape.num_elements();
        let values: Vec<f32> = self.buf[self.offset..self.offset + n]
            .iter()
            .map(|v| v * self.scale)
            .collect();
        self.offset += n;
        let g = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
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
