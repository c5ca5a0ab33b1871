//! The labelled images a cleaning or interpretation command works on, labelled in a model's vocab.

use std::path::{Path, PathBuf};

use crate::data::{ImageFolder, Item, Skipped, SplitConfig};
use crate::error::{Error, Result};
use crate::vision::TrainConfig;

/// Which part of the dataset to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// The training images.
    Train,
    /// The validation images.
    #[default]
    Valid,
    /// Both.
    All,
}

/// A run's dataset: `dir` (or the folder the run trained on), split as the run split it.
pub fn run_dataset(config: &TrainConfig, dir: Option<&Path>) -> Result<ImageFolder> {
    let root: PathBuf = match dir {
        Some(d) => d.into(),
        None => match &config.data {
            Some(d) => d.clone(),
            None => crate::data::demo::demo_path()?,
        },
    };
    ImageFolder::from_folder(
        &root,
        SplitConfig {
            valid_pct: config.valid_pct,
            seed: config.seed,
        },
    )
}

/// The items of `split`, relabelled into `vocab` by class name (an unknown class is an error
/// naming its folder), and the files skipped while reading.
pub fn items_in_vocab(
    data: &ImageFolder,
    split: Split,
    vocab: &[String],
) -> Result<(Vec<Item>, Vec<Skipped>)> {
    let chosen: Vec<&Item> = match split {
        Split::Train => data.train.iter().collect(),
        Split::Valid => data.valid.iter().collect(),
        Split::All => data.train.iter().chain(&data.valid).collect(),
    };
    let items = chosen
        .into_iter()
        .map(|item| {
            let name = &data.vocab[item.label];
            let label = vocab
                .iter()
                .position(|v| v == name)
                .ok_or_else(|| Error::Dataset {
                    path: item.path.parent().unwrap_or(&data.root).into(),
                    message: format!("class {name:?} is not one the model knows"),
                })?;
            Ok(Item {
                path: item.path.clone(),
                label,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((items, data.skipped.clone()))
}
