//! `fastvision weights list|fetch`: the named pretrained checkpoints.

use anyhow::{Result, bail};
use clap::Subcommand;
use fastvision::weights::{cache_dir, hub};

/// The weights subcommands.
#[derive(Subcommand)]
pub enum WeightsCommand {
    /// Every named checkpoint: source, SHA-256, licence, training data, and whether it is cached.
    List,
    /// Download named checkpoints into the cache now (for machines that are online only sometimes).
    Fetch {
        /// Checkpoint names (see `weights list`).
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Runs a weights subcommand.
pub fn run(cmd: WeightsCommand) -> Result<()> {
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
            // Every name is checked before anything is downloaded.
            let unknown: Vec<&str> = names
                .iter()
                .filter(|n| hub::find(n).is_none())
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                let known: Vec<&str> = hub::CATALOG.iter().map(|c| c.name).collect();
                bail!(
                    "not a known checkpoint: {} (known: {})",
                    unknown.join(", "),
                    known.join(", ")
                );
            }
            for c in names.iter().filter_map(|n| hub::find(n)) {
                let path = c.fetch(&dir)?;
                println!("{}: {}", c.name, path.display());
            }
        }
    }
    Ok(())
}
