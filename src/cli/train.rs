//! `fastvision train`, `lr-find` and `show-batch`: the image application's flags mapped onto a
//! `TrainConfig`, and what they print; the work is in `fastvision::vision`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use fastvision::burn::tensor::Device;
use fastvision::data::AugLevel;
use fastvision::learner::{Lrs, Precision};
use fastvision::models::Arch;
use fastvision::run::{EpochPlan, split_epochs};
use fastvision::run_dir::run_path;
use fastvision::vision::{self, ScheduleKind, TrainConfig};

use super::messages::resumable;
use super::parse::{arch, at_least, between, fraction_upto_one, named, open_fraction, positive};
use super::progress;

/// The command that continues a kept image run (its folder follows).
const RESUME: &str = "fastvision train --resume";

/// What to train on and how big: shared by `train`, `lr-find` and `show-batch`.
#[derive(clap::Args)]
pub struct DataArgs {
    /// Dataset folder: DIR/train/<class>/ + DIR/valid/<class>/, or DIR/<class>/ (split by --valid-pct).
    pub dir: Option<PathBuf>,
    /// Architecture.
    #[arg(long, default_value = "resnet18", value_parser = arch())]
    pub arch: Arch,
    /// Image side in pixels, 16 to 2048 [default: 64, or the data's own size if smaller].
    #[arg(long, value_parser = between(16, 2048))]
    pub size: Option<u32>,
    /// Batch size, at least 2 [default: 64, or smaller to fit a dataset of fewer than 64
    /// training images].
    #[arg(long, value_parser = at_least(2))]
    pub bs: Option<usize>,
    /// Seed for the split, shuffling, augmentation and initialisation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Validation fraction when DIR has no valid/ folder, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.2, value_parser = open_fraction)]
    pub valid_pct: f64,
    /// Smallest area fraction of the random-resized crop [default: 1.0, no crop, as fastai's
    /// aug_transforms; 0.08 is the ImageNet from-scratch recipe].
    #[arg(long, value_parser = fraction_upto_one)]
    pub min_scale: Option<f64>,
    /// Run folder name under ./runs [default: a timestamp].
    #[arg(long)]
    pub name: Option<String>,
    /// Pretrained body: a .pth / .pth.tar / .safetensors file, or a name (see `weights list`)
    /// looked up in $FASTVISION_HOME or ~/.cache/fastvision. Implies --fine-tune.
    #[arg(long)]
    pub pretrained: Option<String>,
    /// Width of the ResNet stem (64 = torchvision; smaller trains faster, for experiments).
    #[arg(long, default_value_t = 64, hide = true, value_parser = at_least(1))]
    pub width: usize,
    /// Training augmentation: none (crop only), light (flip), default (fastai's aug_transforms:
    /// flip, rotate 10°, zoom 1.1, warp 0.2, lighting 0.2), heavy (twice as strong)
    /// [default: default from 64 px up, light below].
    #[arg(long, value_parser = named::<AugLevel>(&["none", "light", "default", "heavy"]))]
    pub aug: Option<AugLevel>,
}

impl DataArgs {
    /// The settings these flags give (training flags left at their defaults).
    pub fn config(&self) -> TrainConfig {
        TrainConfig {
            data: self.dir.clone(),
            arch: self.arch,
            width: self.width,
            size: self.size,
            bs: self.bs.unwrap_or(64),
            auto_bs: self.bs.is_none(),
            seed: self.seed,
            valid_pct: self.valid_pct,
            min_scale: self.min_scale,
            pretrained: self.pretrained.clone(),
            aug: self.aug,
            ..TrainConfig::default()
        }
    }

    /// The run folder these flags name: runs/NAME, or runs/<timestamp>.
    pub fn run_dir(&self) -> Result<PathBuf> {
        Ok(run_path(self.name.as_deref())?)
    }
}

/// `fastvision train`'s flags.
#[derive(clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Epochs (with --schedule sgdr the cycles decide); with --sizes, one count per size (2,2,1)
    /// or a total to share out.
    #[arg(long, default_value = "5")]
    pub epochs: String,
    /// Progressive resizing: train the same weights at each of these sizes in turn (32,64,128).
    #[arg(long, value_delimiter = ',', conflicts_with = "progressive", value_parser = between(16, 2048))]
    pub sizes: Vec<u32>,
    /// Progressive resizing planned from --size: start at a quarter, double each stage.
    #[arg(long)]
    pub progressive: bool,
    /// MixUp with Beta(ALPHA, ALPHA) weights [ALPHA default: 0.4].
    #[arg(long, num_args = 0..=1, default_missing_value = "0.4", value_name = "ALPHA")]
    pub mixup: Option<f64>,
    /// CutMix with Beta(ALPHA, ALPHA) box areas [ALPHA default: 1.0].
    #[arg(long, num_args = 0..=1, default_missing_value = "1.0", value_name = "ALPHA", conflicts_with = "mixup")]
    pub cutmix: Option<f64>,
    /// Label-smoothing cross-entropy [EPS default: 0.1].
    #[arg(long, num_args = 0..=1, default_missing_value = "0.1", value_name = "EPS")]
    pub label_smoothing: Option<f64>,
    /// Learning rate: a number, LO:HI spread over the layer groups, :HI (HI/10 for the body), or
    /// `auto` (run the LR finder and use its valley suggestion).
    #[arg(long, default_value = "1e-3")]
    pub lr: String,
    /// Learning-rate schedule.
    #[arg(long, default_value = "one-cycle",
          value_parser = named::<ScheduleKind>(&["one-cycle", "sgdr", "flat-cos", "cosine", "constant"]))]
    pub schedule: ScheduleKind,
    /// SGDR: number of cycles.
    #[arg(long, default_value_t = 3, value_parser = at_least(1))]
    pub cycles: usize,
    /// SGDR: epochs of the first cycle.
    #[arg(long, default_value_t = 1, value_parser = at_least(1))]
    pub cycle_len: usize,
    /// SGDR: length multiplier of each next cycle.
    #[arg(long, default_value_t = 2, value_parser = at_least(1))]
    pub cycle_mult: usize,
    /// fastai's fine_tune: one frozen epoch, then all layers at discriminative LRs.
    #[arg(long)]
    pub fine_tune: bool,
    /// Continue the interrupted run in this folder from its last checkpoint.
    #[arg(long, conflicts_with_all = ["dir", "name"])]
    pub resume: Option<PathBuf>,
    /// Synthetic images (a folder of class folders, e.g. from `gan sample`) added to the
    /// training split only.
    #[arg(long)]
    pub extra_data: Option<PathBuf>,
    /// Use F × (real training images) of the synthetic ones, chosen with --seed [default: all].
    #[arg(long, requires = "extra_data", value_parser = positive)]
    pub extra_fraction: Option<f64>,
    /// With --schedule sgdr: keep the weights at the end of every cycle; RUN/snapshots/ is then
    /// an ensemble of them (predict/evaluate/interpret RUN/snapshots).
    #[arg(long)]
    pub snapshots: bool,
    /// Float precision of the convolutions (and, on the CPU in bf16, the linear layers), over f32 weights: auto (bf16 on AMX tiles or AMD's
    /// AVX-512 BF16, else fp32), fp32, bf16 (a CPU with AVX-512 BF16 or AMX; libtorch on CUDA)
    /// or fp16 (a GPU, with loss scaling: fastai's to_fp16).
    #[arg(long, default_value = "auto", value_parser = named::<Precision>(&["auto", "fp32", "fp16", "bf16"]))]
    pub precision: Precision,
}

/// `fastvision show-batch`'s flags.
#[derive(clap::Args)]
pub struct ShowBatchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Images in the grid.
    #[arg(long, default_value_t = 16, value_parser = at_least(1))]
    pub n: usize,
}

/// The training configuration and run folder that `train`'s flags describe.
pub fn train_config(args: &TrainArgs) -> Result<(TrainConfig, PathBuf)> {
    let auto = args.lr.eq_ignore_ascii_case("auto");
    let epochs: Vec<usize> = args
        .epochs
        .split(',')
        .map(|e| e.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()
        .with_context(|| {
            format!(
                "--epochs {:?}: expected a whole number of at least 1, or one per size (2,2,1)",
                args.epochs
            )
        })?;
    let total: usize = epochs.iter().sum();
    let (sizes, size_epochs) = if args.progressive {
        let target = args
            .data
            .size
            .context("--progressive needs the target --size")?;
        let plan = EpochPlan::progressive(target, total);
        println!(
            "progressive resizing: sizes {:?}, epochs {:?} (a quarter of --size {target}, doubling)",
            plan.sizes, plan.epochs
        );
        (plan.sizes, plan.epochs)
    } else if !args.sizes.is_empty() && epochs.len() == 1 {
        (args.sizes.clone(), split_epochs(total, args.sizes.len()))
    } else if !args.sizes.is_empty() {
        (args.sizes.clone(), epochs.clone())
    } else if epochs.len() > 1 {
        bail!(
            "--epochs {} lists several counts: give --sizes too",
            args.epochs
        );
    } else {
        (Vec::new(), Vec::new())
    };
    let config = TrainConfig {
        epochs: total,
        sizes,
        size_epochs,
        mixup: args.mixup,
        cutmix: args.cutmix,
        label_smoothing: args.label_smoothing,
        lr: if auto {
            Lrs::Single(1e-3)
        } else {
            args.lr.parse()?
        },
        lr_auto: auto,
        schedule: args.schedule,
        cycles: args.cycles,
        cycle_len: args.cycle_len,
        cycle_mult: args.cycle_mult,
        fine_tune: args.fine_tune || args.data.pretrained.is_some(),
        extra_data: args.extra_data.clone(),
        snapshots: args.snapshots,
        precision: args.precision,
        extra_fraction: args.extra_fraction,
        ..args.data.config()
    };
    let dir = args.data.run_dir()?;
    match &config.data {
        Some(d) => println!("data: {}", d.display()),
        None => println!(
            "data: bundled demo ({})",
            fastvision::data::demo::demo_path()?.display()
        ),
    }
    Ok((config, dir))
}

/// `fastvision train`.
pub fn train(args: TrainArgs, device: &Device) -> Result<()> {
    let summary = if let Some(dir) = args.resume {
        progress::announce_resume(&dir)?;
        vision::resume(&dir, device, progress::on_stdout())
            .map_err(|e| resumable(e, RESUME, &dir))?
    } else {
        let (config, dir) = train_config(&args)?;
        vision::train(&config, &dir, device, progress::on_stdout())
            .map_err(|e| resumable(e, RESUME, &dir))?
    };
    if summary.skipped > 0 {
        println!(
            "skipped {} files (listed in {}):",
            summary.skipped,
            summary.dir.join(fastvision::run_dir::SKIPPED).display()
        );
        let text = std::fs::read_to_string(summary.dir.join(fastvision::run_dir::SKIPPED))
            .unwrap_or_default();
        text.lines().take(20).for_each(|l| println!("  {l}"));
    }
    if let Some(m) = &summary.last {
        let done = format!(
            "after {} in {:.1}s",
            fastvision::text::count(m.epoch + 1, "epoch"),
            summary.seconds
        );
        match (m.accuracy, m.valid_loss) {
            (Some(a), Some(l)) => println!("final: accuracy {a:.4}, valid_loss {l:.4} {done}"),
            _ => println!(
                "final: no validation images to measure (train_loss {:.4}) {done}",
                m.train_loss
            ),
        }
    }
    println!("run folder: {}", summary.dir.display());
    Ok(())
}

/// `fastvision show-batch`.
pub fn show_batch(args: ShowBatchArgs) -> Result<()> {
    let dir = args.data.run_dir()?;
    let path = vision::show_batch(&args.data.config(), &dir, args.n)?;
    println!("augmented training images: {}", path.display());
    Ok(())
}

/// `fastvision lr-find`.
pub fn lr_find(args: DataArgs, device: &Device) -> Result<()> {
    let dir = args.run_dir()?;
    let found = vision::lr_find(&args.config(), &dir, device, progress::on_stdout())?;
    let s = found.suggestions;
    println!(
        "LR finder over {} iterations{}",
        found.lrs.len(),
        if found.diverged {
            " (stopped: loss diverged)"
        } else {
            ""
        }
    );
    println!(
        "  valley  {:.2e}  (default)\n  steep   {:.2e}\n  minimum {:.2e}\n  slide   {:.2e}",
        s.valley, s.steep, s.minimum, s.slide
    );
    println!(
        "plot: {}",
        dir.join(fastvision::run_dir::LR_FIND_PLOT).display()
    );
    Ok(())
}
