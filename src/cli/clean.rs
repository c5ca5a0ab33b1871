//! `fastvision clean`: confusing training images listed, quarantined (journaled, undoable) or
//! reviewed on a local page; the work is in `fastvision::clean`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fastvision::burn::tensor::Device;
use fastvision::clean::{Journal, QUARANTINE_DIR, ReviewServer, flags, out_of_fold};
use fastvision::data::ImageFolder;
use fastvision::infer::Predictor;
use fastvision::interpret::{Split, interpret_folder, run_dataset};
use fastvision::learner::Listen;

use super::progress::Progress;

/// `fastvision clean`'s flags.
#[derive(clap::Args)]
pub struct CleanArgs {
    /// Run folder whose model judges the images.
    #[arg(required_unless_present = "undo")]
    run: Option<PathBuf>,
    /// Dataset folder [default: the one the run trained on].
    dir: Option<PathBuf>,
    /// Flag training images predicted wrongly with a probability above this.
    #[arg(long, default_value_t = 0.9, value_parser = confidence)]
    confident_wrong: f32,
    /// Judge each image out-of-fold: train K models on K−1 folds each (K times the training).
    #[arg(long, value_name = "K", value_parser = super::parse::at_least(2))]
    folds: Option<usize>,
    /// Move the flagged files into DIR/.fastvision-quarantine/ (journaled, undoable).
    #[arg(long, conflicts_with = "serve")]
    apply: bool,
    /// Serve the review page instead of listing.
    #[arg(long)]
    serve: bool,
    /// Address to serve on; anything but 127.0.0.1 exposes your files to the network.
    #[arg(long, requires = "serve")]
    host: Option<IpAddr>,
    /// Port to serve on [default: any free port].
    #[arg(long, default_value_t = 0, requires = "serve")]
    port: u16,
    /// Move back every file the journal of DIR records as moved, newest first.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["run", "apply", "serve"])]
    undo: Option<PathBuf>,
}

/// A probability threshold in [0, 1).
fn confidence(s: &str) -> Result<f32, String> {
    super::parse::probability(s).map(|p| p as f32)
}

/// `fastvision clean`; `device` is found only when a model has to run (not for `--undo`).
pub fn clean(args: CleanArgs, device: impl FnOnce() -> Result<Device>) -> Result<()> {
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
    let config = fastvision::vision::load_config(&run)?;
    let data = run_dataset(&config, args.dir.as_deref())?;
    if args.serve {
        return serve(&run, &data, &args, &device);
    }
    let (interp, how) = match args.folds {
        Some(k) => {
            eprintln!(
                "out-of-fold: training {k} models, each on {} of {k} folds of the training images",
                k.saturating_sub(1)
            );
            let progress = Listen::new(Progress::to_stderr());
            (
                out_of_fold(&config, &data, k, &device, progress)?,
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
    let out = run.join(fastvision::clean::confusing::CONFUSING_FILE);
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
            data.root.join(QUARANTINE_DIR).display(),
            journal.path().display(),
            data.root.display()
        );
    }
    Ok(())
}

/// `clean --serve`: the review page over every image of the dataset.
fn serve(run: &Path, data: &ImageFolder, args: &CleanArgs, device: &Device) -> Result<()> {
    let interp = interpret_folder(&Predictor::load(run, device)?, data, Split::All, 64)?;
    let train: HashSet<&Path> = data.train.iter().map(|i| i.path.as_path()).collect();
    let journal = Journal::new(&data.root)?;
    let split_of = |p: &Path| if train.contains(p) { "train" } else { "valid" };
    let items = fastvision::clean::server::review_items(&journal, &interp, &split_of);
    let host = args.host.unwrap_or(IpAddr::from([127, 0, 0, 1]));
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
