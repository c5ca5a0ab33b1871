//! `report.html`: one page joined from sections, each rendered as HTML by the feature that owns
//! it (training, interpretation, ensembles, tables, GANs) and handed in; this module only knows
//! how to escape text, draw a table or an image, and join the sections into a page.

use std::fmt::Write;

use crate::learner::Recorder;

/// One part of a report page, rendered by the feature that owns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Position on the page (smaller first): 10 settings, 20 training, 30 plots, 40
    /// interpretation, 50 ensemble, 60 tables, 70 GAN.
    pub order: u16,
    /// A short name, unique on the page (it names the section's fragment file).
    pub id: String,
    /// The section's HTML, headings included.
    pub html: String,
}

impl Section {
    /// A section at `order` named `id`.
    pub fn new(order: u16, id: &str, html: String) -> Self {
        Self {
            order,
            id: id.into(),
            html,
        }
    }
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table with a header row (cells are escaped unless they start with `<`).
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let cell = |c: &str| {
        if c.starts_with('<') {
            c.to_string()
        } else {
            esc(c)
        }
    };
    let mut h = String::from("<table><tr>");
    for c in header {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>");
    for row in rows {
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<td>{}</td>", cell(&c));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

/// A titled image (`file` relative to the page), heading level `level`.
pub fn image(file: &str, title: &str, level: u8) -> String {
    format!(
        "<h{level}>{}</h{level}><img src=\"{}\">",
        esc(title),
        esc(file)
    )
}

/// A run's settings, as the JSON it saved them in.
pub fn settings_section(json: &str) -> Section {
    Section::new(
        10,
        "settings",
        format!("<h2>Settings</h2><pre>{}</pre>", esc(json)),
    )
}

/// The epoch table of a training run.
pub fn training_section(rec: &Recorder) -> Section {
    let regression = rec.epochs.iter().any(|e| e.rmse.is_some());
    let synthetic = rec.epochs.iter().any(|e| e.synthetic > 0);
    let metric = if regression { "rmse" } else { "accuracy" };
    let mut header = vec![
        "epoch",
        "stage",
        "size",
        "train_loss",
        "valid_loss",
        metric,
        "seconds",
    ];
    if synthetic {
        header.extend(["real images", "synthetic images"]);
    }
    let rows = rec.epochs.iter().map(|e| {
        let mut r = vec![
            e.epoch.to_string(),
            (e.stage + 1).to_string(),
            e.size.to_string(),
            format!("{:.4}", e.train_loss),
            cell(e.valid_loss),
            cell(e.rmse.or(e.accuracy)),
            format!("{:.0}", e.seconds),
        ];
        if synthetic {
            r.extend([e.real.to_string(), e.synthetic.to_string()]);
        }
        r
    });
    Section::new(
        20,
        "training",
        format!("<h2>Training</h2>{}", table(&header, rows)),
    )
}

/// The page of `title` with `sections` in their order.
pub fn page(title: &str, sections: &[Section]) -> String {
    let mut sections: Vec<&Section> = sections.iter().collect();
    sections.sort_by(|a, b| (a.order, &a.id).cmp(&(b.order, &b.id)));
    let mut h = String::from("<!doctype html><html><head><meta charset=\"utf-8\">");
    let _ = write!(h, "<title>{} · fastvision</title>", esc(title));
    h.push_str(
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}\
         pre{background:#f6f6f6;padding:8px}</style></head><body>",
    );
    let _ = write!(h, "<h1>{}</h1>", esc(title));
    for s in sections {
        h.push_str(&s.html);
    }
    h.push_str("</body></html>\n");
    h
}

/// `x` with four decimals, or `-` where the task has no such metric.
fn cell(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}
