//! The `fastvision` command line: a thin layer over the library.

mod cli {
    pub mod ensemble;
    pub mod gan;
    pub mod tabular;
}

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use fastvision::burn::tensor::Device;
use fastvision::clean::items_in_vocab;
use fastvision::clean::report::interpret_folder;
use fastvision::clean::{
    InterpretOptions, Journal, ReviewServer, Split, flags, interpret_run, out_of_fold, run_dataset,
};
use fastvision::data::AugLevel;
use fastvision::data::{ImageFolder, SplitConfig, skipped_report};
use fastvision::infer::{Inference, Predictor, Tta, evaluate};
use fastvision::learner::Callback;
use fastvision::learner::Lrs;
use fastvision::learner::progress::Progress;
use fastvision::models::Arch;
use fastvision::report::plot::plot_confusion;
use fastvision::run::{self, ScheduleKind, TrainConfig};

#[derive(Parser)]
#[command(
    name = "fastvision",
    version,
    about = "Train image classifiers with the fastai playbook"
)]
struct Cli {
    /// Never touch the network: named pretrained weights must already be in the cache
    /// (also FASTVISION_OFFLINE=1).
    #[arg(long, global = true)]
    offline: bool,
    /// Where to compute: auto (a GPU when the build has GPU support and finds one, else the
    /// CPU), cpu, or gpu [default: $FASTVISION_DEVICE, else auto].
    #[arg(long, global = true)]
    device: Option<fastvision::backend::DeviceChoice>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a classifier on a folder of class folders (default: the bundled demo dataset).
    Train(TrainArgs),
    /// Structured data: train, predict, evaluate and inspect a tabular model from CSV files.
    #[command(subcommand)]
    Tabular(cli::tabular::TabularCommand),
    /// Ensembles of diverse models: train members, report, combination weights.
    #[command(subcommand)]
    Ensemble(cli::ensemble::EnsembleCommand),
    /// Wasserstein GANs that learn each class and write synthetic training images.
    #[command(subcommand)]
    Gan(cli::gan::GanCommand),
    /// Predict the top classes of images with a trained run.
    Predict {
        /// Run folder (holds model.safetensors and config.json), or a file made by `export`.
        run: PathBuf,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// How many classes to show per image.
        #[arg(short = 'k', long, default_value_t = 3)]
        top: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        how: InferArgs,
    },
    /// Evaluate a trained run on labelled images (class folders, or a dataset root with valid/).
    Evaluate {
        /// Run folder, or a file made by `export`.
        run: PathBuf,
        /// Folder of class folders, or a dataset root whose valid/ is used.
        dir: PathBuf,
        /// Batch size.
        #[arg(long, default_value_t = 64)]
        bs: usize,
        #[command(flatten)]
        how: InferArgs,
    },
    /// Write a PNG grid of augmented training images, to see what the model will see.
    ShowBatch {
        #[command(flatten)]
        data: DataArgs,
        /// Images in the grid.
        #[arg(long, default_value_t = 16)]
        n: usize,
    },
    /// Interpret a run: per-image losses, top losses, confusion matrix, per-class report.
    Interpret {
        /// Run folder.
        run: PathBuf,
        /// Dataset folder [default: the one the run trained on].
        dir: Option<PathBuf>,
        /// Which images: valid, train or all.
        #[arg(long, value_enum, default_value_t = Split::Valid)]
        split: Split,
        /// Images in top_losses.png.
        #[arg(short = 'k', long, default_value_t = 16)]
        top: usize,
        /// Plot the confusion matrix with rows normalised to 1.
        #[arg(long)]
        normalize: bool,
        /// Smallest count of a most-confused pair.
        #[arg(long, default_value_t = 2)]
        min: usize,
        /// Batch size.
        #[arg(long, default_value_t = 64)]
        bs: usize,
    },
    /// Find training images that are probably mislabelled, quarantine them, or review a dataset
    /// on a local web page; `clean --undo DIR` moves every file back.
    Clean(CleanArgs),
    /// LR range test: suggestions printed, plot in the run folder.
    LrFind(DataArgs),
    /// Measure loader, training and inference throughput and peak memory.
    Bench(fastvision::bench::BenchArgs),
    /// Write a run's model as one self-contained file (weights + configuration) to deploy;
    /// predict and evaluate accept it in place of a run folder.
    Export {
        /// Run folder.
        run: PathBuf,
        /// The file to write (never overwritten) [default: model.safetensors, or model.onnx].
        #[arg(long)]
        out: Option<PathBuf>,
        /// `safetensors` (fastvision's own single file) or `onnx` (opset 13, dynamic batch).
        #[arg(long, default_value = "safetensors")]
        format: ExportFormat,
    },
    /// Named pretrained checkpoints: list them, or download them into the cache.
    #[command(subcommand)]
    Weights(WeightsCommand),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Safetensors,
    Onnx,
}

#[derive(Subcommand)]
enum WeightsCommand {
    /// Every named checkpoint: source, SHA-256, licence, training data, and whether it is cached.
    List,
    /// Download named checkpoints into the cache now (for machines that are online only sometimes).
    Fetch {
        /// Checkpoint names (see `weights list`).
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// What to train on and how big: shared by `train` and `lr-find`.
#[derive(clap::Args)]
struct DataArgs {
    /// Dataset folder: DIR/train/<class>/ + DIR/valid/<class>/, or DIR/<class>/ (split by --valid-pct).
    dir: Option<PathBuf>,
    /// Architecture: resnet18, resnet34 or resnet50.
    #[arg(long, default_value = "resnet18")]
    arch: Arch,
    /// Image side in pixels [default: 64, or the data's own size if smaller].
    #[arg(long)]
    size: Option<u32>,
    /// Batch size [default: 64, or smaller to fit a dataset of fewer than 64 training images].
    #[arg(long)]
    bs: Option<usize>,
    /// Seed for the split, shuffling, augmentation and initialisation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Validation fraction when DIR has no valid/ folder.
    #[arg(long, default_value_t = 0.2)]
    valid_pct: f64,
    /// Smallest area fraction of the random-resized crop [default: fastai's 0.08 from 64 px up,
    /// 1.0 (no crop) below 64 px].
    #[arg(long)]
    min_scale: Option<f64>,
    /// Run folder name under ./runs [default: a timestamp].
    #[arg(long)]
    name: Option<String>,
    /// Pretrained body: a .pth / .pth.tar / .safetensors file, or a name (resnet18, resnet34,
    /// resnet50, resnet50_places365) looked up in $FASTVISION_HOME or ~/.cache/fastvision.
    /// Implies --fine-tune.
    #[arg(long)]
    pretrained: Option<String>,
    /// Width of the ResNet stem (64 = torchvision; smaller trains faster, for experiments).
    #[arg(long, default_value_t = 64, hide = true)]
    width: usize,
    /// Training augmentation: none (crop only), light (flip), default (fastai's aug_transforms:
    /// flip, rotate 10°, zoom 1.1, warp 0.2, lighting 0.2), heavy (twice as strong)
    /// [default: default from 64 px up, light below].
    #[arg(long, value_enum)]
    aug: Option<AugLevel>,
}

#[derive(clap::Args)]
struct CleanArgs {
    /// Run folder whose model judges the images.
    #[arg(required_unless_present = "undo")]
    run: Option<PathBuf>,
    /// Dataset folder [default: the one the run trained on].
    dir: Option<PathBuf>,
    /// Flag training images predicted wrongly with a probability above this.
    #[arg(long, default_value_t = 0.9)]
    confident_wrong: f32,
    /// Judge each image out-of-fold: train K models on K−1 folds each (K times the training).
    #[arg(long, value_name = "K")]
    folds: Option<usize>,
    /// Move the flagged files into DIR/.fastvision-quarantine/ (journaled, undoable).
    #[arg(long, conflicts_with = "serve")]
    apply: bool,
    /// Serve the review page instead of listing.
    #[arg(long)]
    serve: bool,
    /// Address to serve on; anything but 127.0.0.1 exposes your files to the network.
    #[arg(long, requires = "serve")]
    host: Option<std::net::IpAddr>,
    /// Port to serve on [default: any free port].
    #[arg(long, default_value_t = 0, requires = "serve")]
    port: u16,
    /// Move back every file the journal of DIR records as moved, newest first.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["run", "apply", "serve"])]
    undo: Option<PathBuf>,
}

/// How `predict` and `evaluate` turn images into predictions.
#[derive(clap::Args)]
struct InferArgs {
    /// Test-time augmentation: the plain prediction blended with 4 augmented passes (fastai's tta).
    #[arg(long)]
    tta: bool,
    /// With --tta: the maximum over the passes instead of their mean.
    #[arg(long, requires = "tta")]
    tta_max: bool,
    /// With --tta: number of augmented passes.
    #[arg(long, default_value_t = 4, requires = "tta")]
    tta_n: usize,
    /// 10-crop: four corners and the centre, and their mirrors, averaged.
    #[arg(long, conflicts_with = "tta")]
    ten_crop: bool,
}

impl InferArgs {
    fn inference(&self) -> Inference {
        if self.tta {
            Inference::Tta(Tta {
                n: self.tta_n,
                use_max: self.tta_max,
                ..Tta::default()
            })
        } else if self.ten_crop {
            Inference::TenCrop
        } else {
            Inference::Plain
        }
    }
}

impl DataArgs {
    fn config(&self) -> TrainConfig {
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

    fn run_dir(&self) -> PathBuf {
        PathBuf::from("runs").join(self.name.clone().unwrap_or_else(run::timestamp_name))
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Epochs (with --schedule sgdr the cycles decide); with --sizes, one count per size (2,2,1)
    /// or a total to share out.
    #[arg(long, default_value = "5")]
    epochs: String,
    /// Progressive resizing: train the same weights at each of these sizes in turn (32,64,128).
    #[arg(long, value_delimiter = ',', conflicts_with = "progressive")]
    sizes: Vec<u32>,
    /// Progressive resizing planned from --size: start at a quarter, double each stage.
    #[arg(long)]
    progressive: bool,
    /// MixUp with Beta(ALPHA, ALPHA) weights [ALPHA default: 0.4].
    #[arg(long, num_args = 0..=1, default_missing_value = "0.4", value_name = "ALPHA")]
    mixup: Option<f64>,
    /// CutMix with Beta(ALPHA, ALPHA) box areas [ALPHA default: 1.0].
    #[arg(long, num_args = 0..=1, default_missing_value = "1.0", value_name = "ALPHA", conflicts_with = "mixup")]
    cutmix: Option<f64>,
    /// Label-smoothing cross-entropy [EPS default: 0.1].
    #[arg(long, num_args = 0..=1, default_missing_value = "0.1", value_name = "EPS")]
    label_smoothing: Option<f64>,
    /// Learning rate: a number, LO:HI spread over the layer groups, :HI (HI/10 for the body), or
    /// `auto` (run the LR finder and use its valley suggestion).
    #[arg(long, default_value = "1e-3")]
    lr: String,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = ScheduleKind::OneCycle)]
    schedule: ScheduleKind,
    /// SGDR: number of cycles.
    #[arg(long, default_value_t = 3)]
    cycles: usize,
    /// SGDR: epochs of the first cycle.
    #[arg(long, default_value_t = 1)]
    cycle_len: usize,
    /// SGDR: length multiplier of each next cycle.
    #[arg(long, default_value_t = 2)]
    cycle_mult: usize,
    /// fastai's fine_tune: one frozen epoch, then all layers at discriminative LRs.
    #[arg(long)]
    fine_tune: bool,
    /// Continue the interrupted run in this folder from its last checkpoint.
    #[arg(long, conflicts_with_all = ["dir", "name"])]
    resume: Option<PathBuf>,
    /// Synthetic images (a folder of class folders, e.g. from `gan sample`) added to the
    /// training split only.
    #[arg(long)]
    extra_data: Option<PathBuf>,
    /// Use F × (real training images) of the synthetic ones, chosen with --seed [default: all].
    #[arg(long, requires = "extra_data")]
    extra_fraction: Option<f64>,
    /// With --schedule sgdr: keep the weights at the end of every cycle; RUN/snapshots/ is then
    /// an ensemble of them (predict/evaluate/interpret RUN/snapshots).
    #[arg(long)]
    snapshots: bool,
    /// Float precision: fp32, or mixed precision on a GPU (fastai's to_fp16): fp16 (with loss
    /// scaling) or bf16 (libtorch on CUDA) convolutions over f32 weights.
    #[arg(long, default_value = "fp32")]
    precision: fastvision::learner::Precision,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    fastvision::weights::hub::set_offline(cli.offline);
    let choice = match cli.device {
        Some(c) => c,
        None => fastvision::backend::DeviceChoice::from_env()?,
    };
    // The device is found only by commands that compute, and named on their first line.
    let device = || -> Result<Device> {
        let s = fastvision::backend::select(choice)?;
        eprintln!("device: {}", s.description);
        Ok(s.device)
    };
    match cli.command {
        Command::Train(args) => train(args, &device()?),
        Command::Tabular(cmd) => cli::tabular::run(cmd, &device()?),
        Command::Gan(cmd) => cli::gan::run(cmd, &device()?),
        Command::Ensemble(cmd) => cli::ensemble::run(cmd, &device()?),
        Command::Predict {
            run,
            images,
            top,
            json,
            how,
        } => predict(run, images, top, json, how.inference(), &device()?),
        Command::Evaluate { run, dir, bs, how } => {
            evaluate_cmd(run, dir, bs, how.inference(), &device()?)
        }
        Command::ShowBatch { data, n } => show_batch(data, n),
        Command::Interpret {
            run,
            dir,
            split,
            top,
            normalize,
            min,
            bs,
        } => interpret_cmd(
            &run,
            &InterpretOptions {
                dir,
                split,
                k: top,
                normalize,
                min,
                bs,
            },
            &device()?,
        ),
        Command::Clean(args) => clean(args, device),
        Command::LrFind(args) => lr_find(args, &device()?),
        Command::Bench(args) => fastvision::bench::run(&args, &device()?).map_err(Into::into),
        Command::Weights(cmd) => weights_cmd(cmd),
        Command::Export { run, out, format } => {
            let device = device()?;
            let out = match format {
                ExportFormat::Safetensors => {
                    let out = out.unwrap_or_else(|| "model.safetensors".into());
                    fastvision::infer::export_bundle(&run, &out, &device)?;
                    out
                }
                ExportFormat::Onnx => {
                    let out = out.unwrap_or_else(|| "model.onnx".into());
                    fastvision::infer::export_onnx(&run, &out, &device)?;
                    out
                }
            };
            println!("exported {} to {}", run.display(), out.display());
            Ok(())
        }
    }
}

fn weights_cmd(cmd: WeightsCommand) -> Result<()> {
    use fastvision::weights::{cache_dir, hub};
    let dir = cache_dir();
    match cmd {
        WeightsCommand::List => {
            println!("cache: {}", dir.display());
            for c in hub::CATALOG {
                let cached = if dir.join(c.file).is_file() {
                    "cached"
                } else {
                    "-"
                };
                println!("{:<20} {:<7} {}", c.name, cached, c.file);
                println!(
                    "    architecture: {}; trained on {}; licence: {}",
                    c.arch, c.trained_on, c.license
                );
                match c.urls.first() {
                    Some(url) => println!("    from: {url}"),
                    None => println!("    not downloadable: {}", c.manual),
                }
                match c.sha256 {
                    Some(h) if h.len() == 64 => println!("    sha256: {h}"),
                    Some(h) => println!("    sha256: {h}… (the prefix its publisher commits to)"),
                    None => println!("    sha256: none published"),
                }
            }
        }
        WeightsCommand::Fetch { names } => {
            for name in names {
                let Some(c) = hub::find(&name) else {
                    let known: Vec<&str> = hub::CATALOG.iter().map(|c| c.name).collect();
                    bail!("{name}: not a known checkpoint ({})", known.join(", "));
                };
                let path = c.fetch(&dir)?;
                println!("{name}: {}", path.display());
            }
        }
    }
    Ok(())
}

/// The training configuration and run folder that `train`'s flags describe.
fn train_config(args: &TrainArgs) -> Result<(TrainConfig, PathBuf)> {
    let auto = args.lr.eq_ignore_ascii_case("auto");
    let epochs: Vec<usize> = args
        .epochs
        .split(',')
        .map(|e| e.trim().parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--epochs {:?}: expected N or N,N,…", args.epochs))?;
    let total: usize = epochs.iter().sum();
    let (sizes, size_epochs) = if args.progressive {
        let target = args
            .data
            .size
            .context("--progressive needs the target --size")?;
        let plan = run::progressive_plan(target, total);
        println!(
            "progressive resizing: sizes {:?}, epochs {:?} (a quarter of --size {target}, doubling)",
            plan.0, plan.1
        );
        plan
    } else if !args.sizes.is_empty() && epochs.len() == 1 {
        let n = args.sizes.len();
        let split = (0..n)
            .map(|i| total / n + usize::from(i < total % n))
            .collect();
        (args.sizes.clone(), split)
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
    let dir = args.data.run_dir();
    match &config.data {
        Some(d) => println!("data: {}", d.display()),
        None => println!(
            "data: bundled demo ({})",
            fastvision::data::demo::demo_path()?.display()
        ),
    }
    Ok((config, dir))
}

fn train(args: TrainArgs, device: &Device) -> Result<()> {
    let callbacks: Vec<Box<dyn Callback>> = vec![Box::new(Progress::default())];
    let summary = if let Some(dir) = args.resume {
        if !run::has_checkpoint(&dir) {
            bail!("{}: no checkpoint to resume from", dir.display());
        }
        println!("resuming {}", dir.display());
        run::resume(&dir, device, callbacks)?
    } else {
        let (config, dir) = train_config(&args)?;
        config.validate()?;
        for (i, stage) in config.plan().iter().enumerate() {
            println!(
                "stage {}: {} epochs, {}, lr {}{}{}",
                i + 1,
                stage.epochs,
                stage.schedule,
                stage.lrs,
                if stage.frozen { ", body frozen" } else { "" },
                stage.size.map(|s| format!(", {s} px")).unwrap_or_default()
            );
        }
        run::train(&config, &dir, device, callbacks)?
    };
    if summary.skipped > 0 {
        println!(
            "skipped {} files (listed in {}):",
            summary.skipped,
            summary.dir.join("skipped.txt").display()
        );
        let text = std::fs::read_to_string(summary.dir.join("skipped.txt")).unwrap_or_default();
        text.lines().take(20).for_each(|l| println!("  {l}"));
    }
    if let Some(m) = &summary.last {
        println!(
            "final: accuracy {:.4}, valid_loss {:.4} after {} epochs in {:.1}s",
            m.accuracy,
            m.valid_loss,
            m.epoch + 1,
            summary.seconds
        );
    }
    println!("run folder: {}", summary.dir.display());
    Ok(())
}

fn predict(
    run: PathBuf,
    images: Vec<PathBuf>,
    top: usize,
    json: bool,
    how: Inference,
    device: &Device,
) -> Result<()> {
    let predictor = Predictor::load(&run, device)?;
    let preds = predictor.predict(&images, top, how)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&preds)?);
    } else {
        for p in preds {
            let classes: Vec<String> = p
                .top
                .iter()
                .map(|c| format!("{} {:.3}", c.class, c.prob))
                .collect();
            println!("{}: {}", p.path.display(), classes.join(", "));
        }
    }
    Ok(())
}

fn evaluate_cmd(
    run: PathBuf,
    dir: PathBuf,
    bs: usize,
    how: Inference,
    device: &Device,
) -> Result<()> {
    let predictor = Predictor::load(&run, device)?;
    let dir = if dir.join("valid").is_dir() {
        dir.join("valid")
    } else {
        dir
    };
    let data = ImageFolder::from_folder(
        &dir,
        SplitConfig {
            valid_pct: 0.0,
            seed: 0,
        },
    )
    .with_context(|| format!("reading {}", dir.display()))?;
    let vocab = &predictor.config.vocab;
    let (items, skipped) = items_in_vocab(&data, Split::Train, vocab)?;
    let eval = evaluate(&predictor, items, skipped, bs, how);
    if predictor.is_ensemble() {
        println!(
            "ensemble of {} members ({} combination)",
            predictor.others.len() + 1,
            predictor.combination.name()
        );
    }
    if eval.fit_excluded > 0 {
        println!(
            "{} images left out: the ensemble's weights were fitted on them",
            eval.fit_excluded
        );
    }
    println!(
        "{} images, accuracy {:.4} ({}, {:.1}s)",
        eval.n,
        eval.accuracy,
        match how {
            Inference::Plain => "plain".to_string(),
            Inference::Tta(t) => format!(
                "tta n={} beta={}{}",
                t.n,
                t.beta,
                if t.use_max { " max" } else { "" }
            ),
            Inference::TenCrop => "10-crop".to_string(),
        },
        eval.seconds
    );
    for (class, acc, n) in &eval.per_class {
        println!("  {class:<20} {acc:.4}  ({n} images)");
    }
    // Beside an exported model file, its own name; in a run folder, confusion.png.
    let png = if run.is_file() {
        let stem = run
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        run.with_file_name(format!("{stem}.confusion.png"))
    } else {
        run.join("confusion.png")
    };
    plot_confusion(&eval.confusion, vocab, &png)?;
    println!("confusion matrix: {}", png.display());
    if !eval.skipped.is_empty() {
        print!(
            "skipped {} files:\n{}",
            eval.skipped.len(),
            skipped_report(&eval.skipped)
        );
    }
    Ok(())
}

fn show_batch(args: DataArgs, n: usize) -> Result<()> {
    let dir = args.run_dir();
    let path = run::show_batch(&args.config(), &dir, n)?;
    println!("augmented training images: {}", path.display());
    Ok(())
}

fn lr_find(args: DataArgs, device: &Device) -> Result<()> {
    let dir = args.run_dir();
    let found = run::lr_find(&args.config(), &dir, device)?;
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
    println!("plot: {}", dir.join("lr_find.png").display());
    Ok(())
}

fn interpret_cmd(run: &std::path::Path, opts: &InterpretOptions, device: &Device) -> Result<()> {
    if run.is_file() {
        bail!(
            "{}: interpret needs a run folder (the run's split and its outputs live there); an exported file works with predict and evaluate",
            run.display()
        );
    }
    let r = interpret_run(run, opts, device)?;
    println!("{} {:?} images, accuracy {:.4}", r.n, r.split, r.accuracy);
    println!(
        "{:<20} {:>9} {:>7} {:>7} {:>8}",
        "class", "precision", "recall", "f1", "support"
    );
    for c in &r.classes {
        println!(
            "{:<20} {:>9.3} {:>7.3} {:>7.3} {:>8}",
            c.class, c.precision, c.recall, c.f1, c.support
        );
    }
    println!(
        "most confused (actual -> predicted, count >= {}):",
        opts.min
    );
    for c in r.most_confused.iter().take(10) {
        println!("  {} -> {}: {}", c.actual, c.predicted, c.count);
    }
    for f in [
        "interpret.json",
        "top_losses.png",
        "confusion.png",
        "report.html",
    ] {
        println!("wrote {}", run.join(f).display());
    }
    Ok(())
}

fn clean(args: CleanArgs, device: impl FnOnce() -> Result<Device>) -> Result<()> {
    if let Some(dir) = &args.undo {
        let undone = Journal::new(dir)?.undo_all()?;
        for e in &undone {
            println!("moved back: {} -> {}", e.from, e.to);
        }
        println!("{} files moved back", undone.len());
        return Ok(());
    }
    let run = args.run.clone().context("a run folder is needed")?;
    let device = device()?;
    let config = run::load_config(&run)?;
    let data = run_dataset(&config, args.dir.as_deref())?;
    if args.serve {
        return serve(&run, &data, &args, &device);
    }
    let (interp, how) = match args.folds {
        Some(k) => {
            eprintln!(
                "out-of-fold: training {k} models, each on {} of {k} folds of the training images",
                k - 1
            );
            let mut progress = |f: usize| -> Vec<Box<dyn Callback>> {
                eprintln!("fold {}/{k}", f + 1);
                vec![Box::new(Progress::to_stderr())]
            };
            (
                out_of_fold(&config, &data, k, &device, &mut progress)?,
                format!("out-of-fold, {k} folds"),
            )
        }
        None => {
            let predictor = Predictor::load(&run, &device)?;
            let interp = interpret_folder(&predictor, &data, Split::Train, config.bs)?;
            (interp, "in-sample: the run's model".to_string())
        }
    };
    let flagged = flags(&interp, args.confident_wrong);
    let csv = fastvision::clean::confusing::to_csv(&flagged)?;
    let out = run.join("confusing.csv");
    fastvision::io::write_atomic(&out, csv.as_bytes())?;
    print!("{csv}");
    eprintln!(
        "{} of {} training images predicted wrongly with probability > {} ({how}); list in {}",
        flagged.len(),
        interp.images.len(),
        args.confident_wrong,
        out.display()
    );
    if args.apply {
        let journal = Journal::new(&data.root)?;
        for f in &flagged {
            let rel = journal.relative(&f.path).with_context(|| {
                format!("{} is not inside {}", f.path.display(), data.root.display())
            })?;
            journal.quarantine(&rel)?;
        }
        eprintln!(
            "moved {} files into {} (journal: {}); undo with: fastvision clean --undo {}",
            flagged.len(),
            data.root.join(fastvision::clean::QUARANTINE_DIR).display(),
            journal.path().display(),
            data.root.display()
        );
    }
    Ok(())
}

fn serve(
    run: &std::path::Path,
    data: &fastvision::data::ImageFolder,
    args: &CleanArgs,
    device: &Device,
) -> Result<()> {
    let interp = interpret_folder(&Predictor::load(run, device)?, data, Split::All, 64)?;
    let train: std::collections::HashSet<&std::path::Path> =
        data.train.iter().map(|i| i.path.as_path()).collect();
    let journal = Journal::new(&data.root)?;
    let split_of = |p: &std::path::Path| if train.contains(p) { "train" } else { "valid" };
    let items = fastvision::clean::server::review_items(&journal, &interp, &split_of);
    let host = args.host.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    if !host.is_loopback() {
        eprintln!(
            "warning: serving on {host}: anyone who can reach it and has the token can move your files"
        );
    }
    let server = ReviewServer::start(&data.root, data.vocab.clone(), items, host, args.port)?;
    println!("review page: {}", server.url());
    println!("journal: {} (Ctrl-C to stop)", journal.path().display());
    server.wait();
    Ok(())
}
