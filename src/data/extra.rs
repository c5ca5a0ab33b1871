//! `train --extra-data SYNTH`: synthetic images (e.g. written by `gan sample`) added to the
//! training split only — never to validation — after the real data has been split.

use std::collections::HashSet;
use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::decode::has_image_extension;
use super::{ImageFolder, Item};
use crate::error::{Error, Result};

/// Adds the images of `dir`'s class folders to `data.train` (all of them, or with `fraction`
/// `F` a seeded choice of F × the real training images); returns how many were added. A class
/// folder whose name is not one of the dataset's classes is refused, showing both lists.
pub fn add_synthetic(
    data: &mut ImageFolder,
    dir: &Path,
    fraction: Option<f64>,
    seed: u64,
) -> Result<usize> {
    let mut classes: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    let unknown: Vec<&String> = classes.iter().filter(|c| !data.vocab.contains(c)).collect();
    if classes.is_empty() || !unknown.is_empty() {
        return Err(Error::Dataset {
            path: dir.into(),
            message: format!(
                "the synthetic folder's classes are not the dataset's: synthetic [{}], dataset [{}]{}",
                classes.join(", "),
                data.vocab.join(", "),
                if unknown.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; unknown: {}",
                        unknown
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        });
    }
    let valid: HashSet<_> = data
        .valid
        .iter()
        .filter_map(|i| i.path.canonicalize().ok())
        .collect();
    let mut items = Vec::new();
    for class in &classes {
        let label = data.vocab.iter().position(|v| v == class).unwrap_or(0);
        let cdir = dir.join(class);
        let mut files: Vec<_> = std::fs::read_dir(&cdir)
            .map_err(|e| Error::io(&cdir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && has_image_extension(p))
            .collect();
        files.sort();
        for path in files {
            if path.canonicalize().is_ok_and(|p| valid.contains(&p)) {
                return Err(Error::Dataset {
                    path,
                    message:
                        "this synthetic image is also a validation image; refusing to train on it"
                            .into(),
                });
            }
            items.push(Item { path, label });
        }
    }
    if let Some(f) = fraction {
        if !(f >= 0.0 && f.is_finite()) {
            return Err(Error::Config(format!("`extra_fraction` {f} must be ≥ 0")));
        }
        items.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5EED));
        items.truncate((f * data.train.len() as f64).round() as usize);
    }
    let n = items.len();
    data.train.extend(items);
    data.synthetic += n;
    Ok(n)
}
