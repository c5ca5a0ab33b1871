//! Robust image decoding: any supported format to upright RGB8, refusing bad files with a reason.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// File extensions treated as images (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

/// Largest accepted image, in pixels (PIL's decompression-bomb limit is of the same order).
pub const MAX_PIXELS: u64 = 89_478_485;

/// Largest accepted side, in pixels.
pub const MAX_SIDE: u32 = 65_535;

/// Whether `path` has an image extension (case-insensitive).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes the file at `path` into an upright RGB8 image, or says why it cannot.
///
/// Grayscale, 16-bit, alpha and CMYK images become RGB8, EXIF orientation is applied, a GIF gives
/// its first frame, and an image whose header claims more than [`MAX_PIXELS`] is refused before
/// any pixel buffer is allocated.
pub fn decode_rgb(path: &Path) -> Result<RgbImage, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    decode_rgb_bytes(&bytes)
}

/// Decodes an in-memory encoded image, as [`decode_rgb`] does for a file.
pub fn decode_rgb_bytes(bytes: &[u8]) -> Result<RgbImage, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("unreadable: {e}"))?;
    if reader.format().is_none() {
        return Err("not an image (unrecognised format)".into());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(describe)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(format!("image has no pixels ({w}x{h})"));
    }
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!(
            "image too large ({w}x{h} pixels, limit {MAX_PIXELS})"
        ));
    }
    let orientation = decoder.orientation().map_err(describe)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(describe)?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

fn describe(e: image::ImageError) -> String {
    match e {
        image::ImageError::Limits(l) => format!("image too large ({l})"),
        image::ImageError::Unsupported(u) => format!("unsupported image: {u}"),
        other => format!("corrupt image: {other}"),
    }
}
