//! The LR range test of a run (`fastvision lr-find`), and measuring the machine on a run's data
//! for a plan that must fit a time budget (the playbook).

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;

use super::config::TrainConfig;
use super::run::{build_learner, bundle_config, check_memory, prepare, training_data};
use crate::error::Result;
use crate::infer::Predictor;
use crate::learner::lr_find::{LrFind, LrFindConfig};
use crate::learner::{Listen, Listener};
use crate::report::html::{self, Section};
use crate::run::lr_find_into;
use crate::run_dir::{self, RunDir};

/// The LR range test alone on a new run folder; `listen` gets the notes.
pub fn lr_find(
    config: &TrainConfig,
    run_dir: &Path,
    device: &Device,
    mut listen: Listen,
) -> Result<LrFind> {
    RunDir::refuse_existing(run_dir)?;
    let p = prepare(config, training_data(config)?)?;
    check_memory(config, &p, device)?;
    for n in &p.notes {
        listen.note(n);
    }
    let mut learner = build_learner(&p, config, device, true, &mut listen)?;
    let run = RunDir::create(run_dir)?;
    let found = lr_find_into(&mut learner, &run)?;
    run.add_section(Section::new(
        30,
        "lr_find",
        html::image(run_dir::LR_FIND_PLOT, "LR finder", 2),
    ))?;
    Ok(found)
}

/// What [`measure`] found: the LR range test's suggestion and this machine's speed on the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Seconds to read and check the data (every run does it once).
    pub load_s: f64,
    /// The range test (its valley is the suggestion).
    pub lr_find: LrFind,
    /// Seconds to train on one image at the final size.
    pub train_s_per_image: f64,
    /// Seconds to predict one image at the final size.
    pub infer_s_per_image: f64,
    /// The final image side.
    pub size: u32,
    /// Training and validation images.
    pub n_train: usize,
    /// Validation images.
    pub n_valid: usize,
    /// What the user should know (a batch size chosen for them, pretrained weights loaded).
    pub notes: Vec<String>,
}

/// A callback that keeps the notes it is handed.
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Listener for Collect {
    fn note(&mut self, text: &str) {
        if let Ok(mut n) = self.0.lock() {
            n.push(text.into());
        }
    }
}

/// Training batches timed for the playbook's pace, after [`PACE_WARMUP`] untimed ones.
const PACE_BATCHES: usize = 12;
/// Training batches run before the pace's clock starts: the loader's first batch, and the first
/// steps after the range test, which ran 4-7 % slower than training proper on the demo.
const PACE_WARMUP: usize = 3;

/// Runs the LR range test on `config`'s data and model in memory (nothing written) and times it
/// (and a few training batches after it) and one pass over (up to 256) validation images: what
/// a plan needs to fit a time budget.
pub fn measure(config: &TrainConfig, device: &Device) -> Result<Measured> {
    let t = Instant::now();
    let p = prepare(config, training_data(config)?)?;
    let load_s = t.elapsed().as_secs_f64();
    check_memory(config, &p, device)?;
    let collected = std::sync::Arc::new(std::sync::Mutex::new(p.notes.clone()));
    let mut listen = Listen::new(Collect(collected.clone()));
    let mut learner = build_learner(&p, config, device, true, &mut listen)?;
    learner.resize(p.size);
    let found = learner.lr_find(LrFindConfig::default())?;
    // The pace of training proper, warm (the range test ran first) over a few real batches at a
    // learning rate of 0: the range test's own time, with its warm-up and bookkeeping, gave a
    // pace 1.3× too slow on the demo, and a plan that left a sixth of its budget unused.
    let half = learner.precision().half();
    // Each batch's seconds (its wait for the loader and its step) and images.
    let mut timed = Vec::new();
    let mut t = Instant::now();
    for batch in learner.dls.train.iter(0).take(PACE_WARMUP + PACE_BATCHES) {
        crate::ops::autocast::with_autocast(half, || learner.train_step(&batch, 0.0, 0.9));
        timed.push((t.elapsed().as_secs_f64(), batch.len()));
        t = Instant::now();
    }
    // Small training sets have fewer batches: then all but the first are timed.
    let skip = PACE_WARMUP.min(timed.len().saturating_sub(1));
    let (seconds, seen) = timed[skip..]
        .iter()
        .fold((0.0, 0), |(s, n), &(ds, dn)| (s + ds, n + dn));
    let train_s_per_image = seconds / seen.max(1) as f64;
    let predictor = Predictor::new(learner.model.clone(), bundle_config(&learner, &p), device);
    let sample: Vec<_> = p.data.valid.iter().take(256).cloned().collect();
    let t = Instant::now();
    predictor.infer(&sample, 64, crate::infer::Inference::Plain);
    let infer_s_per_image = t.elapsed().as_secs_f64() / sample.len().max(1) as f64;
    let notes = collected.lock().map(|n| n.clone()).unwrap_or_default();
    Ok(Measured {
        load_s,
        lr_find: found,
        train_s_per_image,
        infer_s_per_image,
        size: p.size,
        n_train: p.data.train.len(),
        n_valid: p.data.valid.len(),
        notes,
    })
}
