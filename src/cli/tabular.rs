//! `fastvision tabular …`: argument parsing for the tabular learner; the work is in
//! `fastvision::tabular`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::messages::resumable;
use super::parse::{at_least, open_fraction, probability};
use fastvision::tabular::run::{self as tab, TabularConfig, ValidSpec};
use fastvision::tabular::{embeddings, importance, predict};

/// The command that continues a kept tabular run (its folder follows).
const RESUME: &str = "fastvision tabular train --resume";

/// The tabular subcommands.
/// (Parsed once; the size difference between variants does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum TabularCommand {
    /// Train a tabular model on a CSV file (classification or regression).
    Train(TrainArgs),
    /// Predict rows of a CSV file; writes the input columns plus the predictions as CSV.
    Predict {
        /// Tabular run folder.
        run: PathBuf,
        /// CSV file of rows to predict (the target column may be absent).
        csv: PathBuf,
        /// Output CSV file [default: standard output]; never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Field delimiter.
        #[arg(long, default_value_t = ',')]
        delimiter: char,
    },
    /// Evaluate a tabular run on labelled rows of a CSV file.
    Evaluate {
        /// Tabular run folder.
        run: PathBuf,
        /// CSV file with the target column.
        csv: PathBuf,
        /// Field delimiter.
        #[arg(long, default_value_t = ',')]
        delimiter: char,
    },
    /// Write each categorical column's learned embedding as CSV, with a PCA plot.
    Embeddings {
        /// Tabular run folder.
        run: PathBuf,
        /// Output folder [default: RUN/embeddings].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Permutation feature importance on the run's validation rows (or on a labelled CSV).
    Importance {
        /// Tabular run folder.
        run: PathBuf,
        /// Labelled CSV to measure on [default: the run's validation rows].
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Shuffles per column.
        #[arg(long, default_value_t = 3, value_parser = at_least(1))]
        repeats: usize,
    },
}

/// `tabular train` arguments (fastai's `tabular_learner` defaults).
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The training CSV file (with a header row).
    csv: Option<PathBuf>,
    /// The column to predict.
    #[arg(long)]
    target: Option<String>,
    /// Columns to treat as categorical (the rest are split as fastai's `cont_cat_split`).
    #[arg(long, value_delimiter = ',')]
    cat: Vec<String>,
    /// Columns to treat as continuous.
    #[arg(long, value_delimiter = ',')]
    cont: Vec<String>,
    /// A separate validation CSV.
    #[arg(long, conflicts_with_all = ["valid_col", "valid_pct"])]
    valid: Option<PathBuf>,
    /// A True/False column marking validation rows.
    #[arg(long, conflicts_with = "valid_pct")]
    valid_col: Option<String>,
    /// Share of rows for validation, chosen with --seed (strictly between 0 and 1).
    #[arg(long, default_value_t = 0.2, value_parser = open_fraction)]
    valid_pct: f64,
    /// Seed of the split, initialisation and shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Epochs of one-cycle training.
    #[arg(long, default_value_t = 5, value_parser = at_least(1))]
    epochs: usize,
    /// Peak learning rate, or `auto` for the LR finder's suggestion.
    #[arg(long, default_value = "1e-2")]
    lr: String,
    /// Batch size, at least 2.
    #[arg(long, default_value_t = 64, value_parser = at_least(2))]
    bs: usize,
    /// Hidden layer widths, each at least 1.
    #[arg(long, value_delimiter = ',', default_value = "200,100", value_parser = at_least(1))]
    layers: Vec<usize>,
    /// Dropout after each hidden layer, in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    ps: f64,
    /// Dropout on the embeddings, in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    embed_p: f64,
    /// Treat the target as a number.
    #[arg(long, conflicts_with = "classification")]
    regression: bool,
    /// Treat the target as classes.
    #[arg(long)]
    classification: bool,
    /// Regression output range LO,HI [default: 1.2× the training range].
    #[arg(long, value_delimiter = ',', num_args = 2)]
    y_range: Vec<f64>,
    /// Field delimiter.
    #[arg(long, default_value_t = ',')]
    delimiter: char,
    /// Start embeddings from an earlier tabular run's, for shared columns and levels.
    #[arg(long)]
    init_embeddings: Option<PathBuf>,
    /// Run folder name under ./runs [default: a timestamp].
    #[arg(long)]
    name: Option<String>,
    /// Continue an interrupted tabular run folder.
    #[arg(long, conflicts_with = "csv")]
    resume: Option<PathBuf>,
}

/// Runs a tabular subcommand.
pub fn run(cmd: TabularCommand, device: &fastvision::burn::tensor::Device) -> Result<()> {
    match cmd {
        TabularCommand::Train(args) => train(args, device),
        TabularCommand::Predict {
            run,
            csv,
            out,
            delimiter,
        } => {
            let delim = ascii(delimiter)?;
            let summary = match &out {
                Some(path) => {
                    // Written only once every row is predicted, and never over an existing file.
                    let mut bytes = Vec::new();
                    let s = predict::predict_csv(&run, &csv, delim, &mut bytes, device)?;
                    fastvision::io::write_new(path, &bytes)?;
                    s
                }
                None => predict::predict_csv(&run, &csv, delim, &mut std::io::stdout(), device)?,
            };
            eprintln!("predicted {} rows", summary.n);
            for line in &summary.failed {
                eprintln!(
                    "  {}:{line}: the model gave no finite output for this row; its prediction is left empty",
                    csv.display()
                );
            }
            for (col, n) in &summary.unseen {
                eprintln!("  {col}: {n} values unseen in training, read as #na#");
            }
            if let Some(p) = out {
                eprintln!("wrote {}", p.display());
            }
            Ok(())
        }
        TabularCommand::Evaluate {
            run,
            csv,
            delimiter,
        } => {
            let e = predict::evaluate_csv(&run, &csv, ascii(delimiter)?, device)?;
            for (col, n) in &e.unseen {
                println!("{col}: {n} values unseen in training, read as #na#");
            }
            match (e.accuracy, e.rmse) {
                (Some(a), _) => println!("{} rows: accuracy {a:.4}, loss {:.4}", e.n, e.loss),
                (_, Some(r)) => println!("{} rows: rmse {r:.4}, mse {:.4}", e.n, e.loss),
                _ => {}
            }
            Ok(())
        }
        TabularCommand::Embeddings { run, out } => {
            let out = out.unwrap_or_else(|| run.join("embeddings"));
            for f in embeddings::export(&run, &out, device)? {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        TabularCommand::Importance { run, csv, repeats } => {
            let (model, bundle) = tab::load_bundle(&run, device)?;
            let config: TabularConfig =
                fastvision::io::read_json(&run.join(fastvision::run_dir::SETTINGS))?;
            let table = match csv {
                Some(path) => {
                    let t = fastvision::tabular::Table::read(&path, ascii(config.delimiter)?)?;
                    let c = t.column(bundle.processor.target.name())?;
                    let keep: Vec<usize> = (0..t.len())
                        .filter(|&r| t.columns[c][r].is_some())
                        .collect();
                    t.select(&keep)
                }
                None => tab::prepare(&config)?.valid,
            };
            let (base, imps) = importance::permutation_importance(
                &model,
                &bundle.processor,
                &table,
                repeats,
                config.seed,
                device,
            )?;
            let regression = bundle.processor.target.is_regression();
            let what = if regression { "rmse" } else { "accuracy" };
            println!("{} rows, {what} {:.4}", table.len(), base.abs());
            println!("{:<28} {:>11} {:>8}", "column", "importance", "std");
            for i in &imps {
                println!("{:<28} {:>11.4} {:>8.4}", i.column, i.importance, i.std);
            }
            importance::write(&run, regression, &imps)?;
            println!("wrote {}", run.join("importance.png").display());
            Ok(())
        }
    }
}

fn ascii(c: char) -> Result<u8> {
    u8::try_from(c)
        .ok()
        .filter(u8::is_ascii)
        .context("--delimiter must be one ASCII character")
}

fn train(args: TrainArgs, device: &fastvision::burn::tensor::Device) -> Result<()> {
    let summary = if let Some(dir) = args.resume {
        super::progress::announce_resume(&dir)?;
        tab::resume(&dir, device, super::progress::on_stdout())
            .map_err(|e| resumable(e, RESUME, &dir))?
    } else {
        let (Some(csv), Some(target)) = (args.csv, args.target) else {
            bail!("tabular train needs a CSV file and --target COLUMN");
        };
        let auto = args.lr.eq_ignore_ascii_case("auto");
        let lr = if auto {
            1e-2
        } else {
            args.lr
                .parse()
                .with_context(|| format!("--lr {:?}: expected a number or auto", args.lr))?
        };
        let valid = match (args.valid, args.valid_col) {
            (Some(f), _) => ValidSpec::File(f),
            (_, Some(c)) => ValidSpec::Column(c),
            _ => ValidSpec::Pct(args.valid_pct),
        };
        let config = TabularConfig {
            delimiter: args.delimiter,
            cat: args.cat,
            cont: args.cont,
            regression: match (args.regression, args.classification) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            y_range: (args.y_range.len() == 2).then(|| (args.y_range[0], args.y_range[1])),
            valid,
            seed: args.seed,
            epochs: args.epochs,
            lr,
            lr_auto: auto,
            bs: args.bs,
            layers: args.layers,
            ps: args.ps,
            embed_p: args.embed_p,
            init_embeddings: args.init_embeddings,
            ..TabularConfig::new(csv, target)
        };
        let dir = fastvision::run_dir::run_path(args.name.as_deref())?;
        println!("data: {}", config.csv.display());
        tab::train(&config, &dir, device, super::progress::on_stdout())
            .map_err(|e| resumable(e, RESUME, &dir))?
    };
    println!(
        "{} in {:.1}s ({} train rows, {} valid rows)",
        summary.final_line(),
        summary.seconds,
        summary.n_train,
        summary.n_valid
    );
    println!("run folder: {}", summary.dir.display());
    Ok(())
}
