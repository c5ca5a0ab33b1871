//! `fastvision ensemble from`: an ensemble folder made of existing runs (the file format and
//! loading are `crate::infer::ensemble`'s).

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::data::sample::Sampling;
use crate::error::{Error, Result};
use crate::infer::combine::Combination;
use crate::infer::ensemble::{EnsembleFile, Member, load};

/// Makes `dir` (new) an ensemble of existing runs (DESIGN's `fastvision ensemble runs/a runs/b`).
/// The runs must have trained on the same data with the same validation split (same folder and,
/// when it has no `valid/`, the same split seed and share), else a member's training images
/// could be another's validation images; the members are referenced by absolute path.
pub fn create(dir: &Path, runs: &[PathBuf], device: &Device) -> Result<EnsembleFile> {
    if dir.exists() {
        return Err(Error::Config(format!(
            "{} already exists: choose another `name`",
            dir.display()
        )));
    }
    if runs.len() < 2 {
        return Err(Error::Config(
            "an ensemble of existing runs needs at least two".into(),
        ));
    }
    let mut members = Vec::new();
    let mut first: Option<(PathBuf, crate::vision::TrainConfig)> = None;
    let mut seen: Vec<PathBuf> = Vec::new();
    for run in runs {
        let real = run.canonicalize().map_err(|e| Error::io(run, e))?;
        if seen.contains(&real) {
            return Err(Error::Config(format!(
                "{} is named twice: an ensemble's members are different runs",
                run.display()
            )));
        }
        seen.push(real);
        let config = crate::vision::load_config(run)?.with_absolute_paths();
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
