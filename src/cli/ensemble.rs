//! `fastvision ensemble …`: argument parsing for ensembles; the work is in `fastvision::ensemble`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use fastvision::burn::tensor::Device;
use fastvision::ensemble::train::{self as ens_train, Variation};
use fastvision::ensemble::{Combination, EnsembleFile, report, select, weights};

use super::progress;

/// The ensemble subcommands.
/// (Parsed once; the size difference between variants does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum EnsembleCommand {
    /// Train the members of an ensemble, each an ordinary run under RUN/members/.
    Train {
        /// Architectures, comma-separated, each optionally @SIZE (inception_v3 is upscaled to
        /// 75 px when the run's size is smaller).
        #[arg(long, value_delimiter = ',', required_unless_present = "resume")]
        members: Vec<String>,
        /// Seeds per architecture.
        #[arg(long, default_value_t = 1, value_parser = super::parse::at_least(1))]
        seeds: usize,
        /// Train each member on a bootstrap sample of the training split.
        #[arg(long, conflicts_with = "folds")]
        bagging: bool,
        /// Train member i on every fold but i mod K of the training split.
        #[arg(long, value_parser = super::parse::at_least(2))]
        folds: Option<usize>,
        /// How the members combine.
        #[command(flatten)]
        combine: CombineArgs,
        /// Every `train` flag: data, epochs, lr, schedule, size, …
        #[command(flatten)]
        train: super::train::TrainArgs,
    },
    /// Make an ensemble of runs already trained (same data and validation split).
    From {
        /// The runs.
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// Ensemble folder name under ./runs.
        #[arg(long)]
        name: String,
        /// How the members combine.
        #[command(flatten)]
        combine: CombineArgs,
    },
    /// Each member vs the ensemble, error correlations, greedy selection (and report.html).
    Report {
        /// Ensemble folder (or a run's snapshots/ folder).
        run: PathBuf,
    },
    /// Fit combination weights on a seeded half of the validation split (never scored after).
    FitWeights {
        /// Ensemble folder.
        run: PathBuf,
        /// Seed of the halves.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Set the combination rule: mean or geometric (fitted weights come from fit-weights).
    Rule {
        /// Ensemble folder.
        run: PathBuf,
        /// mean | geometric
        rule: String,
    },
}

/// How `ensemble train` and `ensemble from` combine their members.
#[derive(clap::Args)]
pub struct CombineArgs {
    /// auto: greedy selection with replacement (Caruana) fitted on half of the validation
    /// images, kept when it beats the plain mean on the other half (never below the best member
    /// there); or always mean, geometric, weighted (fitted weights) or selected.
    #[arg(long, value_enum, default_value = "auto")]
    combine: CombineRule,
    /// Seed of the validation halves (auto, weighted, selected).
    #[arg(long, default_value_t = 0)]
    combine_seed: u64,
}

/// The `--combine` rules.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CombineRule {
    Auto,
    Mean,
    Geometric,
    Weighted,
    Selected,
}

/// Sets how the members of the ensemble in `dir` combine, and prints what was measured.
fn combine(dir: &std::path::Path, how: &CombineArgs, device: &Device) -> Result<()> {
    let seed = how.combine_seed;
    match how.combine {
        CombineRule::Mean => {
            EnsembleFile::set_rule(dir, Combination::Mean)?;
        }
        CombineRule::Geometric => {
            EnsembleFile::set_rule(dir, Combination::Geometric)?;
        }
        CombineRule::Weighted => {
            let f = weights::fit_weights(dir, seed, device)?;
            println!("weights fitted on {} validation images", f.n_fit);
        }
        CombineRule::Auto | CombineRule::Selected => {
            let s = select::select(dir, seed, how.combine == CombineRule::Selected, device)?;
            println!(
                "selection fitted on {} validation images; on the other {}:",
                s.n_fit, s.n_held
            );
            for h in &s.held_out {
                println!(
                    "  {:<40} accuracy {:.4}  loss {:.4}",
                    h.name, h.accuracy, h.loss
                );
            }
            println!("combination: {}{}", s.chosen_name, s.chosen.weights_note());
        }
    }
    Ok(())
}

/// Runs an ensemble subcommand.
pub fn run(cmd: EnsembleCommand, device: &fastvision::burn::tensor::Device) -> Result<()> {
    match cmd {
        EnsembleCommand::Train {
            members,
            seeds,
            bagging,
            folds,
            combine: how,
            train,
        } => {
            let t0 = std::time::Instant::now();
            let (planned, dir) = match &train.resume {
                Some(dir) => (None, dir.clone()),
                None => {
                    let (base, dir) = super::train::train_config(&train)?;
                    base.validate()?;
                    let archs = members
                        .iter()
                        .map(|m| ens_train::parse_member(m))
                        .collect::<fastvision::Result<Vec<_>>>()?;
                    let variation = match (bagging, folds) {
                        (true, _) => Variation::Bagging,
                        (_, Some(k)) => Variation::Folds(k),
                        _ => Variation::None,
                    };
                    let planned = ens_train::plan(&base, &archs, seeds, variation)?;
                    for m in &planned {
                        if let Some(s) = m.config.size
                            && base.size.is_none_or(|b| b < s)
                        {
                            println!(
                                "{}: trained at {s} px (its smallest input)",
                                m.dir.display()
                            );
                        }
                    }
                    (Some(planned), dir)
                }
            };
            let file =
                ens_train::train(planned, &dir, device, progress::on_stdout()).map_err(|e| {
                    super::messages::resumable(e, "fastvision ensemble train --resume", &dir)
                })?;
            // The other ranks trained the members with rank 0: the ensemble is its to finish.
            if !fastvision::distributed::is_main() {
                return Ok(());
            }
            println!(
                "ensemble of {} members trained in {:.1}s",
                file.members.len(),
                t0.elapsed().as_secs_f64()
            );
            combine(&dir, &how, device)?;
            let r = report::report(&dir, device)?;
            print!("{}", report::to_text(&r));
            report::write(&dir, &r)?;
            println!("run folder: {}", dir.display());
            Ok(())
        }
        EnsembleCommand::From {
            runs,
            name,
            combine: how,
        } => {
            let dir = fastvision::run_dir::run_path(Some(&name))?;
            let file = fastvision::ensemble::folder::create(&dir, &runs, device)?;
            println!("ensemble of {} runs: {}", file.members.len(), dir.display());
            combine(&dir, &how, device)?;
            let r = report::report(&dir, device)?;
            print!("{}", report::to_text(&r));
            report::write(&dir, &r)?;
            Ok(())
        }
        EnsembleCommand::Report { run } => {
            let r = report::report(&run, device)?;
            print!("{}", report::to_text(&r));
            for f in report::write(&run, &r)? {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        EnsembleCommand::FitWeights { run, seed } => {
            let f = weights::fit_weights(&run, seed, device)?;
            println!(
                "weights fitted on {} validation images: {}",
                f.n_fit,
                f.weights
                    .iter()
                    .map(|w| format!("{w:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for s in &f.held_out {
                println!(
                    "on the other half: {:<9} accuracy {:.4}, loss {:.4}",
                    s.name, s.accuracy, s.loss
                );
            }
            println!(
                "those {} images are left out of every later score of this ensemble",
                f.n_fit
            );
            Ok(())
        }
        EnsembleCommand::Rule { run, rule } => {
            let file = EnsembleFile::set_rule(&run, rule.parse()?)?;
            println!("{}: combination {}", run.display(), file.combination.name());
            Ok(())
        }
    }
}
