//! `report.html`: one page gathering a run's settings, epoch table, plots and interpretation.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::clean::report::InterpretReport;
use crate::error::Result;
use crate::learner::Recorder;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes `report.html` in `run_dir` from the files there (train.json, log.json, interpret.json
/// and the PNG plots); returns its path.
pub fn write_report(run_dir: &Path) -> Result<PathBuf> {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>fastvision run</title>\
         <style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}\
         pre{background:#f6f6f6;padding:8px}</style></head><body>",
    );
    let name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = write!(h, "<h1>Run {}</h1>", esc(&name));
    if let Ok(cfg) = std::fs::read_to_string(run_dir.join("train.json")) {
        let _ = write!(h, "<h2>Settings</h2><pre>{}</pre>", esc(&cfg));
    }
    if let Some(rec) = read_json::<Recorder>(&run_dir.join("log.json")) {
        let regression = rec.epochs.iter().any(|e| e.rmse.is_some());
        let metric = if regression { "rmse" } else { "accuracy" };
        let synthetic = rec.epochs.iter().any(|e| e.synthetic > 0);
        let _ = write!(
            h,
            "<h2>Training</h2><table><tr><th>epoch</th><th>stage</th><th>size</th><th>train_loss</th><th>valid_loss</th><th>{metric}</th><th>seconds</th>{}</tr>",
            if synthetic {
                "<th>real images</th><th>synthetic images</th>"
            } else {
                ""
            }
        );
        for e in &rec.epochs {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.0}</td>{}</tr>",
                e.epoch,
                e.stage + 1,
                e.size,
                e.train_loss,
                e.valid_loss,
                e.rmse.unwrap_or(e.accuracy),
                e.seconds,
                if synthetic {
                    format!("<td>{}</td><td>{}</td>", e.real, e.synthetic)
                } else {
                    String::new()
                }
            );
        }
        h.push_str("</table>");
    }
    for (file, title) in [
        ("loss.png", "Losses"),
        ("lr.png", "Learning rate and momentum"),
        ("lr_find.png", "LR finder"),
        ("show_batch.png", "Augmented batch"),
        (
            "residuals.png",
            "Predicted against actual (validation rows)",
        ),
        ("importance.png", "Permutation feature importance"),
    ] {
        if run_dir.join(file).is_file() {
            let _ = write!(h, "<h2>{title}</h2><img src=\"{file}\">");
        }
    }
    if let Some(r) = read_json::<InterpretReport>(&run_dir.join("interpret.json")) {
        let _ = write!(
            h,
            "<h2>Interpretation ({:?} split, {} items, accuracy {:.4})</h2>",
            r.split, r.n, r.accuracy
        );
        h.push_str("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
        for c in &r.classes {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
                esc(&c.class),
                c.precision,
                c.recall,
                c.f1,
                c.support
            );
        }
        h.push_str("</table><h3>Most confused (actual → predicted)</h3><table>");
        for c in r.most_confused.iter().take(20) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.actual),
                esc(&c.predicted),
                c.count
            );
        }
        h.push_str("</table>");
        for (file, title) in [
            ("confusion.png", "Confusion matrix"),
            (
                "top_losses.png",
                "Top losses (predicted / actual, loss / probability)",
            ),
        ] {
            if run_dir.join(file).is_file() {
                let _ = write!(h, "<h3>{title}</h3><img src=\"{file}\">");
            }
        }
    }
    if let Some(r) =
        read_json::<crate::ensemble::report::EnsembleReport>(&run_dir.join("ensemble_report.json"))
    {
        let _ = write!(
            h,
            "<h2>Ensemble ({} validation images)</h2><table><tr><th>model</th><th>accuracy</th><th>loss</th></tr>",
            r.n
        );
        for m in &r.members {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.4}</td><td>{:.4}</td></tr>",
                esc(&m.name),
                m.accuracy,
                m.loss
            );
        }
        for m in &r.ensemble {
            let _ = write!(
                h,
                "<tr><td><b>ensemble ({})</b></td><td>{:.4}</td><td>{:.4}</td></tr>",
                esc(&m.name),
                m.accuracy,
                m.loss
            );
        }
        h.push_str("</table><h3>Greedy selection</h3><table><tr><th>members</th><th>accuracy</th><th>loss</th></tr>");
        for g in &r.greedy {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.4}</td><td>{:.4}</td></tr>",
                esc(&g.members.join(" + ")),
                g.accuracy,
                g.loss
            );
        }
        h.push_str("</table>");
        for (file, title) in [
            ("correlation.png", "Correlation of the members' errors"),
            ("disagreement.png", "Disagreement between members"),
        ] {
            if run_dir.join(file).is_file() {
                let _ = write!(h, "<h3>{title}</h3><img src=\"{file}\">");
            }
        }
    }
    h.push_str("</body></html>\n");
    let path = run_dir.join("report.html");
    crate::io::write_atomic(&path, h.as_bytes())?;
    Ok(path)
}
