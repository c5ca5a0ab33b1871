//! What the playbook leaves for the user at the end: the table of what each step bought,
//! `playbook.html`, and `predictions.csv` for an unlabelled `test/` folder.

use std::path::PathBuf;

use burn::tensor::Device;

use super::state::{PAGE, PREDICTIONS, PlaybookState};
use crate::data::decode::has_image_extension;
use crate::error::{Error, Result};
use crate::infer::{Inference, Predictor, Tta};
use crate::io::write_atomic;
use crate::report::html::{self, Section};
use crate::run_dir::RunDir;

/// The table as text: each step's accuracy, loss, time and gain.
pub fn table(state: &PlaybookState) -> Vec<String> {
    let mut out = vec![format!(
        "{:<28} {:>9} {:>9} {:>8} {:>8}  {}",
        "step", "accuracy", "loss", "gain", "seconds", "note"
    )];
    let f = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
    for r in &state.results {
        out.push(format!(
            "{:<28} {:>9} {:>9} {:>8} {:>8.0}  {}",
            r.name,
            f(r.accuracy, 4),
            f(r.loss, 4),
            r.gain.map_or("-".into(), |g| format!("{:+.4}", g)),
            r.seconds,
            r.note
        ));
    }
    out.push(format!(
        "total {:.0} s of a {:.0} s budget",
        state.spent_s(),
        state.config.budget_s
    ));
    out
}

/// Writes `playbook.html`: the plan and the table, with links to each step's report.
pub(super) fn write_page(run: &RunDir, state: &PlaybookState) -> Result<()> {
    let plan_rows = state.plan.steps.iter().map(|s| {
        vec![
            s.step.name(),
            s.step.describe(),
            format!("{:.0}", s.estimate_s),
        ]
    });
    let plan = Section::new(
        10,
        "plan",
        format!(
            "<h2>Plan (budget {:.0} s)</h2>{}",
            state.config.budget_s,
            html::table(&["step", "what", "estimated s"], plan_rows)
        ),
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let rows = state.results.iter().map(|r| {
        let name = match &r.run {
            Some(p) => format!(
                "<a href=\"{}/report.html\">{}</a>",
                html::esc(&p.to_string_lossy()),
                html::esc(&r.name)
            ),
            None => r.name.clone(),
        };
        vec![
            name,
            r.what.clone(),
            f(r.accuracy),
            f(r.loss),
            r.gain.map_or("-".into(), |g| format!("{g:+.4}")),
            format!("{:.0}", r.seconds),
            r.note.clone(),
        ]
    });
    let results = Section::new(
        20,
        "results",
        format!(
            "<h2>What each step bought ({:.0} s of {:.0} s)</h2>{}",
            state.spent_s(),
            state.config.budget_s,
            html::table(
                &[
                    "step", "what", "accuracy", "loss", "gain", "seconds", "note"
                ],
                rows
            )
        ),
    );
    let page = html::page("Playbook", &[plan, results]);
    write_atomic(&run.file(PAGE), page.as_bytes())
}

/// `predictions.csv` for the images of the data's `test/` folder (if any): file, class and one
/// probability per class, from the final model (with TTA when it helped on validation).
pub(super) fn predict_test(run: &RunDir, state: &PlaybookState, device: &Device) -> Result<()> {
    let test = state.config.data.join("test");
    if !test.is_dir() {
        return Ok(());
    }
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&test)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && has_image_extension(e.path()))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let pred = Predictor::load(run.path(), device)?;
    let how = if state.tta_helped {
        Inference::Tta(Tta::default())
    } else {
        Inference::Plain
    };
    let out = pred.infer(&crate::infer::tta::unlabelled(&files), 64, how);
    let vocab = &pred.config.vocab;
    let mut w = csv::Writer::from_writer(Vec::new());
    let bad = |e: csv::Error| Error::model(run.file(PREDICTIONS), e.to_string());
    let mut header = vec!["file".to_string(), "class".to_string()];
    header.extend(vocab.iter().map(|c| format!("p_{c}")));
    w.write_record(&header).map_err(bad)?;
    for (file, probs) in files.iter().zip(out.probs) {
        let rel = file
            .strip_prefix(&test)
            .unwrap_or(file)
            .display()
            .to_string();
        let mut row = vec![rel];
        match probs {
            Some(p) => {
                let best = (0..p.len())
                    .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                    .unwrap_or(0);
                row.push(vocab.get(best).cloned().unwrap_or_default());
                row.extend(p.iter().map(|v| format!("{v:.6}")));
            }
            None => row.resize(header.len(), String::new()),
        }
        w.write_record(&row).map_err(bad)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::model(run.file(PREDICTIONS), e.to_string()))?;
    write_atomic(&run.file(PREDICTIONS), &bytes)
}
