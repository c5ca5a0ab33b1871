//! `fastvision gan …`: argument parsing for the WGAN; the work is in `fastvision::gan`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use fastvision::gan::run::{self as gan_run, GanRunConfig};
use fastvision::gan::{GanConfig, sample, score};

use super::parse::{at_least, positive};
use super::progress;

/// The GAN subcommands.
#[derive(Subcommand)]
pub enum GanCommand {
    /// Train one Wasserstein GAN per class (or one conditional GAN) on a folder of class folders.
    Train(TrainArgs),
    /// Write generated images: OUT/<class>/gan-<class>-<seed>-<i>.png and a manifest.
    Sample {
        /// GAN run folder.
        run: PathBuf,
        /// Images per class.
        #[arg(long, default_value_t = 100, value_parser = at_least(1))]
        n: usize,
        /// Output folder (a folder of class folders, usable with `train --extra-data`).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the noise (the same seed writes the same images).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// GAN-test and GAN-train scores of a GAN run, with a classifier trained on real images.
    Score {
        /// GAN run folder.
        run: PathBuf,
        /// An image run trained on the real data (its recipe is reused for GAN-train).
        #[arg(long)]
        classifier: PathBuf,
        /// Generated images per class.
        #[arg(long, default_value_t = 200, value_parser = at_least(1))]
        n: usize,
        /// Seed of the noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Only GAN-test (no training on generated images).
        #[arg(long)]
        no_gan_train: bool,
    },
}

/// `gan train` arguments (fastai's WGAN recipe).
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Folder of class folders [default: the bundled demo].
    dir: Option<PathBuf>,
    /// Classes to learn, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    classes: String,
    /// One conditional GAN for all classes (class embedding + projection critic).
    #[arg(long)]
    conditional: bool,
    /// Image side (power of two ≥ 16).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Epochs (passes over each class's real images).
    #[arg(long, default_value_t = 10, value_parser = at_least(1))]
    epochs: usize,
    /// Batch size, at least 2.
    #[arg(long, default_value_t = 64, value_parser = at_least(2))]
    bs: usize,
    /// Learning rate (constant, fastai: 2e-4).
    #[arg(long, default_value_t = 2e-4, value_parser = positive)]
    lr: f64,
    /// Critic weight clipping.
    #[arg(long, default_value_t = 0.01, value_parser = positive)]
    clip: f64,
    /// Critic batches per generator batch.
    #[arg(long, default_value_t = 5, value_parser = at_least(1))]
    n_crit: usize,
    /// Feature width of both networks.
    #[arg(long, default_value_t = 64, value_parser = at_least(1))]
    n_features: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run folder name under ./runs [default: a timestamp].
    #[arg(long)]
    name: Option<String>,
    /// Continue a GAN run: nets already trained are kept, an interrupted one resumes.
    #[arg(long, conflicts_with = "dir")]
    resume: Option<PathBuf>,
}

/// Runs a GAN subcommand.
pub fn run(cmd: GanCommand, device: &fastvision::burn::tensor::Device) -> Result<()> {
    match cmd {
        GanCommand::Train(a) => {
            let (config, dir, resume) = match a.resume {
                Some(dir) => (gan_run::load_config(&dir)?, dir, true),
                None => {
                    let classes = (a.classes != "all")
                        .then(|| a.classes.split(',').map(|c| c.trim().to_string()).collect());
                    let config = GanRunConfig {
                        data: a.dir,
                        classes,
                        conditional: a.conditional,
                        gan: GanConfig {
                            size: a.size,
                            bs: a.bs,
                            lr: a.lr,
                            clip: a.clip,
                            n_crit: a.n_crit,
                            epochs: a.epochs,
                            seed: a.seed,
                            n_features: a.n_features,
                            ..GanConfig::default()
                        },
                    };
                    let dir = fastvision::run_dir::run_path(a.name.as_deref())?;
                    (config, dir, false)
                }
            };
            let t0 = std::time::Instant::now();
            let nets = gan_run::train(&config, &dir, resume, device, progress::on_stdout())
                .map_err(|e| {
                    super::messages::resumable(e, "fastvision gan train --resume", &dir)
                })?;
            println!(
                "trained {} in {:.1}s",
                fastvision::text::count(nets.len(), "generator"),
                t0.elapsed().as_secs_f64()
            );
            println!("run folder: {}", dir.display());
            Ok(())
        }
        GanCommand::Sample { run, n, out, seed } => {
            let m = sample::sample(&run, n, seed, &out, device)?;
            let total: usize = m.classes.iter().map(|c| c.1).sum();
            println!(
                "wrote {total} synthetic images ({} classes, {} px) to {}",
                m.classes.len(),
                m.size,
                out.display()
            );
            Ok(())
        }
        GanCommand::Score {
            run,
            classifier,
            n,
            seed,
            no_gan_train,
        } => {
            let s = score::score(
                &run,
                &classifier,
                n,
                seed,
                !no_gan_train,
                device,
                progress::on_stdout(),
            )?;
            println!("{:<20} {:>9}", "class", "GAN-test");
            for (c, a) in &s.gan_test {
                println!("{c:<20} {a:>9.4}");
            }
            println!(
                "GAN-test (classifier trained on real images, on {} generated images per class): {:.4}",
                s.n_per_class, s.gan_test_mean
            );
            if let Some(t) = s.gan_train {
                println!(
                    "GAN-train (trained on generated images only, on the real validation images): {t:.4}"
                );
            }
            println!(
                "the classifier's own accuracy on those real validation images: {:.4}",
                s.real_accuracy
            );
            fastvision::io::write_json(&run.join(format!("score-{seed}.json")), &s)?;
            Ok(())
        }
    }
}
