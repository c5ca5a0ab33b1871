//! `RunDir`: the one type that owns a run folder — making it (or refusing an existing one),
//! the names of the files every run shares, its settings file, and the shared finish: the log,
//! the loss and learning-rate plots, and the report page (joined by `report` from the sections
//! that features hand in). Image, tabular, GAN and ensemble runs all use it.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data::{Skipped, skipped_report};
use crate::error::{Error, Result};
use crate::io::{read_json, write_atomic, write_json};
use crate::learner::Recorder;
use crate::report::html::{self, Section};
use crate::report::plot::{plot_losses, plot_schedule};
use crate::report::sections;

/// The folder every run folder is made in, relative to the working directory.
pub const RUNS: &str = "runs";
/// The run's settings (what resuming replays).
pub const SETTINGS: &str = "train.json";
/// Per-epoch metrics and per-batch loss, learning rate and momentum.
pub const LOG: &str = "log.json";
/// Loss curves.
pub const LOSS_PLOT: &str = "loss.png";
/// Learning rate and momentum at every batch.
pub const LR_PLOT: &str = "lr.png";
/// The LR range test's record and plot.
pub const LR_FIND: &str = "lr_find.json";
/// The LR range test's plot.
pub const LR_FIND_PLOT: &str = "lr_find.png";
/// Every file that was not used, and why.
pub const SKIPPED: &str = "skipped.txt";
/// The last epoch's weights and optimizer state.
pub const CHECKPOINT: &str = "checkpoint";
/// The report page.
pub const REPORT: &str = "report.html";
/// The report's sections, one HTML fragment each (`NN-id.html`).
pub const SECTIONS: &str = "report";

/// A run folder taken by one process ([`RunDir::lock`]); dropping it releases the folder.
#[derive(Debug)]
pub struct RunLock(#[allow(dead_code)] Option<std::fs::File>);

/// Whether `e` says the file system cannot lock (rather than that another process holds it).
pub fn unsupported(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::ENOLCK | libc::EBADF | libc::EOPNOTSUPP | libc::EINVAL)
        )
}

/// A run folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDir {
    path: PathBuf,
    /// Made by this value (so [`RunDir::fail`] may remove it).
    created: bool,
}

/// Refuses a run name that is not one plain path component (`a/b`, `..`, `/abs`, empty).
pub fn check_name(name: &str) -> Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if !name.contains(['/', '\\']) => Ok(()),
        _ => Err(Error::Config(format!(
            "`name` {name:?}: a run name is one folder name under {RUNS}/ (no '/', '..' or absolute path)"
        ))),
    }
}

/// A run folder name from the current time, `YYYYMMDD-HHMMSS`.
pub fn timestamp_name() -> String {
    let s = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    s.trim_end_matches('Z')
        .replace(['-', ':'], "")
        .replace('T', "-")
}

/// The path of the run named `name` (or a timestamp) under `runs/`, the name checked.
pub fn run_path(name: Option<&str>) -> Result<PathBuf> {
    let name = match name {
        Some(n) => {
            check_name(n)?;
            n.to_string()
        }
        None => timestamp_name(),
    };
    Ok(Path::new(RUNS).join(name))
}

/// Where this process writes the run `run_dir`: the folder itself on rank 0 or alone; on another
/// data-parallel rank a private temporary folder (removed with the returned guard), a copy of
/// the run's files when it `resumes` — every rank computes the same run, rank 0 alone keeps it.
pub fn rank_folder(run_dir: &Path, resumes: bool) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    let prefix = format!("fastvision-rank{}-", crate::distributed::rank());
    // Rank 0 writes the folder itself; another rank's run inside its own private folder (an
    // ensemble's member) stays there.
    let private = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&prefix))
    };
    if crate::distributed::is_main() || run_dir.ancestors().any(private) {
        return Ok((None, run_dir.to_path_buf()));
    }
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let private = tmp.path().join("run");
    if resumes {
        crate::io::copy_folder(run_dir, &private)?;
    }
    Ok((Some(tmp), private))
}

impl RunDir {
    /// Refuses `path` as a new run folder when it exists (it may hold another run): a run checks
    /// this before reading its data, and creates the folder only once the work can start.
    pub fn refuse_existing(path: &Path) -> Result<()> {
        if path.exists() {
            return Err(Error::Config(format!(
                "run folder {} already exists: choose another `name`, or resume it",
                path.display()
            )));
        }
        Ok(())
    }

    /// Makes the new run folder `path`; an existing one is refused (it may hold another run).
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        Self::refuse_existing(&path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        // `create_dir` fails on an existing folder: of two runs racing for one name, one wins.
        std::fs::create_dir(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Config(format!(
                "run folder {} already exists: choose another `name`, or resume it",
                path.display()
            )),
            _ => Error::io(&path, e),
        })?;
        Ok(Self {
            path,
            created: true,
        })
    }

    /// The existing run folder `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        if !path.is_dir() {
            return Err(Error::io(
                &path,
                if path.exists() {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a run folder (it is a file)",
                    )
                } else {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such run folder (it does not exist)",
                    )
                },
            ));
        }
        Ok(Self {
            path,
            created: false,
        })
    }

    /// Takes the folder for this process alone while the returned guard lives: one writer per
    /// run folder (a second `train`, resume or playbook on it is refused, not interleaved). The
    /// operating system drops the lock when the process ends, however it ends.
    pub fn lock(&self) -> Result<RunLock> {
        let dir = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        match dir.try_lock() {
            Ok(()) => Ok(RunLock(Some(dir))),
            // A file system without locks on folders (some network ones): unlocked, as before.
            Err(std::fs::TryLockError::Error(e)) if unsupported(&e) => Ok(RunLock(None)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::io(
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "in use by another process (a training, resume or playbook writing to it): wait for it to end",
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&self.path, e)),
        }
    }

    /// What a failed run leaves: a folder this value made, with no finished epoch (`kept` false),
    /// is removed so it does not block the name; otherwise the folder stays and the error says
    /// that it can be resumed or removed.
    pub fn fail(&self, error: Error, kept: bool) -> Error {
        if self.created && !kept {
            let _ = std::fs::remove_dir_all(&self.path);
            return error;
        }
        Error::RunKept {
            run: self.path.clone(),
            source: Box::new(error),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the run's file `name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Where the checkpoint lives.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.file(CHECKPOINT)
    }

    /// Writes the run's settings (`train.json`).
    pub fn write_settings<T: Serialize>(&self, settings: &T) -> Result<()> {
        write_json(&self.file(SETTINGS), settings)
    }

    /// Reads the run's settings (`train.json`).
    pub fn read_settings<T: DeserializeOwned>(&self) -> Result<T> {
        read_json(&self.file(SETTINGS))
    }

    /// Writes `skipped.txt`: every file that was not used, and why.
    pub fn write_skipped(&self, skipped: &[Skipped]) -> Result<()> {
        write_atomic(&self.file(SKIPPED), skipped_report(skipped).as_bytes())
    }

    /// The shared end of a training run: `log.json`, `loss.png`, `lr.png`, and the settings and
    /// training sections of the report (`settings` as saved). Returns the report's path.
    pub fn finish<T: Serialize>(&self, recorder: &Recorder, settings: &T) -> Result<PathBuf> {
        write_json(&self.file(LOG), recorder)?;
        plot_losses(recorder, &self.file(LOSS_PLOT))?;
        plot_schedule(recorder, &self.file(LR_PLOT))?;
        let json = serde_json::to_string_pretty(settings)
            .map_err(|e| Error::model(self.file(SETTINGS), e.to_string()))?;
        self.write_section(&html::settings_section(&json))?;
        self.write_section(&html::training_section(recorder))?;
        self.add_section(plots_section(
            self,
            &[
                (LOSS_PLOT, "Losses"),
                (LR_PLOT, "Learning rate and momentum"),
                (LR_FIND_PLOT, "LR finder"),
            ],
        ))
    }

    /// Adds (or replaces) a section of the report and writes the page again; returns its path.
    pub fn add_section(&self, section: Section) -> Result<PathBuf> {
        self.write_section(&section)?;
        self.render()
    }

    fn write_section(&self, s: &Section) -> Result<()> {
        sections::store(&self.file(SECTIONS), s)
    }

    /// The sections stored in the run folder. A folder written before sections existed gets its
    /// settings, training and plot sections from its own files.
    fn sections(&self) -> Result<Vec<Section>> {
        if let Some(stored) = sections::stored(&self.file(SECTIONS))? {
            return Ok(stored);
        }
        let mut out = Vec::new();
        if let Ok(json) = std::fs::read_to_string(self.file(SETTINGS)) {
            out.push(html::settings_section(&json));
        }
        if let Ok(rec) = read_json::<Recorder>(&self.file(LOG)) {
            out.push(html::training_section(&rec));
        }
        for (f, t) in [
            (LOSS_PLOT, "Losses"),
            (LR_PLOT, "Learning rate and momentum"),
        ] {
            if self.file(f).is_file() {
                out.push(Section::new(30, f, html::image(f, t, 2)));
            }
        }
        Ok(out)
    }

    /// Writes `report.html` from the stored sections; returns its path.
    pub fn render(&self) -> Result<PathBuf> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let page = html::page(&format!("Run {name}"), &self.sections()?);
        let path = self.file(REPORT);
        write_atomic(&path, page.as_bytes())?;
        Ok(path)
    }
}

/// A section of the plots among `files` that the run folder holds.
pub fn plots_section(run: &RunDir, files: &[(&str, &str)]) -> Section {
    let body: String = files
        .iter()
        .filter(|(f, _)| run.file(f).is_file())
        .map(|(f, t)| html::image(f, t, 2))
        .collect();
    Section::new(30, "plots", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_are_one_folder_name() {
        for bad in ["../x", "a/b", "/abs/path", "..", "", ".", "a\\b"] {
            assert!(check_name(bad).is_err(), "{bad:?} refused");
        }
        for good in ["demo", "demo-1", "20261130-101500", "my.run"] {
            assert!(check_name(good).is_ok(), "{good:?} accepted");
        }
    }

    #[test]
    fn a_run_failing_before_its_first_epoch_leaves_no_folder_and_a_later_one_says_how_to_resume() {
        let dir = tempfile::tempdir().unwrap();
        let early = RunDir::create(dir.path().join("early")).unwrap();
        let err = early.fail(Error::Config("boom".into()), false);
        assert_eq!(err.to_string(), "invalid setting: boom");
        assert!(!dir.path().join("early").exists(), "the name is free again");
        let late = RunDir::create(dir.path().join("late")).unwrap();
        let err = late.fail(Error::Config("boom".into()), true).to_string();
        assert!(dir.path().join("late").is_dir(), "kept");
        assert!(err.contains("boom") && err.contains("resume it"), "{err}");
        let opened = RunDir::open(dir.path().join("late")).unwrap();
        opened.fail(Error::Config("boom".into()), false);
        assert!(
            dir.path().join("late").is_dir(),
            "a folder it did not make is never removed"
        );
    }

    #[test]
    fn an_existing_folder_is_refused_and_sections_make_one_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let run = RunDir::create(&path).unwrap();
        assert!(RunDir::create(&path).is_err());
        run.add_section(Section::new(40, "b", "<p>second</p>".into()))
            .unwrap();
        let page = run
            .add_section(Section::new(10, "a", "<p>first</p>".into()))
            .unwrap();
        let text = std::fs::read_to_string(page).unwrap();
        let (a, b) = (text.find("first").unwrap(), text.find("second").unwrap());
        assert!(a < b, "sections in order: {text}");
    }
}
