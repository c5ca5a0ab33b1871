//! Robust image decoding: any supported format to upright RGB8, refusing bad files with a reason.

use std::io::{BufRead, BufReader, Cursor, Seek};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// File extensions treated as images (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

/// Largest accepted image, in pixels (PIL's decompression-bomb limit is of the same order).
pub const MAX_PIXELS: u64 = 89_478_485;

/// Largest accepted side, in pixels.
pub const MAX_SIDE: u32 = 65_535;

/// Largest accepted image file: an uncompressed 16-bit RGBA image of [`MAX_PIXELS`] fits.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

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
/// any pixel buffer is allocated. Only a regular file is opened (a FIFO or device named like an
/// image is refused without blocking), one over [`MAX_FILE_BYTES`] is refused before it is
/// read, and the decoder reads the file as it goes: its header first, then only what the
/// pixels need.
pub fn decode_rgb(path: &Path) -> Result<RgbImage, String> {
    let (file, len) = crate::io::open_regular(path).map_err(|e| format!("unreadable: {e}"))?;
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{len} bytes: larger than any image read ({MAX_FILE_BYTES} bytes at most)"
        ));
    }
    decode_from(BufReader::with_capacity(1 << 16, file), len)
}

/// Decodes an in-memory encoded image, as [`decode_rgb`] does for a file.
pub fn decode_rgb_bytes(bytes: &[u8]) -> Result<RgbImage, String> {
    decode_from(Cursor::new(bytes), bytes.len() as u64)
}

/// Decodes `len` bytes of an encoded image read from `source`.
fn decode_from(source: impl BufRead + Seek, len: u64) -> Result<RgbImage, String> {
    if len == 0 {
        return Err("empty file".into());
    }
    let mut reader = ImageReader::new(source)
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
