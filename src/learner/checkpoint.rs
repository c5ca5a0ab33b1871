//! Checkpoints written atomically after every epoch, so an interrupted run can resume.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::callback::{Callback, FitState, LearnerView, Listener};
pub use super::fingerprint::DataFingerprint;
use super::metrics::Recorder;
use crate::error::{Error, Result};
use crate::io::write_atomic;

/// File that commits a checkpoint: it names the weight and optimizer files of the epoch.
pub const STATE_FILE: &str = "checkpoint.json";

/// What a checkpoint records besides weights and optimizer state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Epochs completed over the whole run.
    pub epochs_done: usize,
    /// Fit (stage) in progress, and epochs of it completed.
    pub stage: usize,
    /// Epochs of the current fit completed.
    pub stage_epochs_done: usize,
    /// Everything recorded so far.
    pub recorder: Recorder,
    /// Weight file, relative to the checkpoint folder.
    pub model_file: String,
    /// Optimizer file, relative to the checkpoint folder.
    pub optim_file: String,
    /// The classes and data the run trained on, so a resume on changed data is refused
    /// (checkpoints written before this was recorded have none).
    #[serde(default)]
    pub data: Option<DataFingerprint>,
}

/// Writes a checkpoint into its folder after every epoch, so an interrupted run can resume.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
    data: Option<DataFingerprint>,
}

impl Checkpoint {
    /// Checkpoints into `dir` (a run folder's `checkpoint/`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            data: None,
        }
    }

    /// Records `data` (the classes trained on) in every checkpoint.
    pub fn with_data(mut self, data: Option<DataFingerprint>) -> Self {
        self.data = data;
        self
    }
}

impl Listener for Checkpoint {}

impl<B> Callback<B> for Checkpoint {
    fn after_epoch_learner(&mut self, state: &FitState, learner: &dyn LearnerView) -> Result<()> {
        learner.save_checkpoint(&self.dir, state.epoch + 1, self.data.clone())
    }
}

/// Whether `name` (read from a checkpoint) is one file name, so the file stays in the folder.
fn own_file(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty()
        && path.file_name().is_some_and(|f| f == path.as_os_str())
        && !name.starts_with('.')
}

/// A record error of `path` in the user's words: `doing` says what was being done.
fn record_error(path: &Path, doing: &str, e: burn::store::RecordError) -> Error {
    let detail = match &e {
        burn::store::RecordError::Io(m) if doing.starts_with("writing") => m.clone(),
        burn::store::RecordError::Io(m) => format!("corrupt or unreadable checkpoint: {m}"),
        burn::store::RecordError::Validation(m) => {
            format!("the checkpoint does not fit this model: {m}")
        }
    };
    Error::model(path, format!("{doing}: {detail}"))
}

/// Writes the model, optimizer and state into `dir`: new files first, then `checkpoint.json`
/// by rename (the commit point), then the previous epoch's files are removed.
pub fn save<M: Module>(
    dir: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    mut state: CheckpointState,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let previous = load_state(dir).ok();
    state.model_file = format!("model-e{}.bpk", state.epochs_done);
    state.optim_file = format!("optim-e{}.bpk", state.epochs_done);
    let model_path = dir.join(&state.model_file);
    model
        .clone()
        .save_file(&model_path)
        .map_err(|e| record_error(&model_path, "writing the model", e))?;
    let optim_path = dir.join(&state.optim_file);
    optim
        .save(&optim_path)
        .map_err(|e| record_error(&optim_path, "writing the optimizer state", e))?;
    let json = serde_json::to_vec(&state).map_err(|e| Error::model(dir, e.to_string()))?;
    write_atomic(&dir.join(STATE_FILE), &json)?;
    if let Some(prev) = previous {
        for f in [prev.model_file, prev.optim_file] {
            if f != state.model_file && f != state.optim_file {
                let _ = std::fs::remove_file(dir.join(f));
            }
        }
    }
    Ok(())
}

/// The checkpoint a run folder's `--resume` continues from, or an error that says what is wrong:
/// the folder does not exist, it has no checkpoint (the run finished before checkpoints, or
/// never reached its first epoch), or the checkpoint is corrupt.
pub fn to_resume(run_dir: &Path, dir: &Path) -> Result<CheckpointState> {
    if !run_dir.is_dir() {
        return Err(Error::io(
            run_dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                if run_dir.exists() {
                    "not a folder"
                } else {
                    "does not exist"
                },
            ),
        ));
    }
    if !dir.join(STATE_FILE).exists() {
        return Err(Error::model(
            run_dir,
            format!(
                "no checkpoint to resume from ({} is missing)",
                dir.join(STATE_FILE).display()
            ),
        ));
    }
    load_state(dir)
}

/// Reads the committed checkpoint state of `dir`; the files it names must be in `dir`.
pub fn load_state(dir: &Path) -> Result<CheckpointState> {
    let path = dir.join(STATE_FILE);
    let bytes = crate::io::read_limited(&path, crate::io::MAX_JSON_BYTES, "a checkpoint")?;
    let state: CheckpointState = serde_json::from_slice(&bytes)
        .map_err(|e| Error::model(&path, format!("corrupt checkpoint: {e}")))?;
    for (field, name) in [
        ("model_file", &state.model_file),
        ("optim_file", &state.optim_file),
    ] {
        if !own_file(name) {
            return Err(Error::model(
                &path,
                format!(
                    "corrupt checkpoint: `{field}` {name:?} is not a file name in the checkpoint folder"
                ),
            ));
        }
    }
    Ok(state)
}

/// Loads the checkpoint of `dir` into `model` and `optim`.
pub fn load<M: Module>(
    dir: &Path,
    model: M,
    optim: ModuleOptimizer,
) -> Result<(M, ModuleOptimizer, CheckpointState)> {
    let state = load_state(dir)?;
    let model_path: PathBuf = dir.join(&state.model_file);
    crate::io::check_regular(&model_path)?;
    let model = model
        .try_load_file(&model_path)
        .map_err(|e| record_error(&model_path, "loading the model", e))?;
    let optim_path = dir.join(&state.optim_file);
    crate::io::check_regular(&optim_path)?;
    let optim = optim
        .load(&optim_path)
        .map_err(|e| record_error(&optim_path, "loading the optimizer state", e))?;
    Ok((model, optim, state))
}
