//! Every file the project writes goes through here: the bytes go into a uniquely named temporary
//! file in the target's folder, which is then renamed onto the target, so a reader never sees a
//! half-written file and no file of the user's (say `model.tmp` beside the target) is touched.
//! [`write_new`] never replaces anything; [`write_atomic`] replaces only the project's own files
//! (inside a run folder it made). Also JSON read/write with errors that name the file, and the
//! one way files are opened for reading: regular files only (a FIFO, socket or device named like
//! a file is refused without blocking), with a cap on what is read.

use std::io::{Read, Write};
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
    // tempfile's error names the temporary file; the user knows only the folder.
    builder.tempfile_in(dir).map_err(|e| {
        let kind = e.kind();
        Error::io(
            dir,
            std::io::Error::new(kind, format!("cannot write a file in this folder ({kind})")),
        )
    })
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

/// The most a settings or state file (JSON) is read: far more than any fastvision writes (a
/// checkpoint's record of a very long run, a wide table's vocabularies) and still a bound.
pub const MAX_JSON_BYTES: u64 = 1 << 30;

/// What kind of file system entry `meta` describes, in words, for an error.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file (links to one are followed), with its size.
/// A FIFO, socket, device or folder is refused at once: the file is opened without blocking and
/// its type checked on the open handle, so nothing waits on a writer or reads without end.
pub fn open_regular(path: &Path) -> std::io::Result<(std::fs::File, u64)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", kind_of(&meta)),
        ));
    }
    Ok((file, meta.len()))
}

/// Copies the folder `from` (its regular files and folders; links and special files are left
/// out) to the new folder `to`.
pub fn copy_folder(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(from).to_path_buf();
            Error::io(path, e.into())
        })?;
        let rel = entry.path().strip_prefix(from).unwrap_or(Path::new(""));
        let dest = to.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// Checks that `path` is a regular file (links followed) before its name is handed to a
/// library that opens it itself; the error names the path.
pub fn check_regular(path: &Path) -> Result<()> {
    open_regular(path).map(drop).map_err(|e| Error::io(path, e))
}

/// Reads the regular file `path` whole, refusing one larger than `limit` bytes (`what` says
/// what the file is, for the message) before reading it.
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path).map_err(|e| Error::io(path, e))?;
    let too_large = || {
        Error::model(
            path,
            format!("{len} bytes: more than {what} can need ({limit} bytes at most)"),
        )
    };
    if len > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_limited`] as text; bytes that are not UTF-8 are an error naming the file.
pub fn read_text(path: &Path, limit: u64, what: &str) -> Result<String> {
    String::from_utf8(read_limited(path, limit, what)?)
        .map_err(|_| Error::model(path, "not UTF-8 text"))
}

/// Reads the JSON file `path`; a missing file, or content of another shape, is an error naming it.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = read_limited(path, MAX_JSON_BYTES, "a settings file")?;
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

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_without_blocking_and_sizes_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let err = read_json::<Vec<i32>>(&fifo).unwrap_err().to_string();
        assert!(err.contains("x.json") && err.contains("FIFO"), "{err}");
        let err = read_limited(Path::new("/dev/zero"), 10, "a test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/zero") && err.contains("device"), "{err}");
        let err = check_regular(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a folder"), "{err}");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 100]).unwrap();
        let err = read_limited(&big, 10, "a test").unwrap_err().to_string();
        assert!(
            err.contains("100 bytes") && err.contains("10 bytes at most"),
            "{err}"
        );
        assert_eq!(read_limited(&big, 100, "a test").unwrap().len(), 100);
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
