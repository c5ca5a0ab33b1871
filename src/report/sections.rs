//! A report's sections stored as HTML fragments in a folder (`NNN-id.html`, one per section),
//! so a later command adds its section without the first one's data, and the page is joined
//! from whatever the folder holds.

use std::path::Path;

use super::html::Section;
use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Stores `section` in the fragment folder `dir` (replacing a section of the same id and order).
pub fn store(dir: &Path, section: &Section) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_atomic(
        &dir.join(format!("{:03}-{}.html", section.order, section.id)),
        section.html.as_bytes(),
    )
}

/// The sections stored in `dir`, or `None` when it is not a fragment folder.
pub fn stored(dir: &Path) -> Result<Option<Vec<Section>>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some((order, id)) = stem.split_once('-') else {
            continue;
        };
        let (Ok(order), Some("html")) = (
            order.parse::<u16>(),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        let body = crate::io::read_text(&path, 64 << 20, "a report section")?;
        out.push(Section::new(order, id, body));
    }
    Ok(Some(out))
}
