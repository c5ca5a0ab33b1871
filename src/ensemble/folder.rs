//! An ensemble is a run folder: `ensemble.json` names its members (each an ordinary run folder,
//! under `members/` for a trained ensemble or `snapshots/` for snapshots), how each was trained,
//! and the combination rule; `predict`, `evaluate` and `interpret` load it as one predictor.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::combine::Combination;
use crate::error::{Error, Result};
use crate::infer::Predictor;
use crate::io::{read_json, write_json};

/// The file that makes a folder an ensemble.
pub const ENSEMBLE_FILE: &str = "ensemble.json";

/// How a member's training data was drawn from the training split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Sampling {
    /// The whole training split.
    All,
    /// A bootstrap sample (n draws with replacement) seeded by `seed`.
    Bootstrap {
        /// Seed of the draws.
        seed: u64,
    },
    /// Every fold but `fold` of `k` (seeded by the run's seed).
    Fold {
        /// Folds.
        k: usize,
        /// The fold left out.
        fold: usize,
    },
    /// The weights at the end of SGDR cycle `cycle` of one training run.
    Snapshot {
        /// Cycle (0-based).
        cycle: usize,
    },
}

/// One member of an ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Its run folder, relative to the ensemble folder.
    pub dir: PathBuf,
    /// Architecture.
    pub arch: crate::models::Arch,
    /// Seed.
    pub seed: u64,
    /// Image side.
    pub size: u32,
    /// Its training data.
    pub sampling: Sampling,
}

/// `ensemble.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleFile {
    /// The members, in order.
    pub members: Vec<Member>,
    /// How their probabilities combine.
    pub combination: Combination,
    /// Validation images the weights were fitted on (never scored with those weights).
    #[serde(default)]
    pub fit_items: Vec<PathBuf>,
}

impl EnsembleFile {
    /// Reads `dir/ensemble.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        read_json(&dir.join(ENSEMBLE_FILE))
    }

    /// Writes `dir/ensemble.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join(ENSEMBLE_FILE), self)
    }
}

/// Whether `dir` is an ensemble folder.
pub fn is_ensemble(dir: &Path) -> bool {
    dir.join(ENSEMBLE_FILE).is_file()
}

/// Loads every member of the ensemble in `dir`; a missing or corrupt member is an error naming
/// it, and members whose class lists differ are refused with both lists.
pub fn load_members(dir: &Path, file: &EnsembleFile, device: &Device) -> Result<Vec<Predictor>> {
    if file.members.is_empty() {
        return Err(Error::model(
            dir.join(ENSEMBLE_FILE),
            "an ensemble without members",
        ));
    }
    let mut out: Vec<Predictor> = Vec::new();
    for m in &file.members {
        let mdir = dir.join(&m.dir);
        let p = Predictor::load(&mdir, device).map_err(|e| {
            Error::model(
                &mdir,
                format!(
                    "ensemble member {} cannot be loaded (missing or corrupt): {e}",
                    m.dir.display()
                ),
            )
        })?;
        if let Some(first) = out.first()
            && first.config.vocab != p.config.vocab
        {
            return Err(Error::model(
                &mdir,
                format!(
                    "member classes differ: {} has [{}], {} has [{}]",
                    file.members[0].dir.display(),
                    first.config.vocab.join(", "),
                    m.dir.display(),
                    p.config.vocab.join(", ")
                ),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// The ensemble in `dir` as one predictor: its first member, with the others and the rule.
pub fn load(dir: &Path, device: &Device) -> Result<Predictor> {
    let file = EnsembleFile::read(dir)?;
    if let Combination::Weighted(w) = &file.combination
        && w.len() != file.members.len()
    {
        return Err(Error::model(
            dir.join(ENSEMBLE_FILE),
            format!("{} weights for {} members", w.len(), file.members.len()),
        ));
    }
    let mut members = load_members(dir, &file, device)?.into_iter();
    let mut first = members.next().expect("checked non-empty");
    first.others = members.collect();
    first.combination = file.combination.clone();
    first.fit_items = file.fit_items.clone();
    Ok(first)
}

/// Makes `dir` (new) an ensemble of existing runs (DESIGN's `fastvision ensemble runs/a runs/b`).
/// The runs must have trained on the same data with the same validation split (same folder and,
/// when it has no `valid/`, the same split seed and share), else a member's training images
/// could be another's validation images; the members are referenced by absolute path.
pub fn create(dir: &Path, runs: &[PathBuf], device: &Device) -> Result<EnsembleFile> {
    if dir.exists() {
        return Err(Error::Config(format!(
            "{} already exists: choose another --name",
            dir.display()
        )));
    }
    if runs.len() < 2 {
        return Err(Error::Config(
            "an ensemble of existing runs needs at least two".into(),
        ));
    }
    let mut members = Vec::new();
    let mut first: Option<(PathBuf, crate::run::TrainConfig)> = None;
    for run in runs {
        let config = crate::run::load_config(run)?;
        if let Some((r0, c0)) = &first {
            let has_valid = c0
                .data
                .as_ref()
                .is_none_or(|d| d.join("valid").is_dir() || d.join("val").is_dir());
            let same_data = c0.data == config.data;
            let same_split = c0.split_seed.unwrap_or(c0.seed)
                == config.split_seed.unwrap_or(config.seed)
                && c0.valid_pct == config.valid_pct;
            if !same_data || (!has_valid && !same_split) {
                return Err(Error::Config(format!(
                    "{} and {} did not train on the same data and validation split: one's training images could be the other's validation images",
                    r0.display(),
                    run.display()
                )));
            }
        } else {
            first = Some((run.clone(), config.clone()));
        }
        let bundle = crate::infer::bundle::load_bundle_config(run)?;
        members.push(Member {
            dir: run.canonicalize().map_err(|e| Error::io(run, e))?,
            arch: config.arch,
            seed: config.seed,
            size: bundle.size,
            sampling: config.sampling.unwrap_or(Sampling::All),
        });
    }
    let file = EnsembleFile {
        members,
        combination: Combination::Mean,
        fit_items: Vec::new(),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    file.write(dir)?;
    // Loading checks every member and their class lists.
    if let Err(e) = load(dir, device) {
        let _ = std::fs::remove_dir_all(dir);
        return Err(e);
    }
    Ok(file)
}
