//! Finding labelled images on disk: ImageNet-style folders, or one folder of classes plus a split.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::decode::{decode_rgb, has_image_extension};
use super::split::stratified_split;
use super::{Item, Skipped};
use crate::error::{Error, Result};

/// Names accepted for the validation folder of an ImageNet-style dataset.
const VALID_NAMES: &[&str] = &["valid", "val"];

/// The name of a held-out test folder, never read as a class.
const TEST_NAME: &str = "test";

/// How to split a folder of class folders that has no `valid/`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SplitConfig {
    /// Fraction of each class kept for validation (fastai's `valid_pct`, default 0.2).
    pub valid_pct: f64,
    /// Seed of the split.
    pub seed: u64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            valid_pct: 0.2,
            seed: 42,
        }
    }
}

/// A labelled dataset found on disk: train and valid items, the class names and what was skipped.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// The folder it was read from.
    pub root: PathBuf,
    /// Training items.
    pub train: Vec<Item>,
    /// Validation items.
    pub valid: Vec<Item>,
    /// Class names, sorted; an item's label indexes this list.
    pub vocab: Vec<String>,
    /// Files that were not used, with the reason.
    pub skipped: Vec<Skipped>,
    /// Smallest side among the usable images (to pick a default training size).
    pub min_side: u32,
    /// How many of the training items are synthetic (added by `--extra-data`, at the end).
    pub synthetic: usize,
    /// Folders found inside class folders: their images were given the class's label.
    pub nested: Vec<PathBuf>,
}

impl ImageFolder {
    /// Reads `root`: `root/train/<class>/…` with `root/valid/<class>/…` when both exist,
    /// `root/train/<class>/…` split by `split` when there is no `valid/` (a `test/` beside it
    /// is not read), else `root/<class>/…` split by `split` (a `test/` there is not a class
    /// either). Every image is decoded once to check it; files that fail are listed in
    /// `skipped`, never fatal. A class folder with no usable image is an error.
    pub fn from_folder(root: &Path, split: SplitConfig) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::Dataset {
                path: root.into(),
                message: if root.exists() {
                    "not a folder".into()
                } else {
                    "does not exist".into()
                },
            });
        }
        let train_dir = root.join("train");
        let valid_dir = VALID_NAMES
            .iter()
            .map(|n| root.join(n))
            .find(|p| p.is_dir());
        let mut nested = Vec::new();
        // `train/` with `valid/`: the folders are the split. `train/` alone (a Kaggle-style
        // `train/` + unlabelled `test/`): its class folders are split as a flat dataset's.
        let split_train = train_dir.is_dir() && valid_dir.is_none();
        let class_root = if split_train {
            train_dir.as_path()
        } else {
            root
        };
        let (vocab, train_files, valid_files, mut skipped) =
            if let (true, Some(valid_dir)) = (train_dir.is_dir(), valid_dir.as_ref()) {
                let (vocab, mut skipped) = class_names(&train_dir)?;
                let (train, s) = list_classes(&train_dir, &vocab, &mut nested)?;
                skipped.extend(s);
                let (valid, s) = list_classes(valid_dir, &vocab, &mut nested)?;
                skipped.extend(s);
                if let Ok((valid_names, _)) = class_names(valid_dir) {
                    skipped.extend(valid_names.iter().filter(|n| !vocab.contains(n)).map(|n| {
                        Skipped::new(
                            &valid_dir.join(n),
                            "a validation class with no training folder: not read",
                        )
                    }));
                }
                (vocab, train, Some(valid), skipped)
            } else if class_root == root {
                // A flat `<class>/` layout: a `test/` folder beside the classes is the held-out
                // test set (as in the ImageNet-style layout), not a class.
                let (mut vocab, mut skipped) = class_names(class_root)?;
                if let Some(i) = vocab.iter().position(|n| n == TEST_NAME) {
                    vocab.remove(i);
                    skipped.push(Skipped::new(
                        &root.join(TEST_NAME),
                        "a held-out test folder: not read, and not a class",
                    ));
                }
                let (all, s) = list_classes(class_root, &vocab, &mut nested)?;
                skipped.extend(s);
                (vocab, all, None, skipped)
            } else {
                let (vocab, mut skipped) = class_names(class_root)?;
                let (all, s) = list_classes(class_root, &vocab, &mut nested)?;
                skipped.extend(s);
                (vocab, all, None, skipped)
            };

        let (train, valid, min_side) = {
            let all = once_each(train_files, &mut skipped);
            let n_train = all.len();
            let mut all = all;
            if let Some(v) = valid_files {
                all.extend(v);
            }
            let all = once_each(all, &mut skipped);
            let (good, bad, min_side) = verify(all);
            skipped.extend(bad.iter().map(|(_, s)| s.clone()));
            let mut train = Vec::new();
            let mut valid = Vec::new();
            for (i, item) in good {
                if i < n_train {
                    train.push(item)
                } else {
                    valid.push(item)
                }
            }
            (train, valid, min_side)
        };
        let (train, valid) = if train_dir.is_dir() && !split_train {
            (train, valid)
        } else {
            stratified_split(train, split.valid_pct, split.seed)
        };
        for (label, name) in vocab.iter().enumerate() {
            if !train.iter().any(|i| i.label == label) {
                let dir = if train_dir.is_dir() {
                    train_dir.join(name)
                } else {
                    root.join(name)
                };
                return Err(Error::Dataset {
                    path: dir,
                    message: "class folder has no usable image".into(),
                });
            }
        }
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self {
            root: root.into(),
            train,
            valid,
            vocab,
            skipped,
            min_side,
            synthetic: 0,
            nested,
        })
    }
}

/// Whether a directory entry's name starts with a dot.
fn hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The sorted names of the visible sub-folders of `dir` (links to folders are not classes: a
/// link can point back up and loop), and the links left out.
pub fn class_names(dir: &Path) -> Result<(Vec<String>, Vec<Skipped>)> {
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if hidden(&path) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        } else if kind.is_symlink() && path.is_dir() {
            skipped.push(Skipped::new(
                &path,
                "a link to a folder: not followed (a class folder must be a real folder)",
            ));
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(Error::Dataset {
            path: dir.into(),
            message: "no class folders found".into(),
        });
    }
    Ok((names, skipped))
}

/// Lists the candidate image files under `dir/<class>/` for each class in `vocab`, walking
/// folders inside a class folder too (their images take the class's label, and each such folder
/// is reported in `nested`). Links to folders are never followed (so a link back up cannot loop
/// or relabel images); links to files are. Hidden entries are ignored; non-image extensions and
/// files outside any class folder are reported.
fn list_classes(
    dir: &Path,
    vocab: &[String],
    nested: &mut Vec<PathBuf>,
) -> Result<(Vec<Item>, Vec<Skipped>)> {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for (label, name) in vocab.iter().enumerate() {
        let class_dir = dir.join(name);
        if !class_dir.is_dir() {
            continue;
        }
        let walk = walkdir::WalkDir::new(&class_dir)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| !hidden(e.path()));
        for entry in walk {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&class_dir).to_path_buf();
                Error::io(&path, e.into())
            })?;
            let path = entry.path().to_path_buf();
            if entry.file_type().is_dir() {
                nested.push(path);
            } else if entry.path_is_symlink() && path.is_dir() {
                skipped.push(Skipped::new(&path, "a link to a folder: not followed"));
            } else if has_image_extension(&path) {
                items.push(Item { path, label });
            } else {
                skipped.push(Skipped::new(&path, "not an image extension"));
            }
        }
    }
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_file() && !hidden(&path) {
            skipped.push(Skipped::new(&path, "file outside any class folder"));
        }
    }
    Ok((items, skipped))
}

/// `items` with each file kept once, by its real path (links resolved): a second way to the
/// same file is reported, so one image is never in two classes or in both splits.
fn once_each(items: Vec<Item>, skipped: &mut Vec<Skipped>) -> Vec<Item> {
    let mut seen: std::collections::HashMap<PathBuf, PathBuf> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let real = std::fs::canonicalize(&item.path).unwrap_or_else(|_| item.path.clone());
        match seen.get(&real) {
            Some(first) => skipped.push(Skipped::new(
                &item.path,
                &format!("the same file as {} (a link)", first.display()),
            )),
            None => {
                seen.insert(real, item.path.clone());
                out.push(item);
            }
        }
    }
    out
}

/// Good items and bad files, each with its position in the input, and the smallest side seen.
type Verified = (Vec<(usize, Item)>, Vec<(usize, Skipped)>, u32);

/// Decodes every item in parallel; returns the good ones (with their index), the bad ones and
/// the smallest image side seen.
fn verify(items: Vec<Item>) -> Verified {
    let results: Vec<_> = items
        .into_par_iter()
        .enumerate()
        .map(|(i, item)| match decode_rgb(&item.path) {
            Ok(img) => Ok((i, item, img.width().min(img.height()))),
            Err(why) => Err((i, Skipped::new(&item.path, &why))),
        })
        .collect();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut min_side = u32::MAX;
    for r in results {
        match r {
            Ok((i, item, side)) => {
                min_side = min_side.min(side);
                good.push((i, item));
            }
            Err(b) => bad.push(b),
        }
    }
    (good, bad, min_side)
}
