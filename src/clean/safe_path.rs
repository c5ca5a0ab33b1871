//! Paths received from the review page, resolved only inside the dataset folder.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// `rel` joined to `root`, refused when it is absolute, climbs with `..`, or (through a symlink)
/// lands outside `root`.
pub fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf> {
    let refuse = |why: &str| Error::Config(format!("path {rel:?} refused: {why}"));
    let rel_path = Path::new(rel);
    if rel.is_empty() {
        return Err(refuse("empty"));
    }
    for c in rel_path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(refuse("contains '..'")),
            Component::RootDir | Component::Prefix(_) => return Err(refuse("absolute")),
        }
    }
    let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
    let joined = root.join(rel_path);
    let real = if joined.exists() {
        joined.canonicalize().map_err(|e| Error::io(&joined, e))?
    } else {
        let parent = joined.parent().ok_or_else(|| refuse("no parent folder"))?;
        let parent = parent.canonicalize().map_err(|e| Error::io(parent, e))?;
        parent.join(joined.file_name().ok_or_else(|| refuse("no file name"))?)
    };
    if !real.starts_with(&root) {
        return Err(refuse("leaves the dataset folder"));
    }
    Ok(joined)
}

/// `path` relative to `root`, with `/` separators (how the page names files).
pub fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_absolute_and_escaping_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("train/cat")).unwrap();
        std::fs::write(root.join("train/cat/a b ü.png"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"s").unwrap();
        assert!(resolve_inside(&root, "train/cat/a b ü.png").is_ok());
        assert!(
            resolve_inside(&root, "train/cat/new.png").is_ok(),
            "a new file inside"
        );
        for bad in [
            "../secret.txt",
            "train/../../secret.txt",
            "/etc/passwd",
            "",
            "train/cat/../../../secret.txt",
        ] {
            let err = resolve_inside(&root, bad).unwrap_err().to_string();
            assert!(err.contains("refused"), "{bad}: {err}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path(), root.join("train/escape")).unwrap();
            let err = resolve_inside(&root, "train/escape/secret.txt").unwrap_err();
            assert!(
                err.to_string().contains("leaves the dataset folder"),
                "{err}"
            );
        }
    }
}
