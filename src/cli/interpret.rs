//! `fastvision interpret`: a run's model on its data; the work is in `fastvision::interpret`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use fastvision::burn::tensor::Device;
use fastvision::interpret::report::{CONFUSION_PLOT, INTERPRET_FILE, TOP_LOSSES_PLOT};
use fastvision::interpret::{InterpretOptions, Split, interpret_run};

use super::parse::{at_least, named};

/// `fastvision interpret`'s flags.
#[derive(clap::Args)]
pub struct InterpretArgs {
    /// Run folder.
    run: PathBuf,
    /// Dataset folder [default: the one the run trained on].
    dir: Option<PathBuf>,
    /// Which images: valid, train or all.
    #[arg(long, default_value = "valid", value_parser = named::<Split>(&["valid", "train", "all"]))]
    split: Split,
    /// Images in top_losses.png.
    #[arg(short = 'k', long, default_value_t = 16, value_parser = at_least(1))]
    top: usize,
    /// Plot the confusion matrix with rows normalised to 1.
    #[arg(long)]
    normalize: bool,
    /// Smallest count of a most-confused pair.
    #[arg(long, default_value_t = 2, value_parser = at_least(1))]
    min: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = at_least(1))]
    bs: usize,
}

/// `fastvision interpret`.
pub fn interpret(args: InterpretArgs, device: &Device) -> Result<()> {
    let run = &args.run;
    if run.is_file() {
        bail!(
            "{}: interpret needs a run folder (the run's split and its outputs live there); an exported file works with predict and evaluate",
            run.display()
        );
    }
    let opts = InterpretOptions {
        dir: args.dir,
        split: args.split,
        k: args.top,
        normalize: args.normalize,
        min: args.min,
        bs: args.bs,
    };
    let r = interpret_run(run, &opts, device)?;
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
        INTERPRET_FILE,
        TOP_LOSSES_PLOT,
        CONFUSION_PLOT,
        fastvision::run_dir::REPORT,
    ] {
        println!("wrote {}", run.join(f).display());
    }
    Ok(())
}
