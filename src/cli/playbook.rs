//! `fastvision playbook`: the whole recipe within a time budget; the work is in
//! `fastvision::playbook`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use fastvision::burn::tensor::Device;
use fastvision::learner::Precision;
use fastvision::models::Arch;
use fastvision::playbook::{self, PlaybookConfig};

use super::messages::to_cli;
use super::parse::{arch, between, named, open_fraction};
use super::progress;

/// `fastvision playbook`'s flags.
#[derive(clap::Args)]
pub struct PlaybookArgs {
    /// Dataset folder (class folders, or train/ [+ valid/] [+ test/ unlabelled]) [default: the
    /// bundled demo].
    dir: Option<PathBuf>,
    /// Time budget: 30m, 1h, 90s, 1h30m, … (the plan shrinks epochs and members to fit).
    #[arg(long, value_parser = budget, required_unless_present = "resume")]
    budget: Option<f64>,
    /// Move the confusing images into the quarantine folder (journaled, `clean --undo` restores
    /// them) and retrain without them; otherwise they are only listed.
    #[arg(long)]
    drop_confusing: bool,
    /// Print the plan and stop (it still measures this machine: about a minute).
    #[arg(long)]
    dry_run: bool,
    /// Main architecture.
    #[arg(long, default_value = "resnet18", value_parser = arch())]
    arch: Arch,
    /// Final image side, 16 to 2048 [default: the data's, at most 64].
    #[arg(long, value_parser = between(16, 2048))]
    size: Option<u32>,
    /// Seed of everything random.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Validation fraction when DIR has no valid/ folder, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.2, value_parser = open_fraction)]
    valid_pct: f64,
    /// Float precision: auto (bf16 on AMX tiles or AMD's AVX-512 BF16, else fp32), fp32, bf16, fp16 (GPU).
    #[arg(long, default_value = "auto", value_parser = named::<Precision>(&["auto", "fp32", "fp16", "bf16"]))]
    pub precision: Precision,
    /// Playbook folder name under ./runs [default: a timestamp].
    #[arg(long)]
    name: Option<String>,
    /// Continue an interrupted playbook.
    #[arg(long, conflicts_with_all = ["dir", "name", "budget"])]
    resume: Option<PathBuf>,
}

/// A budget such as `30m` or `1h30m`, in seconds.
fn budget(s: &str) -> Result<f64, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (expected a duration such as 20m, 1h or 90s)"))?;
    if d.as_secs_f64() < 30.0 {
        return Err("a budget of at least 30s".into());
    }
    Ok(d.as_secs_f64())
}

/// `fastvision playbook`.
pub fn playbook(args: PlaybookArgs, device: &Device) -> Result<()> {
    let progress = progress::on_stdout();
    let dir = match &args.resume {
        Some(d) => d.clone(),
        None => fastvision::run_dir::run_path(args.name.as_deref())?,
    };
    let kept = |e| super::messages::resumable(e, "fastvision playbook --resume", &dir);
    let state = if args.resume.is_some() {
        playbook::resume(&dir, device, progress.clone()).map_err(kept)?
    } else {
        let data = match args.dir {
            Some(d) => d,
            None => fastvision::data::demo::demo_path()?,
        };
        let Some(budget) = args.budget else {
            bail!("--budget is needed (e.g. --budget 20m)");
        };
        let config = PlaybookConfig {
            drop_confusing: args.drop_confusing,
            arch: args.arch,
            size: args.size,
            seed: args.seed,
            valid_pct: args.valid_pct,
            precision: args.precision,
            ..PlaybookConfig::new(data, budget)
        };
        if args.dry_run {
            let (plan, notes) = playbook::make_plan(&config, device)?;
            notes.iter().for_each(|n| println!("{}", to_cli(n)));
            playbook::plan_text(&plan)
                .iter()
                .for_each(|l| println!("{l}"));
            return Ok(());
        }
        playbook::run(&config, &dir, device, progress.clone()).map_err(kept)?
    };
    println!();
    for line in playbook::table(&state) {
        println!("{}", to_cli(&line));
    }
    println!("playbook folder (its final model): {}", dir.display());
    Ok(())
}
