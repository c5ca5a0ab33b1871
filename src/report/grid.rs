//! Image grids with captions (`show_batch`, top losses), written as PNG.

use std::path::Path;

use image::{RgbImage, imageops::FilterType};
use plotters::prelude::*;

use crate::data::{Batch, Normalize};
use crate::error::{Error, Result};

/// One cell of a grid: a picture and its caption lines.
#[derive(Debug, Clone)]
pub struct Tile {
    /// The picture (scaled to the cell).
    pub image: RgbImage,
    /// Lines of text under it.
    pub caption: Vec<String>,
}

/// The images of a host batch, back in 0..255 RGB.
pub fn batch_images(batch: &Batch, normalize: &Normalize) -> Vec<RgbImage> {
    let s = batch.size;
    let plane = s * s;
    (0..batch.len())
        .map(|i| {
            let px = &batch.images[i * 3 * plane..(i + 1) * 3 * plane];
            RgbImage::from_fn(s as u32, s as u32, |x, y| {
                let at = y as usize * s + x as usize;
                image::Rgb(std::array::from_fn(|c| {
                    (normalize.denormalize(c, px[c * plane + at]) * 255.0)
                        .round()
                        .clamp(0.0, 255.0) as u8
                }))
            })
        })
        .collect()
}

/// Writes `tiles` as a grid of `cols` columns, each picture `cell` px wide, to `path` (PNG).
pub fn image_grid(tiles: &[Tile], cols: usize, cell: u32, path: &Path) -> Result<()> {
    let cols = cols.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let lines = tiles.iter().map(|t| t.caption.len()).max().unwrap_or(0) as u32;
    let (pad, line_h) = (6u32, 15u32);
    let (cw, ch) = (cell + pad, cell + pad + lines * line_h);
    let (w, h) = (cols as u32 * cw + pad, rows as u32 * ch + pad);
    let mut canvas = RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    for (i, tile) in tiles.iter().enumerate() {
        let filter = if tile.image.width() < cell {
            FilterType::Nearest
        } else {
            FilterType::Triangle
        };
        let pic = image::imageops::resize(&tile.image, cell, cell, filter);
        let (x, y) = (pad + (i % cols) as u32 * cw, pad + (i / cols) as u32 * ch);
        image::imageops::replace(&mut canvas, &pic, i64::from(x), i64::from(y));
    }
    super::plot::ensure_font();
    let mut buf = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let style = TextStyle::from(("sans-serif", 13).into_font()).color(&BLACK);
        for (i, tile) in tiles.iter().enumerate() {
            let x = (pad + (i % cols) as u32 * cw) as i32;
            let y = (pad + (i / cols) as u32 * ch + cell + 2) as i32;
            for (l, text) in tile.caption.iter().enumerate() {
                root.draw_text(text, &style, (x, y + l as i32 * line_h as i32))
                    .map_err(|e| Error::model(path, e.to_string()))?;
            }
        }
        root.present()
            .map_err(|e| Error::model(path, e.to_string()))?;
    }
    let img = RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::model(path, "bad grid buffer"))?;
    super::write_png(&img, path)
}
