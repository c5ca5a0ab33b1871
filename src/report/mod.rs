//! Reports: PNG plots and image grids of a run, and its HTML page joined from sections.

pub mod grid;
pub mod html;
pub mod plot;
pub mod sections;

use std::path::Path;

use crate::error::{Error, Result};

/// `img` encoded as PNG (`path` names the file it is meant for, in errors).
pub fn png_bytes(img: &image::DynamicImage, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|e| Error::model(path, e.to_string()))?;
    Ok(bytes.into_inner())
}

/// Writes `img` as a PNG file at `path` through [`crate::io::write_atomic`] (reports and plots
/// belong to the run folder that holds them).
pub fn write_png(img: &image::RgbImage, path: &Path) -> Result<()> {
    let bytes = png_bytes(&image::DynamicImage::ImageRgb8(img.clone()), path)?;
    crate::io::write_atomic(path, &bytes)
}
