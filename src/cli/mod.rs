//! The command line: every subcommand's arguments and printing, one file per command or group;
//! here the top-level `Cli`, the dispatch and the exit code. The library does the work.

mod allocator;
mod bench;
mod clean;
mod ensemble;
mod gan;
mod infer;
mod interpret;
mod launch;
mod messages;
mod parse;
mod playbook;
mod progress;
mod tabular;
mod train;
mod weights;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use fastvision::backend::{DeviceChoice, select};
use fastvision::burn::tensor::Device;
use fastvision::learner::Precision;

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
    device: Option<DeviceChoice>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Train a classifier on a folder of class folders (default: the bundled demo dataset).
    Train(train::TrainArgs),
    /// LR range test: suggestions printed, plot in the run folder.
    LrFind(train::DataArgs),
    /// Write a PNG grid of augmented training images, to see what the model will see.
    ShowBatch(train::ShowBatchArgs),
    /// Predict the top classes of images with a trained run.
    Predict(infer::PredictArgs),
    /// Evaluate a trained run on labelled images (class folders, or a dataset root with valid/).
    Evaluate(infer::EvaluateArgs),
    /// Interpret a run: per-image losses, top losses, confusion matrix, per-class report.
    Interpret(interpret::InterpretArgs),
    /// Find training images that are probably mislabelled, quarantine them, or review a dataset
    /// on a local web page; `clean --undo DIR` moves every file back.
    Clean(clean::CleanArgs),
    /// Write a run's model as one self-contained file (weights + configuration) to deploy;
    /// predict and evaluate accept it in place of a run folder.
    Export(infer::ExportArgs),
    /// Ensembles of diverse models: train members, report, combination weights.
    #[command(subcommand)]
    Ensemble(ensemble::EnsembleCommand),
    /// Wasserstein GANs that learn each class and write synthetic training images.
    #[command(subcommand)]
    Gan(gan::GanCommand),
    /// Structured data: train, predict, evaluate and inspect a tabular model from CSV files.
    #[command(subcommand)]
    Tabular(tabular::TabularCommand),
    /// The whole playbook within a time budget: plan, train, confusing images, TTA, ensemble,
    /// and a table of what each step bought.
    Playbook(playbook::PlaybookArgs),
    /// Measure loader, training and inference throughput and peak memory.
    Bench(bench::BenchArgs),
    /// Named pretrained checkpoints: list them, or download them into the cache.
    #[command(subcommand)]
    Weights(weights::WeightsCommand),
    /// Data-parallel training over MPI: start a training command as several ranks, on this
    /// machine or on several (`launch --nproc 2 -- train DIR`).
    Launch(launch::LaunchArgs),
}

/// Parses the command line, runs the command, and turns any error into one line on stderr (the
/// library's settings named as flags) and exit code 1 (a bad flag too; `--help` and `--version`
/// exit 0).
pub fn main() -> ExitCode {
    ExitCode::from(main_with(std::env::args_os()))
}

/// [`main`] for the arguments `args` (the program's name first), returning the exit code: the
/// door `python -m fastvision` opens onto the same command line.
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>) -> u8 {
    allocator::keep_freed_memory();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match launch::join_group().and_then(|()| run(cli)) {
        Ok(()) => {
            fastvision::distributed::leave();
            0
        }
        Err(e) => {
            // A rank's error is said by the rank (the others' output goes nowhere); its exit
            // without leaving the group makes the launcher stop every rank.
            launch::restore_stderr();
            let rank = match fastvision::distributed::size() {
                1 => String::new(),
                n => format!("rank {} of {n}: ", fastvision::distributed::rank()),
            };
            eprintln!("error: {rank}{}", messages::to_cli(&messages::one_line(&e)));
            1
        }
    }
}

/// Whether `command` trains data parallel when started as one of several ranks: the training
/// commands and `bench` (the others would each do their work once per rank).
fn data_parallel(command: &Command) -> bool {
    matches!(
        command,
        Command::Train(_)
            | Command::Bench(_)
            | Command::Tabular(tabular::TabularCommand::Train(_))
            | Command::Ensemble(ensemble::EnsembleCommand::Train { .. })
    )
}

fn run(cli: Cli) -> Result<()> {
    if fastvision::distributed::size() > 1 && !data_parallel(&cli.command) {
        anyhow::bail!(
            "this command does not run data parallel: launch `train`, `tabular train`, `ensemble \
             train` or `bench`"
        );
    }
    fastvision::weights::hub::set_offline(cli.offline);
    progress::report_downloads();
    let choice = match cli.device {
        Some(c) => c,
        None => DeviceChoice::from_env()?,
    };
    // Found only by the commands that compute, and named on their first line (on stderr, so
    // stdout stays the command's data) with the precision the command's convolutions take there.
    let device_in = |precision: Option<Precision>| -> Result<Device> {
        let s = select(choice)?;
        if fastvision::distributed::sync_batchnorm() && s.gpu {
            anyhow::bail!("--sync-bn synchronises our CPU BatchNorm only: train with --device cpu");
        }
        match precision {
            Some(p) => eprintln!("device: {} · {}", s.description, p.explain(&s.device)),
            None => eprintln!("device: {}", s.description),
        }
        Ok(s.device)
    };
    let device = || device_in(None);
    // Interpretation runs in the device's `auto` precision.
    let auto = Some(Precision::Auto);
    match cli.command {
        Command::Train(args) => {
            let precision = Some(args.precision);
            train::train(args, &device_in(precision)?)
        }
        Command::LrFind(args) => train::lr_find(args, &device()?),
        Command::ShowBatch(args) => train::show_batch(args),
        Command::Predict(args) => {
            let precision = Some(args.how.precision);
            infer::predict(args, &device_in(precision)?)
        }
        Command::Evaluate(args) => {
            let precision = Some(args.how.precision);
            infer::evaluate(args, &device_in(precision)?)
        }
        Command::Interpret(args) => interpret::interpret(args, &device_in(auto)?),
        Command::Clean(args) => clean::clean(args, device),
        Command::Export(args) => infer::export(args, &device()?),
        Command::Ensemble(cmd) => ensemble::run(cmd, &device()?),
        Command::Gan(cmd) => gan::run(cmd, &device()?),
        Command::Tabular(cmd) => tabular::run(cmd, &device()?),
        Command::Playbook(args) => {
            let precision = Some(args.precision);
            playbook::playbook(args, &device_in(precision)?)
        }
        Command::Bench(args) => {
            let precision = Some(args.precision);
            bench::bench(args, &device_in(precision)?)
        }
        Command::Weights(cmd) => weights::run(cmd),
        Command::Launch(args) => launch::launch(args),
    }
}
