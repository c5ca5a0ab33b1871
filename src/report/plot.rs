//! PNG plots drawn with plotters: loss curves and the confusion matrix.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::learner::Recorder;

/// Registers the embedded font once (plotters' `ab_glyph` backend has no system fonts).
fn ensure_font() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

/// Renders with `draw` into a `w`×`h` RGB buffer and writes it to `path` as PNG.
pub fn render_png(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(
        DrawingArea<BitMapBackend, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    ensure_font();
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| Error::model(path, e.to_string()))?;
        draw(root.clone()).map_err(|e| Error::model(path, e))?;
        root.present()
            .map_err(|e| Error::model(path, e.to_string()))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| Error::model(path, "bad plot buffer"))?;
    img.save(path)
        .map_err(|e| Error::model(path, e.to_string()))
}

/// `loss.png`: training loss per batch and validation loss at the end of each epoch.
pub fn plot_losses(recorder: &Recorder, path: &Path) -> Result<()> {
    let train: Vec<(f64, f64)> = recorder
        .batches
        .iter()
        .enumerate()
        .map(|(i, b)| (i as f64, b.loss))
        .collect();
    let per_epoch = |e: usize| recorder.batches.iter().filter(|b| b.epoch <= e).count() as f64;
    let valid: Vec<(f64, f64)> = recorder
        .epochs
        .iter()
        .filter(|m| m.valid_loss.is_finite())
        .map(|m| (per_epoch(m.epoch), m.valid_loss))
        .collect();
    let finite = train
        .iter()
        .chain(&valid)
        .map(|p| p.1)
        .filter(|v| v.is_finite());
    let y_max = finite.fold(0.0f64, f64::max).max(1e-3) * 1.05;
    let x_max = (train.len() as f64).max(1.0);
    render_png(path, (800, 500), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("loss", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("batches processed")
            .y_desc("loss")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(train, &BLUE))
            .map_err(|e| e.to_string())?
            .label("train")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(valid.clone(), &RED))
            .map_err(|e| e.to_string())?
            .label("valid")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .draw_series(valid.iter().map(|&p| Circle::new(p, 4, RED.filled())))
            .map_err(|e| e.to_string())?;
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// `confusion.png`: counts of actual (rows) vs predicted (columns) classes.
pub fn plot_confusion(confusion: &[Vec<usize>], vocab: &[String], path: &Path) -> Result<()> {
    let k = vocab.len();
    let max = confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let side = (60 * k as u32 + 220).max(400);
    render_png(path, (side, side), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("confusion matrix", ("sans-serif", 22))
            .margin(10)
            .x_label_area_size(110)
            .y_label_area_size(110)
            .build_cartesian_2d(0..k, 0..k)
            .map_err(|e| e.to_string())?;
        let name = |i: &usize| vocab.get(*i).cloned().unwrap_or_default();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&name)
            .y_label_formatter(&|i: &usize| name(&(k.saturating_sub(1).saturating_sub(*i))))
            .x_desc("predicted")
            .y_desc("actual")
            .x_label_style(
                ("sans-serif", 13)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .draw()
            .map_err(|e| e.to_string())?;
        for (a, row) in confusion.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                let y = k - 1 - a;
                let t = count as f64 / max;
                let color = RGBColor(
                    (255.0 * (1.0 - t)) as u8,
                    (255.0 * (1.0 - 0.6 * t)) as u8,
                    255,
                );
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(p, y), (p + 1, y + 1)],
                        color.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                let text_color = if t > 0.5 { WHITE } else { BLACK };
                let style = ("sans-serif", 14).into_font().color(&text_color);
                chart
                    .draw_series(std::iter::once(Text::new(
                        count.to_string(),
                        (p, y + 1),
                        style,
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}
