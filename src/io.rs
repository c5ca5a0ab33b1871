//! Every file the project writes goes through here: the bytes go into a uniquely named temporary
//! file in the target's folder, which is then renamed onto the target, so a reader never sees a
//! half-written file and no file of the user's (say `model.tmp` beside the target) is touched.
//! [`write_new`] never replaces anything; [`write_atomic`] replaces only the project's own files
//! (inside a run folder it made). Also JSON read/write with errors that name the file.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A new temporary file in `path`'s folder (which must exist: the error names it).
fn temporary_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "folder does not exist"),
        ));
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(".fastvision-").suffix(".tmp");
    // The finished file is an ordinary one (0644 less the umask), not a private temporary.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))
}

/// A temporary file beside `path` holding `bytes`.
fn staged(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let mut tmp = temporary_beside(path)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .map_err(|e| Error::io(path, e))?;
    Ok(tmp)
}

/// Writes `bytes` to `path`, replacing it if it exists: for the project's own files only
/// (inside a run folder it created). The write is atomic: readers see the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    staged(path, bytes)?
        .persist(path)
        .map(drop)
        .map_err(|e| Error::io(path, e.error))
}

/// Like [`write_atomic`] for a writer that wants a file name (a library that streams a large
/// file itself): `write` fills the temporary file at the path it is given, which then replaces
/// `path`.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temporary_beside(path)?;
    write(tmp.path())?;
    tmp.persist(path)
        .map(drop)
        .map_err(|e| Error::io(path, e.error))
}

/// Writes `bytes` to `path`, which must not exist: an existing file is never replaced (the
/// error says so), and on any failure nothing is left behind.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    staged(path, bytes)?
        .persist_noclobber(path)
        .map(drop)
        .map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::io(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "already exists (a file that is not fastvision's own is never overwritten)",
                    ),
                )
            } else {
                Error::io(path, e.error)
            }
        })
}

/// Writes `value` as pretty JSON to `path` with [`write_atomic`].
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &to_json(path, value)?)
}

/// Writes `value` as pretty JSON to the new file `path` with [`write_new`].
pub fn write_json_new<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_new(path, &to_json(path, value)?)
}

/// `value` as pretty JSON; an error names the file it was meant for.
fn to_json<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::model(path, e.to_string()))
}

/// Reads the JSON file `path`; a missing file, or content of another shape, is an error naming it.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::model(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_never_replaces_one_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model.onnx");
        let mine = dir.path().join("model.tmp");
        std::fs::write(&mine, b"the user's").unwrap();
        write_new(&target, b"one").unwrap();
        let err = write_new(&target, b"two").unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"one");
        assert_eq!(std::fs::read(&mine).unwrap(), b"the user's");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn atomic_writes_replace_and_a_missing_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("log.json");
        write_json(&target, &vec![1, 2]).unwrap();
        write_json(&target, &vec![3]).unwrap();
        assert_eq!(read_json::<Vec<i32>>(&target).unwrap(), vec![3]);
        let missing = dir.path().join("nope/out.onnx");
        let err = write_new(&missing, b"x").unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("does not exist"),
            "{err}"
        );
    }
}
