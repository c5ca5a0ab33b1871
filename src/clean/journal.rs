//! Moving files out of a dataset without ever deleting them: quarantine, relabel and undo,
//! every move appended to a journal.
//!
//! Nothing inside the quarantine folder (the folder itself, the journal, a quarantined file), by
//! its name or through a link, can be kept, quarantined or relabelled: only an undo moves a file
//! out of it, so the journal stays whole and every move stays undoable.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::safe_path::{relative, resolve_inside};
use crate::error::{Error, Result};

/// Folder (inside the dataset) that holds quarantined files and the journal.
pub const QUARANTINE_DIR: &str = ".fastvision-quarantine";
/// The journal file, one JSON object per line.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// What a journal entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Moved into the quarantine folder (the review page's "Delete").
    Quarantine,
    /// Moved to another class folder.
    Relabel,
    /// Reviewed and kept where it is.
    Keep,
    /// Moved back: the reverse of entry `undoes`.
    Undo,
}

/// One line of the journal; paths are relative to the dataset folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the journal (0-based).
    pub seq: usize,
    /// When, RFC 3339.
    pub time: String,
    /// What happened.
    pub action: Action,
    /// The file's path before.
    pub from: String,
    /// The file's path after.
    pub to: String,
    /// For an undo, the entry it reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<usize>,
}

/// The journal of a dataset folder, and the moves it records.
#[derive(Debug, Clone)]
pub struct Journal {
    root: PathBuf,
}

impl Journal {
    /// The journal of the dataset in `root`.
    pub fn new(root: &Path) -> Result<Self> {
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        Ok(Self { root })
    }

    /// The dataset folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The journal file.
    pub fn path(&self) -> PathBuf {
        self.root.join(QUARANTINE_DIR).join(JOURNAL_FILE)
    }

    /// Every entry so far, oldest first.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let path = self.path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = crate::io::read_text(&path, 256 << 20, "a journal")?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| Error::Config(format!("{}: bad entry: {e}", path.display())))
            })
            .collect()
    }

    fn append(&self, action: Action, from: &str, to: &str, undoes: Option<usize>) -> Result<Entry> {
        let entry = Entry {
            seq: self.entries()?.len(),
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            action,
            from: from.into(),
            to: to.into(),
            undoes,
        };
        let path = self.path();
        let dir = self.root.join(QUARANTINE_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let line = serde_json::to_string(&entry).map_err(|e| Error::Config(e.to_string()))?;
        writeln!(f, "{line}").map_err(|e| Error::io(&path, e))?;
        f.sync_all().map_err(|e| Error::io(&path, e))?;
        Ok(entry)
    }

    /// Takes the quarantine folder (made if needed) for this action alone, until the returned
    /// handle is dropped: two cleaners (a review page and `clean`, two notebooks) never
    /// interleave a move and its journal line.
    fn exclusive(&self) -> Result<std::fs::File> {
        let dir = self.root.join(QUARANTINE_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let handle = std::fs::File::open(&dir).map_err(|e| Error::io(&dir, e))?;
        match handle.lock() {
            Err(e) if !crate::run_dir::unsupported(&e) => Err(Error::io(&dir, e)),
            // Locked, or a file system without locks on folders (then unlocked, as before).
            _ => Ok(handle),
        }
    }

    /// Moves `from` to `to` (both relative), refusing to replace an existing file.
    fn move_file(&self, from: &str, to: &str) -> Result<()> {
        let src = resolve_inside(&self.root, from)?;
        if !src.is_file() {
            return Err(Error::Config(format!("{from}: no such file")));
        }
        if let Some(parent) = self.root.join(to).parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let dst = resolve_inside(&self.root, to)?;
        if dst.exists() {
            return Err(Error::Config(format!(
                "{to} already exists: not overwriting it"
            )));
        }
        std::fs::rename(&src, &dst).map_err(|e| Error::io(&src, e))
    }

    /// Refuses `rel` when it names the quarantine folder or something inside it, by its name
    /// (any case, `.` parts skipped) or, through a link, by the real file or folder.
    fn refuse_quarantine(&self, rel: &str) -> Result<()> {
        let refused = || {
            Error::Config(format!(
                "path {rel:?} refused: it is in the quarantine folder {QUARANTINE_DIR}/, which \
                 holds the journal and quarantined files; only undo moves files out of it"
            ))
        };
        let first = rel.split(['/', '\\']).find(|p| !p.is_empty() && *p != ".");
        if first.is_some_and(|p| p.eq_ignore_ascii_case(QUARANTINE_DIR)) {
            return Err(refused());
        }
        let path = resolve_inside(&self.root, rel)?;
        let through_parent = path.parent().and_then(|p| {
            let name = path.file_name()?;
            Some(p.canonicalize().ok()?.join(name))
        });
        let real = path.canonicalize().ok();
        let inside = |real: &PathBuf| {
            real.strip_prefix(&self.root)
                .ok()
                .and_then(|r| r.components().next())
                .is_some_and(|c| c.as_os_str().eq_ignore_ascii_case(QUARANTINE_DIR))
        };
        if [through_parent, real].iter().flatten().any(inside) {
            return Err(refused());
        }
        Ok(())
    }

    /// Moves `rel` into the quarantine folder, at the same relative path.
    pub fn quarantine(&self, rel: &str) -> Result<Entry> {
        self.refuse_quarantine(rel)?;
        let _one_writer = self.exclusive()?;
        let to = format!("{QUARANTINE_DIR}/{}", normalise(rel)?);
        self.move_file(rel, &to)?;
        self.append(Action::Quarantine, rel, &to, None)
    }

    /// Moves `rel` from its class folder into the sibling folder `class`.
    pub fn relabel(&self, rel: &str, class: &str) -> Result<Entry> {
        if class.is_empty() || class.starts_with('.') || class.contains(['/', '\\']) {
            return Err(Error::Config(format!("{class:?} is not a class name")));
        }
        let rel = normalise(rel)?;
        self.refuse_quarantine(&rel)?;
        let _one_writer = self.exclusive()?;
        let (dir, file) = rel
            .rsplit_once('/')
            .ok_or_else(|| Error::Config(format!("{rel}: not inside a class folder")))?;
        let parent = dir
            .rsplit_once('/')
            .map(|(p, _)| format!("{p}/"))
            .unwrap_or_default();
        let to = format!("{parent}{class}/{file}");
        if !self.root.join(format!("{parent}{class}")).is_dir() {
            return Err(Error::Config(format!("no class folder {parent}{class}")));
        }
        self.move_file(&rel, &to)?;
        self.append(Action::Relabel, &rel, &to, None)
    }

    /// Records that `rel` was reviewed and kept.
    pub fn keep(&self, rel: &str) -> Result<Entry> {
        self.refuse_quarantine(rel)?;
        let _one_writer = self.exclusive()?;
        self.append(Action::Keep, rel, rel, None)
    }

    /// Moves back the most recent move not yet undone; `None` when nothing is left to undo.
    pub fn undo_last(&self) -> Result<Option<Entry>> {
        let _one_writer = self.exclusive()?;
        let entries = self.entries()?;
        let undone: Vec<usize> = entries.iter().filter_map(|e| e.undoes).collect();
        let last = entries.iter().rev().find(|e| {
            matches!(e.action, Action::Quarantine | Action::Relabel) && !undone.contains(&e.seq)
        });
        match last {
            None => Ok(None),
            Some(e) => {
                self.move_file(&e.to, &e.from)?;
                self.append(Action::Undo, &e.to, &e.from, Some(e.seq))
                    .map(Some)
            }
        }
    }

    /// Moves back every move not yet undone, newest first; returns the undo entries.
    pub fn undo_all(&self) -> Result<Vec<Entry>> {
        let mut done = Vec::new();
        while let Some(e) = self.undo_last()? {
            done.push(e);
        }
        Ok(done)
    }

    /// `path` (inside the dataset) as the journal names it.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let path = path.canonicalize().ok()?;
        relative(&self.root, &path)
    }
}

/// `rel` with `/` separators and no `.` parts, after the safety checks.
fn normalise(rel: &str) -> Result<String> {
    if rel.split('/').any(|p| p == "..") || rel.starts_with('/') {
        return Err(Error::Config(format!("path {rel:?} refused")));
    }
    Ok(rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cleaners_at_once_never_interleave_a_move_and_its_line() {
        let (dir, _) = dataset();
        for i in 0..60 {
            std::fs::write(dir.path().join(format!("train/dog/{i}.jpg")), b"x").unwrap();
        }
        std::thread::scope(|s| {
            for half in 0..2 {
                let root = dir.path();
                s.spawn(move || {
                    let j = Journal::new(root).unwrap();
                    for i in (half..60).step_by(2) {
                        j.quarantine(&format!("train/dog/{i}.jpg")).unwrap();
                    }
                });
            }
        });
        let j = Journal::new(dir.path()).unwrap();
        let seqs: Vec<usize> = j.entries().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..60).collect::<Vec<_>>());
        assert_eq!(j.undo_all().unwrap().len(), 60);
    }

    fn dataset() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        for class in ["cat", "dog"] {
            std::fs::create_dir_all(dir.path().join("train").join(class)).unwrap();
        }
        std::fs::write(dir.path().join("train/cat/1.png"), b"one").unwrap();
        std::fs::write(dir.path().join("train/cat/zwei ü.png"), b"two").unwrap();
        std::fs::write(dir.path().join("train/dog/1.png"), b"dog").unwrap();
        let j = Journal::new(dir.path()).unwrap();
        (dir, j)
    }

    #[test]
    fn quarantine_relabel_and_undo_move_files_and_journal_every_move() {
        let (dir, j) = dataset();
        let root = dir.path();
        j.quarantine("train/cat/1.png").unwrap();
        assert!(!root.join("train/cat/1.png").exists());
        assert_eq!(
            std::fs::read(root.join(".fastvision-quarantine/train/cat/1.png")).unwrap(),
            b"one"
        );
        j.relabel("train/cat/zwei ü.png", "dog").unwrap();
        assert!(root.join("train/dog/zwei ü.png").is_file());
        j.keep("train/dog/1.png").unwrap();
        let undone = j.undo_last().unwrap().unwrap();
        assert_eq!(
            (undone.from.as_str(), undone.undoes),
            ("train/dog/zwei ü.png", Some(1))
        );
        assert!(root.join("train/cat/zwei ü.png").is_file());
        assert_eq!(j.undo_all().unwrap().len(), 1);
        assert_eq!(std::fs::read(root.join("train/cat/1.png")).unwrap(), b"one");
        assert!(j.undo_last().unwrap().is_none());
        let actions: Vec<Action> = j.entries().unwrap().iter().map(|e| e.action).collect();
        use Action::*;
        assert_eq!(actions, vec![Quarantine, Relabel, Keep, Undo, Undo]);
    }

    #[test]
    fn nothing_is_overwritten_and_bad_names_are_refused() {
        let (dir, j) = dataset();
        let err = j.relabel("train/cat/1.png", "dog").unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("train/dog/1.png")).unwrap(),
            b"dog"
        );
        assert!(j.relabel("train/cat/1.png", "../x").is_err());
        assert!(
            j.relabel("train/cat/1.png", "bird").is_err(),
            "no such class folder"
        );
        assert!(j.quarantine("../outside.png").is_err());
        assert!(
            j.entries().unwrap().is_empty(),
            "refused actions are not journaled"
        );
    }

    #[test]
    fn nothing_inside_the_quarantine_folder_can_be_moved_or_kept() {
        let (dir, j) = dataset();
        let root = dir.path();
        j.quarantine("train/cat/1.png").unwrap();
        let journal = std::fs::read(j.path()).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join(QUARANTINE_DIR), root.join("train/q")).unwrap();
        let mut paths = vec![
            ".fastvision-quarantine/journal.jsonl",
            "./.fastvision-quarantine//journal.jsonl",
            ".fastvision-quarantine",
            ".fastvision-quarantine/",
            ".FastVision-Quarantine/journal.jsonl",
            ".fastvision-quarantine/train/cat/1.png",
        ];
        if cfg!(unix) {
            paths.extend(["train/q/journal.jsonl", "train/q"]);
        }
        for rel in paths {
            let results = [
                j.quarantine(rel),
                j.relabel(rel, "dog"),
                j.relabel(rel, "cat"),
                j.keep(rel),
            ];
            for result in results {
                let err = result.unwrap_err().to_string();
                assert!(err.contains("quarantine folder"), "{rel}: {err}");
            }
        }
        assert_eq!(
            std::fs::read(j.path()).unwrap(),
            journal,
            "journal untouched"
        );
        assert!(
            root.join(".fastvision-quarantine/train/cat/1.png")
                .is_file()
        );
        assert!(!root.join("cat").exists() && !root.join("dog").exists());
        let undone = j.undo_last().unwrap().unwrap();
        assert_eq!(undone.undoes, Some(0));
        assert_eq!(std::fs::read(root.join("train/cat/1.png")).unwrap(), b"one");
    }
}
