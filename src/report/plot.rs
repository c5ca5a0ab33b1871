//! PNG plots drawn with plotters: loss curves and the confusion matrix.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::learner::Recorder;

/// Registers the embedded font once (plotters' `ab_glyph` backend has no system fonts).
pub(crate) fn ensure_font() {
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
    super::write_png(&img, path)
}

/// One value of every recorded batch against the batch number.
fn per_batch(
    recorder: &Recorder,
    value: impl Fn(&crate::learner::metrics::BatchRecord) -> f64,
) -> Vec<(f64, f64)> {
    recorder
        .batches
        .iter()
        .enumerate()
        .map(|(i, b)| (i as f64, value(b)))
        .collect()
}

/// `loss.png`: training loss per batch and validation loss at the end of each epoch.
pub fn plot_losses(recorder: &Recorder, path: &Path) -> Result<()> {
    let train: Vec<(f64, f64)> = per_batch(recorder, |b| b.loss);
    let per_epoch = |e: usize| recorder.batches.iter().filter(|b| b.epoch <= e).count() as f64;
    let valid: Vec<(f64, f64)> = recorder
        .epochs
        .iter()
        .filter_map(|m| Some((per_epoch(m.epoch), m.valid_loss.filter(|v| v.is_finite())?)))
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
    let values: Vec<Vec<f64>> = confusion
        .iter()
        .map(|row| row.iter().map(|&c| c as f64).collect())
        .collect();
    plot_matrix(&values, vocab, CONFUSION_TITLE, path, |v| format!("{v}"))
}

const CONFUSION_TITLE: &str = "confusion matrix (rows: actual, columns: predicted)";

/// A labelled square heat map with each value written in its cell (e.g. the correlation of
/// ensemble members' errors).
pub fn plot_heatmap(
    values: &[Vec<f64>],
    labels: &[String],
    title: &str,
    path: &Path,
) -> Result<()> {
    plot_matrix(values, labels, title, path, |v| format!("{v:.2}"))
}

/// `confusion.png` with each row divided by its total (fastai's `normalize=True`).
pub fn plot_confusion_normalized(rows: &[Vec<f64>], vocab: &[String], path: &Path) -> Result<()> {
    plot_matrix(rows, vocab, CONFUSION_TITLE, path, |v| format!("{v:.2}"))
}

fn plot_matrix(
    confusion: &[Vec<f64>],
    vocab: &[String],
    title: &str,
    path: &Path,
    fmt: impl Fn(f64) -> String,
) -> Result<()> {
    let k = vocab.len() as i32;
    let max = confusion
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(1e-12);
    let (cell, left, top) = (48i32, 150i32, 50i32);
    let bottom = 150;
    let (w, h) = (
        (left + cell * k + 20) as u32,
        (top + cell * k + bottom) as u32,
    );
    render_png(path, (w, h), |root| {
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        let label = TextStyle::from(("sans-serif", 15).into_font());
        root.draw(&Text::new(
            title,
            (10, 15),
            TextStyle::from(("sans-serif", 18).into_font()),
        ))
        .map_err(err)?;
        for (a, row) in confusion.iter().enumerate() {
            let y = top + a as i32 * cell;
            let anchor = plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Right,
                plotters::style::text_anchor::VPos::Center,
            );
            root.draw(&Text::new(
                vocab[a].clone(),
                (left - 8, y + cell / 2),
                label.clone().pos(anchor),
            ))
            .map_err(err)?;
            for (p, &count) in row.iter().enumerate() {
                let x = left + p as i32 * cell;
                let t = count / max;
                let color = RGBColor(
                    (255.0 * (1.0 - t)) as u8,
                    (255.0 * (1.0 - 0.6 * t)) as u8,
                    255,
                );
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    color.filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    RGBColor(200, 200, 200),
                ))
                .map_err(err)?;
                let text_color = if t > 0.5 { WHITE } else { BLACK };
                let center = plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                );
                root.draw(&Text::new(
                    fmt(count),
                    (x + cell / 2, y + cell / 2),
                    label.clone().color(&text_color).pos(center),
                ))
                .map_err(err)?;
            }
        }
        for (p, name) in vocab.iter().enumerate() {
            let x = left + p as i32 * cell + cell / 2 - 8;
            let style = label.clone().transform(FontTransform::Rotate90);
            root.draw(&Text::new(name.clone(), (x, top + k * cell + 8), style))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// `lr.png`: the learning rate (top group) and momentum used at every batch.
pub fn plot_schedule(recorder: &Recorder, path: &Path) -> Result<()> {
    let lr: Vec<(f64, f64)> = per_batch(recorder, |b| b.lr);
    let mom: Vec<(f64, f64)> = per_batch(recorder, |b| b.mom);
    let x_max = (lr.len() as f64).max(1.0);
    let lr_max = lr.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-12) * 1.05;
    let (m_lo, m_hi) = mom
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let (m_lo, m_hi) = if m_lo.is_finite() && m_hi > m_lo {
        (m_lo - 0.01, m_hi + 0.01)
    } else {
        (0.0, 1.0)
    };
    render_png(path, (1000, 420), |root| {
        let (left, right) = root.split_horizontally(500);
        for (area, series, range, name) in [
            (left, lr, (0.0, lr_max), "learning rate"),
            (right, mom, (m_lo, m_hi), "momentum"),
        ] {
            let mut chart = ChartBuilder::on(&area)
                .caption(name, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(70)
                .build_cartesian_2d(0.0..x_max, range.0..range.1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("batch")
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(series, &BLUE))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// `lr_find.png`: smoothed loss against the learning rate (log axis) with each suggestion marked.
pub fn plot_lr_find(result: &crate::learner::lr_find::LrFind, path: &Path) -> Result<()> {
    let n = result
        .lrs
        .len()
        .saturating_sub(5)
        .max(2)
        .min(result.lrs.len());
    let pts: Vec<(f64, f64)> = result.lrs[..n]
        .iter()
        .copied()
        .zip(result.losses[..n].iter().copied())
        .collect();
    let (x0, x1) = (
        pts.first().map_or(1e-7, |p| p.0),
        pts.last().map_or(10.0, |p| p.0).max(1e-6),
    );
    let (y0, y1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let (y0, y1) = if y1 > y0 {
        (y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0))
    } else {
        (0.0, 1.0)
    };
    let s = result.suggestions;
    let marks = [
        ("valley", s.valley, RED),
        ("steep", s.steep, GREEN),
        ("minimum", s.minimum, MAGENTA),
        ("slide", s.slide, CYAN),
    ];
    let interp = |lr: f64| {
        let i = pts.iter().position(|p| p.0 >= lr).unwrap_or(pts.len() - 1);
        pts[i].1
    };
    render_png(path, (800, 500), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("LR finder", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("learning rate (log)")
            .y_desc("smoothed loss")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(pts.clone(), &BLUE))
            .map_err(|e| e.to_string())?;
        for (name, lr, color) in marks {
            chart
                .draw_series(std::iter::once(Circle::new(
                    (lr, interp(lr)),
                    6,
                    color.filled(),
                )))
                .map_err(|e| e.to_string())?
                .label(format!("{name} {lr:.1e}"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A scatter plot of `points` (optionally labelled), with the line y = x when `diagonal`
/// (predicted against actual values, embedding projections).
pub fn plot_scatter(
    points: &[(f64, f64)],
    labels: Option<&[String]>,
    (title, x_desc, y_desc): (&str, &str, &str),
    diagonal: bool,
    path: &Path,
) -> Result<()> {
    let span = |f: fn(&(f64, f64)) -> f64| {
        let (lo, hi) = points
            .iter()
            .map(f)
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if lo.is_finite() && hi > lo {
            let pad = 0.08 * (hi - lo);
            (lo - pad, hi + pad)
        } else if lo.is_finite() {
            (lo - 1.0, lo + 1.0)
        } else {
            (0.0, 1.0)
        }
    };
    let (mut x, mut y) = (span(|p| p.0), span(|p| p.1));
    if diagonal {
        let (lo, hi) = (x.0.min(y.0), x.1.max(y.1));
        (x, y) = ((lo, hi), (lo, hi));
    }
    render_png(path, (640, 560), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        if diagonal {
            chart
                .draw_series(LineSeries::new([(x.0, x.0), (x.1, x.1)], &RED))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 3, BLUE.mix(0.5).filled())),
            )
            .map_err(|e| e.to_string())?;
        if let Some(labels) = labels {
            chart
                .draw_series(
                    points
                        .iter()
                        .zip(labels)
                        .map(|(&p, l)| Text::new(l.clone(), p, ("sans-serif", 13).into_font())),
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// A horizontal bar chart of `values` by `names`, largest first (feature importance).
pub fn plot_bars(names: &[String], values: &[f64], title: &str, path: &Path) -> Result<()> {
    let n = names.len().max(1);
    let hi = values.iter().copied().fold(0.0f64, f64::max).max(1e-12) * 1.1;
    let lo = values.iter().copied().fold(0.0f64, f64::min) * 1.1;
    render_png(path, (720, 80 + 28 * n as u32), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(170)
            .build_cartesian_2d(lo..hi, 0.0..n as f64)
            .map_err(|e| e.to_string())?;
        let label = |y: &f64| {
            let i = y.floor() as usize;
            names
                .get(n.saturating_sub(1 + i))
                .cloned()
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                if (y.fract() - 0.5).abs() < 0.01 {
                    label(y)
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let y = (n - 1 - i) as f64;
                Rectangle::new([(0.0, y + 0.15), (v, y + 0.85)], BLUE.mix(0.7).filled())
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Several named line series on one chart (e.g. a GAN's critic and generator losses per step).
pub fn plot_lines(
    series: &[(&str, Vec<(f64, f64)>)],
    (title, x_desc): (&str, &str),
    path: &Path,
) -> Result<()> {
    let all = || {
        series
            .iter()
            .flat_map(|s| s.1.iter())
            .filter(|p| p.1.is_finite())
    };
    let x_max = all().map(|p| p.0).fold(1.0f64, f64::max);
    let (lo, hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    } else {
        (-1.0, 1.0)
    };
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN];
    render_png(path, (800, 500), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, lo..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(points.clone(), color))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}
