//! The learned entity embeddings of a tabular run as reusable artefacts: one CSV per categorical
//! column (level, vector) with a 2-D PCA projection plot, and the start of a new model's
//! embeddings from an earlier run's, for the columns and levels both share.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use super::config::load_bundle;
use super::model::TabularModel;
use super::process::Processor;
use crate::error::{Error, Result};
use crate::report::plot::plot_scatter;

/// The embedding matrix of categorical input `i`, row-major `[levels, width]`.
pub fn embedding_rows(model: &TabularModel, i: usize) -> (Vec<f32>, usize) {
    let w = model.embeds[i].weight.val();
    let d = w.dims()[1];
    (
        w.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default(),
        d,
    )
}

/// Writes `<column>.csv` (level, e0, e1, …) and `<column>.png` (PCA projection) for every
/// categorical input of the run into `out`; returns the files written. Existing files are
/// replaced only inside the run folder (`RUN/embeddings`, the project's own); elsewhere an
/// existing file is an error and nothing is written.
pub fn export(run_dir: &Path, out: &Path, device: &Device) -> Result<Vec<PathBuf>> {
    let (model, bundle) = load_bundle(run_dir, device)?;
    let own = out.starts_with(run_dir);
    if !own {
        // Checked before anything is written: a refused export writes nothing.
        for name in bundle.processor.cat_inputs() {
            for ext in ["csv", "png"] {
                let path = out.join(format!("{}.{ext}", safe_name(&name)));
                if path.exists() {
                    return Err(Error::io(
                        &path,
                        std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            "already exists (a file that is not fastvision's own is never overwritten)",
                        ),
                    ));
                }
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut written = Vec::new();
    for (i, (name, levels)) in bundle
        .processor
        .cat_inputs()
        .iter()
        .zip(&bundle.processor.classes)
        .enumerate()
    {
        let (rows, d) = embedding_rows(&model, i);
        let safe = safe_name(name);
        let csv_path = out.join(format!("{safe}.csv"));
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["level".to_string()];
        header.extend((0..d).map(|j| format!("e{j}")));
        let err = |e: csv::Error| Error::model(&csv_path, e.to_string());
        w.write_record(&header).map_err(err)?;
        for (level, v) in levels.iter().zip(rows.chunks(d)) {
            let mut rec = vec![level.clone()];
            rec.extend(v.iter().map(|x| format!("{x:.6}")));
            w.write_record(&rec).map_err(err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| Error::model(&csv_path, e.to_string()))?;
        let png = out.join(format!("{safe}.png"));
        crate::io::write_atomic(&csv_path, &bytes)?;
        let points = pca_2d(&rows, d);
        plot_scatter(
            &points,
            Some(levels),
            (&format!("{name}: embeddings (PCA)"), "PC1", "PC2"),
            false,
            &png,
        )?;
        written.extend([csv_path, png]);
    }
    Ok(written)
}

/// A column name as a file name: letters, digits, `_` and `-` kept, the rest `_`.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Projects the rows of a `[n, d]` matrix on its first two principal components (power
/// iteration with deflation on the d×d covariance; d is at most 600).
pub fn pca_2d(rows: &[f32], d: usize) -> Vec<(f64, f64)> {
    let n = rows.len() / d.max(1);
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|r| f64::from(rows[r * d + j])).sum::<f64>() / n.max(1) as f64)
        .collect();
    let x: Vec<Vec<f64>> = (0..n)
        .map(|r| {
            (0..d)
                .map(|j| f64::from(rows[r * d + j]) - mean[j])
                .collect()
        })
        .collect();
    let mut cov = vec![vec![0.0; d]; d];
    for row in &x {
        for a in 0..d {
            for b in 0..d {
                cov[a][b] += row[a] * row[b];
            }
        }
    }
    let mut comps: Vec<Vec<f64>> = Vec::new();
    for k in 0..2.min(d) {
        let mut v: Vec<f64> = (0..d).map(|j| 1.0 + (j + k) as f64 * 0.1).collect();
        for _ in 0..200 {
            let mut w: Vec<f64> = (0..d)
                .map(|a| (0..d).map(|b| cov[a][b] * v[b]).sum())
                .collect();
            for c in &comps {
                let dot: f64 = w.iter().zip(c).map(|(p, q)| p * q).sum();
                w.iter_mut().zip(c).for_each(|(p, q)| *p -= dot * q);
            }
            let norm = w.iter().map(|p| p * p).sum::<f64>().sqrt();
            if norm < 1e-30 {
                break;
            }
            v = w.iter().map(|p| p / norm).collect();
        }
        comps.push(v);
    }
    x.iter()
        .map(|row| {
            let proj = |c: Option<&Vec<f64>>| {
                c.map_or(0.0, |c| row.iter().zip(c).map(|(p, q)| p * q).sum())
            };
            (proj(comps.first()), proj(comps.get(1)))
        })
        .collect()
}

/// Copies the earlier run `from`'s embedding rows into `model` for every categorical input and
/// level both share (same name, same width); returns the rows copied.
pub fn init_from(
    model: &mut TabularModel,
    processor: &Processor,
    from: &Path,
    device: &Device,
) -> Result<usize> {
    let (old, old_bundle) = load_bundle(from, &device.clone().without_autodiff())?;
    let old_names = old_bundle.processor.cat_inputs();
    let mut old_index: HashMap<&str, usize> = HashMap::new();
    for (j, n) in old_names.iter().enumerate() {
        old_index.entry(n.as_str()).or_insert(j); // the first of a repeated name, as before
    }
    let mut copied = 0;
    for (i, name) in processor.cat_inputs().iter().enumerate() {
        let Some(&j) = old_index.get(name.as_str()) else {
            continue;
        };
        let (src, d_old) = embedding_rows(&old, j);
        let (mut dst, d) = embedding_rows(model, i);
        if d != d_old {
            continue;
        }
        let old_levels: HashMap<&str, usize> = old_bundle.processor.classes[j]
            .iter()
            .enumerate()
            .map(|(s, l)| (l.as_str(), s))
            .collect();
        for (r, level) in processor.classes[i].iter().enumerate() {
            if let Some(&s) = old_levels.get(level.as_str()) {
                dst[r * d..(r + 1) * d].copy_from_slice(&src[s * d..(s + 1) * d]);
                copied += 1;
            }
        }
        let n = dst.len() / d;
        let dev = device.clone();
        model.embeds[i].weight = model.embeds[i]
            .weight
            .clone()
            .map(|_| Tensor::from_data(TensorData::new(dst, [n, d]), &dev));
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::pca_2d;

    #[test]
    fn pca_finds_the_direction_of_largest_spread() {
        // Points along (1, 1, 0) with a little spread along (0, 0, 1).
        let rows: Vec<f32> = (0..10)
            .flat_map(|i| {
                let t = i as f32 - 4.5;
                [t, t, 0.1 * (i % 2) as f32]
            })
            .collect();
        let p = pca_2d(&rows, 3);
        let spread1: f64 = p.iter().map(|q| q.0 * q.0).sum();
        let spread2: f64 = p.iter().map(|q| q.1 * q.1).sum();
        assert!(spread1 > 100.0 * spread2, "{spread1} vs {spread2}");
        assert!((p[9].0 - p[0].0).abs() > 12.0);
    }
}
