//! The ensemble a folder holds, as inference sees it: `ensemble.json` names its members (each an
//! ordinary run folder, under `members/` for a trained ensemble or `snapshots/` for snapshots),
//! how each was trained, and the combination rule; `predict`, `evaluate` and `interpret` load it
//! as one predictor. Making, training and reporting ensembles lives in `crate::ensemble`.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::combine::Combination;
use super::predict::Predictor;
use crate::data::sample::Sampling;
use crate::error::{Error, Result};
use crate::io::{read_json, write_json};

/// The file that makes a folder an ensemble.
pub const ENSEMBLE_FILE: &str = "ensemble.json";

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

    /// Makes the ensemble in `dir` combine its members by the fixed `rule` (mean, geometric:
    /// no images are set aside for fitted weights any more); returns the file written.
    pub fn set_rule(dir: &Path, rule: Combination) -> Result<Self> {
        let mut file = Self::read(dir)?;
        if file.members.is_empty() {
            return Err(crate::error::Error::model(
                dir.join(ENSEMBLE_FILE),
                "no members",
            ));
        }
        file.combination = rule;
        file.fit_items.clear();
        file.write(dir)?;
        Ok(file)
    }
}

impl Predictor {
    /// Loads the bundle in `dir` (a run folder, an exported file, or an ensemble folder) onto
    /// `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        if is_ensemble(dir) {
            load(dir, device)
        } else {
            Self::open_bundle(dir, device)
        }
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
    if let Some(w) = file.combination.weights()
        && w.len() != file.members.len()
    {
        return Err(Error::model(
            dir.join(ENSEMBLE_FILE),
            format!("{} weights for {} members", w.len(), file.members.len()),
        ));
    }
    let mut members = load_members(dir, &file, device)?.into_iter();
    let mut first = members
        .next()
        .ok_or_else(|| Error::model(dir.join(ENSEMBLE_FILE), "an ensemble without members"))?;
    first.others = members.collect();
    first.combination = file.combination.clone();
    first.fit_items = file.fit_items.clone();
    Ok(first)
}
