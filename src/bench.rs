//! `fastvision bench`: loader, training and inference throughput, the time per kind of op in a
//! training step, and peak memory.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Distribution, Int, Tensor};

use crate::data::{
    DataLoader, ImageFolder, ItemTransform, Normalize, SplitConfig, demo::demo_path,
};
use crate::error::Result;
use crate::learner::Learner;
use crate::models::{Arch, ClassifierConfig};
use crate::ops::profile::{self, Op};

/// Benchmark settings (`fastvision bench`'s flags).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Architecture to time.
    pub arch: Arch,
    /// Batch size.
    pub bs: usize,
    /// Image side.
    pub size: u32,
    /// Timed training and inference steps (after 2 warm-up steps).
    pub steps: usize,
    /// Images to decode for the loader figure (default: the demo's training set).
    pub data: Option<PathBuf>,
    /// Augmentation in the loader figure (default: none, crop + flip only).
    pub aug: Option<crate::data::AugLevel>,
    /// Time burn's own ops instead of fastvision's kernels (the "before" of the kernels).
    pub reference_ops: bool,
    /// Float precision of training and inference (`Auto`: bf16 on AMX tiles or AMD's AVX-512 BF16, else fp32).
    pub precision: crate::learner::Precision,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet18,
            bs: 32,
            size: 64,
            steps: 10,
            data: None,
            aug: None,
            reference_ops: false,
            precision: crate::learner::Precision::Auto,
        }
    }
}

/// The GEMM throughput of our kernels on this machine, in GFLOP/s, per way of multiplying.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GemmPeak {
    /// How the products multiply (`F32`, `Amx`, `Avx512Bf16`).
    pub mul: String,
    /// Side of the square product.
    pub n: usize,
    /// Billions of multiply-adds ×2 per second, on all cores.
    pub gflops: f64,
}

/// The throughput of an `n × n × n` product on all cores in f32 and in every bf16 unit this CPU
/// has (operands rounded and packed inside the timing): the ceiling the convolutions work under.
pub fn gemm_peaks(n: usize) -> Vec<GemmPeak> {
    use crate::ops::kernels::bf16::{self, Mul};
    use crate::ops::kernels::{Mat, matmul};
    let a: Vec<f32> = (0..n * n).map(|i| (i % 13) as f32 * 0.1).collect();
    std::iter::once(Mul::F32)
        .chain(bf16::units())
        .map(|mul| {
            let run = || matmul(n, n, n, Mat::rows(&a, n), Mat::rows(&a, n), mul);
            let _ = run();
            let reps = 5;
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(run());
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            GemmPeak {
                mul: format!("{mul:?}"),
                n,
                gflops: 2.0 * (n * n * n) as f64 / s / 1e9,
            }
        })
        .collect()
}

/// Figures measured by [`measure`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Backend name.
    pub backend: String,
    /// Loader images/s (decode + random-resized-crop + flip + normalise, all cores).
    pub loader_img_s: f64,
    /// Training images/s (forward + backward + Adam step).
    pub train_img_s: f64,
    /// Inference images/s (eval-mode forward).
    pub infer_img_s: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_mib: f64,
    /// Seconds of the two warm-up steps (on a GPU: kernel compilation and autotuning, unless
    /// cached from an earlier run).
    pub warmup_s: f64,
    /// Milliseconds per training step spent in each kind of op, then "other" (the rest).
    pub step_ms: Vec<(String, f64)>,
}

/// Measures the figures of [`BenchReport`].
pub fn measure(args: &BenchConfig, device: &burn::tensor::Device) -> Result<BenchReport> {
    if args.bs == 0 || args.steps == 0 || !(16..=2048).contains(&args.size) {
        return Err(crate::error::Error::Config(format!(
            "`bs` {} and `steps` {}: at least 1; `size` {}: between 16 and 2048",
            args.bs, args.steps, args.size
        )));
    }
    // Training and then inference at this batch and size, with a second batch beside it.
    crate::backend::check_fits(
        device,
        args.arch.training_memory(64, args.bs, args.size)
            + 2.0 * 12.0 * (args.bs as f64) * f64::from(args.size).powi(2),
        &format!(
            "timing {} at `size` {} with `bs` {}",
            args.arch, args.size, args.bs
        ),
        "`size` or `bs`",
    )?;
    let root = match &args.data {
        Some(p) => p.clone(),
        None => demo_path()?,
    };
    let data = ImageFolder::from_folder(&root, SplitConfig::default())?;
    let loader = DataLoader::new(
        data.train.clone(),
        ItemTransform::train(args.size),
        Normalize::IMAGENET,
        args.bs,
        true,
        0,
    )
    .with_aug(args.aug.and_then(|a| a.transforms()));
    let t = Instant::now();
    let n: usize = loader.iter(0).map(|b| b.len()).sum();
    let loader_img_s = n as f64 / t.elapsed().as_secs_f64();

    let device = device.clone().autodiff();
    device.seed(0);
    let model = ClassifierConfig::new(args.arch, 10).init(&device)?;
    let dls = crate::data::DataLoaders::from_folder(&data, args.size, args.bs, 0);
    let mut learner = Learner::new(model, dls, Default::default(), &device, 0);
    learner.set_precision(args.precision)?;
    let s = args.size as usize;
    // Data parallel: `bs` is the global batch, each rank steps on its share.
    crate::distributed::check_batch(args.bs)?;
    let local = crate::distributed::share(
        args.bs,
        crate::distributed::rank(),
        crate::distributed::size(),
    )
    .len();
    let x = Tensor::<4>::random([local, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(
        burn::tensor::TensorData::new(
            (0..local as i64).map(|i| i % 10).collect::<Vec<_>>(),
            [local],
        ),
        &device,
    );
    crate::ops::use_reference_ops(args.reference_ops);
    let t = Instant::now();
    for _ in 0..2 {
        learner.step_tensors(x.clone(), y.clone(), 1e-3, 0.9);
    }
    let warmup_s = t.elapsed().as_secs_f64();
    profile::reset();
    let t = Instant::now();
    for _ in 0..args.steps {
        learner.step_tensors(x.clone(), y.clone(), 1e-3, 0.9);
    }
    let elapsed = t.elapsed();
    let train_img_s = (args.steps * args.bs) as f64 / elapsed.as_secs_f64();
    let per_step = |d: std::time::Duration| 1e3 * d.as_secs_f64() / args.steps as f64;
    let totals = profile::totals();
    let alone = crate::distributed::group().is_none();
    let mut step_ms: Vec<(String, f64)> = Op::ALL
        .iter()
        .zip(totals)
        .filter(|(op, _)| !(alone && **op == Op::Communication))
        .map(|(op, d)| (op.label().to_string(), per_step(d)))
        .collect();
    let other = elapsed.saturating_sub(totals.iter().sum());
    step_ms.push((
        "other (pooling, activations, loss, autodiff, burn's backwards)".into(),
        per_step(other),
    ));

    let model = learner.model.valid();
    let plain = device.clone().without_autodiff();
    let xi = Tensor::<4>::random([args.bs, 3, s, s], Distribution::Normal(0.0, 1.0), &plain);
    let half = learner.precision().half();
    // As a Predictor does: the weights packed for bf16 products once, for every batch.
    let frozen = crate::ops::kernels::FrozenWeights::new();
    let forward = || {
        crate::ops::workers::on_workers(&plain, || {
            crate::ops::kernels::with_frozen_weights(&frozen, || {
                crate::ops::autocast::with_autocast(half, || model.forward(xi.clone()))
            })
            .into_data()
        })
    };
    let _ = forward();
    let t = Instant::now();
    for _ in 0..args.steps {
        let _ = forward();
    }
    let infer_img_s = (args.steps * args.bs) as f64 / t.elapsed().as_secs_f64();
    Ok(BenchReport {
        backend: crate::backend::backend_of(&plain).into(),
        loader_img_s,
        train_img_s,
        infer_img_s,
        peak_mib: peak_rss_mib(),
        warmup_s,
        step_ms,
    })
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
