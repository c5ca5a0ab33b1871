//! `fastvision predict`, `evaluate` and `export`: a trained run (or an exported file, or an
//! ensemble folder) applied to images; the work is in `fastvision::infer`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use fastvision::burn::tensor::Device;
use fastvision::data::{ImageFolder, SplitConfig, skipped_report};
use fastvision::infer::{Inference, Predictor, Tta, evaluate as evaluate_items};
use fastvision::interpret::{Split, items_in_vocab};
use fastvision::learner::Precision;
use fastvision::report::plot::plot_confusion;

/// How `predict` and `evaluate` turn images into predictions.
#[derive(clap::Args)]
pub struct InferArgs {
    /// Test-time augmentation: the plain prediction blended with 4 augmented passes (fastai's tta).
    #[arg(long)]
    tta: bool,
    /// With --tta: the maximum over the passes instead of their mean.
    #[arg(long, requires = "tta")]
    tta_max: bool,
    /// With --tta: number of augmented passes.
    #[arg(long, default_value_t = 4, requires = "tta", value_parser = super::parse::at_least(1))]
    tta_n: usize,
    /// 10-crop: four corners and the centre, and their mirrors, averaged.
    #[arg(long, conflicts_with = "tta")]
    ten_crop: bool,
    /// Float precision of the convolutions (and, on the CPU in bf16, the linear layers): auto (bf16 on AMX tiles or AMD's AVX-512 BF16, else fp32),
    /// fp32, bf16 (a CPU with AVX-512 BF16 or AMX), fp16 (a GPU).
    #[arg(long, default_value = "auto", value_parser = super::parse::named::<Precision>(&["auto", "fp32", "fp16", "bf16"]))]
    pub precision: Precision,
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

/// `fastvision predict`'s flags.
#[derive(clap::Args)]
pub struct PredictArgs {
    /// Run folder (holds model.safetensors and config.json), or a file made by `export`.
    run: PathBuf,
    /// Image files.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(short = 'k', long, default_value_t = 3, value_parser = super::parse::at_least(1))]
    top: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// How images become predictions (TTA, 10-crop, precision).
    #[command(flatten)]
    pub how: InferArgs,
}

/// `fastvision evaluate`'s flags.
#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// Run folder, or a file made by `export`.
    run: PathBuf,
    /// Folder of class folders, or a dataset root whose valid/ is used.
    dir: PathBuf,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = super::parse::at_least(1))]
    bs: usize,
    /// How images become predictions (TTA, 10-crop, precision).
    #[command(flatten)]
    pub how: InferArgs,
}

/// The formats `export` writes.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// fastvision's own single safetensors file.
    Safetensors,
    /// ONNX (opset 13, dynamic batch).
    Onnx,
}

/// `fastvision export`'s flags.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Run folder.
    run: PathBuf,
    /// The file to write (never overwritten) [default: model.safetensors, or model.onnx].
    #[arg(long)]
    out: Option<PathBuf>,
    /// `safetensors` (fastvision's own single file) or `onnx` (opset 13, dynamic batch).
    #[arg(long, value_enum, default_value = "safetensors")]
    format: ExportFormat,
}

/// Says, on stderr, when `--tta` has no random augmentation to replay (the model trained
/// without any): every pass is the same view of an image.
fn tta_note(predictor: &Predictor, how: Inference) {
    if let Some(note) = how.note(predictor.tta_augments()) {
        eprintln!("note: {note}");
    }
}

/// `fastvision predict`.
pub fn predict(args: PredictArgs, device: &Device) -> Result<()> {
    let mut predictor = Predictor::load(&args.run, device)?;
    predictor.set_precision(args.how.precision)?;
    tta_note(&predictor, args.how.inference());
    let preds = predictor.predict(&args.images, args.top, args.how.inference())?;
    if args.json {
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

/// `fastvision evaluate`.
pub fn evaluate(args: EvaluateArgs, device: &Device) -> Result<()> {
    let how = args.how.inference();
    let mut predictor = Predictor::load(&args.run, device)?;
    predictor.set_precision(args.how.precision)?;
    tta_note(&predictor, how);
    let dir = if args.dir.join("valid").is_dir() {
        args.dir.join("valid")
    } else {
        args.dir.clone()
    };
    let split = SplitConfig {
        valid_pct: 0.0,
        seed: 0,
    };
    let data = ImageFolder::from_folder(&dir, split)
        .with_context(|| format!("reading {}", dir.display()))?;
    let vocab = &predictor.config.vocab;
    let (items, skipped) = items_in_vocab(&data, Split::Train, vocab)?;
    let eval = evaluate_items(&predictor, items, skipped, args.bs, how);
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
    // Beside an exported model file, its own name (a free one: a file there is never
    // replaced); in a run folder, its confusion.png.
    let png = if args.run.is_file() {
        let stem = args
            .run
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (0..)
            .map(|i| match i {
                0 => args.run.with_file_name(format!("{stem}.confusion.png")),
                i => args.run.with_file_name(format!("{stem}.confusion-{i}.png")),
            })
            .find(|p| !p.exists())
            .unwrap_or_default()
    } else {
        args.run.join(fastvision::interpret::report::CONFUSION_PLOT)
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

/// `fastvision export`.
pub fn export(args: ExportArgs, device: &Device) -> Result<()> {
    let out = match args.format {
        ExportFormat::Safetensors => {
            let out = args.out.unwrap_or_else(|| "model.safetensors".into());
            fastvision::infer::export_bundle(&args.run, &out, device)?;
            out
        }
        ExportFormat::Onnx => {
            let out = args.out.unwrap_or_else(|| "model.onnx".into());
            fastvision::infer::export_onnx(&args.run, &out, device)?;
            out
        }
    };
    println!("exported {} to {}", args.run.display(), out.display());
    Ok(())
}
