//! `fastvision ensemble train`: every member trained as an ordinary run under
//! `runs/NAME/members/…` (its own train.json, checkpoint, bundle, report), one after another,
//! resumable member by member; `ensemble.json` and `ensemble_train.json` (the plan) at the top.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::loader::mix;
use crate::data::sample::Sampling;
use crate::error::{Error, Result};
use crate::infer::combine::Combination;
use crate::infer::ensemble::{EnsembleFile, Member};
use crate::io::{read_json, write_json};
use crate::learner::{Listen, Listener};
use crate::models::Arch;
use crate::vision::{TrainConfig, VisionRecipe};

/// The plan file: each member's full training configuration.
pub const PLAN_FILE: &str = "ensemble_train.json";

/// One member to train: where, and its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedMember {
    /// Its folder, relative to the ensemble.
    pub dir: PathBuf,
    /// Its training configuration (an ordinary run's).
    pub config: TrainConfig,
    /// How its training data was drawn.
    pub sampling: Sampling,
}

/// How to vary the training set between members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variation {
    /// Every member sees the whole training split.
    None,
    /// Each member trains on a seeded bootstrap sample.
    Bagging,
    /// Member i trains on every fold but i mod K.
    Folds(usize),
}

/// A member specification: an architecture, optionally `@SIZE` (`resnet18@64`).
pub fn parse_member(spec: &str) -> Result<(Arch, Option<u32>)> {
    match spec.split_once('@') {
        Some((a, s)) => Ok((
            a.trim().parse()?,
            Some(s.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "member {spec:?}: the size after @ must be a number"
                ))
            })?),
        )),
        None => Ok((spec.trim().parse()?, None)),
    }
}

/// The members of an ensemble: each architecture × `seeds` seeds, varied as `variation` says.
/// Every member shares `base`'s validation split (`split_seed`); an architecture whose minimum
/// input is larger than the run's size is upscaled to its minimum.
pub fn plan(
    base: &TrainConfig,
    archs: &[(Arch, Option<u32>)],
    seeds: usize,
    variation: Variation,
) -> Result<Vec<PlannedMember>> {
    if archs.is_empty() || seeds == 0 {
        return Err(Error::Config(
            "an ensemble needs at least one member".into(),
        ));
    }
    if let Variation::Folds(k) = variation
        && k < 2
    {
        return Err(Error::Config(format!("`folds` {k}: at least 2")));
    }
    let mut out = Vec::new();
    for &(arch, size) in archs {
        for s in 0..seeds {
            let idx = out.len();
            let seed = base.seed + s as u64;
            let sampling = match variation {
                Variation::None => Sampling::All,
                Variation::Bagging => Sampling::Bootstrap {
                    seed: mix(base.seed, idx as u64, 0xBA6),
                },
                Variation::Folds(k) => Sampling::Fold { k, fold: idx % k },
            };
            let size = size
                .or(base.size)
                .map(|s| s.max(arch.min_size()))
                .or((arch.min_size() > 16).then_some(arch.min_size()));
            let tag = match sampling {
                Sampling::Bootstrap { .. } => "-bag".to_string(),
                Sampling::Fold { fold, .. } => format!("-fold{fold}"),
                _ => String::new(),
            };
            out.push(PlannedMember {
                dir: PathBuf::from("members").join(format!("{idx:02}-{arch}-s{seed}{tag}")),
                config: TrainConfig {
                    arch,
                    size,
                    seed,
                    split_seed: Some(base.split_seed.unwrap_or(base.seed)),
                    sampling: Some(sampling),
                    // With --pretrained, members without those weights train from scratch.
                    fine_tune: if base.pretrained.is_some() {
                        arch_has_pretrained(base, arch)
                    } else {
                        base.fine_tune
                    },
                    pretrained: base
                        .pretrained
                        .clone()
                        .filter(|_| arch_has_pretrained(base, arch)),
                    ..base.clone()
                },
                sampling,
            });
        }
    }
    Ok(out)
}

/// `--pretrained` applies to a member when it is a file, or a named checkpoint of that
/// member's architecture (`resnet34`, `inception_v3`, …).
fn arch_has_pretrained(base: &TrainConfig, arch: Arch) -> bool {
    base.pretrained
        .as_deref()
        .is_some_and(|p| Path::new(p).is_file() || p.starts_with(&arch.to_string()))
}

/// Whether a member folder holds a finished model.
pub fn member_done(dir: &Path) -> bool {
    dir.join(crate::weights::WEIGHTS_FILE).is_file()
        && dir.join(crate::infer::bundle::CONFIG_FILE).is_file()
}

/// Trains the members of `planned` into `dir` (new) or, with `resume`, the ones not finished
/// (an interrupted member continues from its checkpoint); `listen` hears every member. The
/// three parts — [`create`], [`train_member`] for each, [`finish`] — are public so that members
/// can train elsewhere (one task per member on a cluster) into the same folder.
pub fn train(
    planned: Option<Vec<PlannedMember>>,
    dir: &Path,
    device: &Device,
    mut listen: Listen,
) -> Result<EnsembleFile> {
    let resume = planned.is_none();
    // Data parallel: every rank trains every member, rank 0 alone into `dir`.
    let (_private, dir) = &crate::run_dir::rank_folder(dir, resume)?;
    let dir = dir.as_path();
    let planned = match planned {
        Some(p) => {
            create(&p, dir)?;
            p
        }
        None => read_plan(dir)?,
    };
    let n = planned.len();
    for (i, m) in planned.iter().enumerate() {
        let mdir = dir.join(&m.dir);
        if member_done(&mdir) {
            if resume {
                listen.note(&format!(
                    "member {}/{n} {}: already trained",
                    i + 1,
                    m.dir.display()
                ));
            }
            continue;
        }
        listen.note(&format!(
            "member {}/{n} {}: {}, seed {}, {:?}",
            i + 1,
            m.dir.display(),
            m.config.arch,
            m.config.seed,
            m.sampling
        ));
        if let Some((accuracy, seconds)) = train_one(dir, m, device, listen.clone())? {
            listen.note(&format!("  accuracy {accuracy:.4} in {seconds:.1}s"));
        }
    }
    write_file(dir, &planned)
}

/// Creates the ensemble folder `dir` (refused when it exists) with its plan file.
pub fn create(planned: &[PlannedMember], dir: &Path) -> Result<()> {
    check_member_dirs(planned, dir)?;
    let run = crate::run_dir::RunDir::create(dir)?;
    write_json(&run.file(PLAN_FILE), &planned)
}

/// The members planned in the ensemble folder `dir`.
pub fn read_plan(dir: &Path) -> Result<Vec<PlannedMember>> {
    let planned: Vec<PlannedMember> = read_json(&dir.join(PLAN_FILE))?;
    check_member_dirs(&planned, dir)?;
    Ok(planned)
}

/// Member folders are plain names inside the ensemble (a plan file edited to name `..` or an
/// absolute path must not send a removal or a run outside it).
fn check_member_dirs(planned: &[PlannedMember], dir: &Path) -> Result<()> {
    for m in planned {
        let inside = m.dir.components().count() > 0
            && m.dir
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err(Error::model(
                dir.join(PLAN_FILE),
                format!(
                    "member folder {:?} is not a relative path inside the ensemble",
                    m.dir
                ),
            ));
        }
    }
    Ok(())
}

/// Trains member `index` of the ensemble in `dir` — resumed from its checkpoint when it has
/// one, nothing when it is finished; returns its final accuracy and training seconds when it
/// trained. Safe to call again after a crash: a finished member is never retrained.
pub fn train_member(
    dir: &Path,
    index: usize,
    device: &Device,
    listen: Listen,
) -> Result<Option<(f64, f64)>> {
    let planned = read_plan(dir)?;
    let m = planned.get(index).ok_or_else(|| {
        Error::Config(format!(
            "member {index}: the ensemble in {} has {} members",
            dir.display(),
            planned.len()
        ))
    })?;
    if member_done(&dir.join(&m.dir)) {
        return Ok(None);
    }
    train_one(dir, m, device, listen)
}

/// Trains (or resumes) the member `m` of the ensemble in `dir`; its final accuracy and seconds.
fn train_one(
    dir: &Path,
    m: &PlannedMember,
    device: &Device,
    listen: Listen,
) -> Result<Option<(f64, f64)>> {
    let recipe = VisionRecipe(m.config.clone());
    let s = crate::run::train_or_resume(recipe, &dir.join(&m.dir), device, listen)?;
    Ok(s.last.and_then(|l| l.accuracy).map(|a| (a, s.seconds)))
}

/// Writes the ensemble file of the folder `dir` once every member is trained (refused before:
/// the error names the first unfinished one).
pub fn finish(dir: &Path) -> Result<EnsembleFile> {
    write_file(dir, &read_plan(dir)?)
}

/// The ensemble file of the members `planned` in `dir`, written.
fn write_file(dir: &Path, planned: &[PlannedMember]) -> Result<EnsembleFile> {
    if let Some(m) = planned.iter().find(|m| !member_done(&dir.join(&m.dir))) {
        return Err(Error::model(
            dir.join(&m.dir),
            "this member is not trained yet: train it (or resume the ensemble) first",
        ));
    }
    let mut file = EnsembleFile {
        members: planned
            .iter()
            .map(|m| Member {
                dir: m.dir.clone(),
                arch: m.config.arch,
                seed: m.config.seed,
                size: m.config.size.unwrap_or(0),
                sampling: m.sampling,
            })
            .collect(),
        combination: Combination::Mean,
        fit_items: Vec::new(),
    };
    // The sizes the members really trained at.
    for m in &mut file.members {
        if let Ok(c) = crate::infer::bundle::load_bundle_config(&dir.join(&m.dir)) {
            m.size = c.size;
        }
    }
    file.write(dir)?;
    Ok(file)
}
