//! `fastvision ensemble report`: each member's accuracy and loss on the validation split, the
//! ensemble's under each combination rule, the pairwise Pearson correlation of the members'
//! per-image errors and their disagreement rate (table + heat map), and a greedy forward
//! selection of members (Caruana et al. 2004, without replacement).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::Item;
use crate::error::{Error, Result};
use crate::infer::combine::Combination;
use crate::infer::ensemble::EnsembleFile;
use crate::infer::{Inference, Predictor};
use crate::io::write_json;
use crate::report::html::{self, Section};
use crate::report::plot::plot_heatmap;

/// Accuracy and mean cross-entropy of one model or combination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Member folder or rule name.
    pub name: String,
    /// Accuracy.
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
}

/// One step of the greedy selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GreedyStep {
    /// Members chosen so far.
    pub members: Vec<String>,
    /// Accuracy of their mean.
    pub accuracy: f64,
    /// Loss of their mean.
    pub loss: f64,
}

/// `ensemble_report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleReport {
    /// Validation images scored.
    pub n: usize,
    /// Images left out because the weights were fitted on them.
    pub fit_excluded: usize,
    /// Each member.
    pub members: Vec<Score>,
    /// The ensemble under each rule (mean, geometric, and weighted when fitted).
    pub ensemble: Vec<Score>,
    /// Pearson correlation of the members' per-image error indicators.
    pub correlation: Vec<Vec<f64>>,
    /// Share of images on which two members predict different classes.
    pub disagreement: Vec<Vec<f64>>,
    /// Greedy forward selection, step by step (by validation loss of the mean).
    pub greedy: Vec<GreedyStep>,
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap_or(0)
}

/// Accuracy and loss of probability rows against targets.
pub fn score_rows(name: &str, probs: &[Vec<f32>], targets: &[usize]) -> Score {
    let n = targets.len().max(1) as f64;
    let ok = probs
        .iter()
        .zip(targets)
        .filter(|(p, t)| argmax(p) == **t)
        .count();
    let loss: f64 = probs
        .iter()
        .zip(targets)
        .map(|(p, &t)| -f64::from(p[t].max(1e-12)).ln())
        .sum();
    Score {
        name: name.into(),
        accuracy: ok as f64 / n,
        loss: loss / n,
    }
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().max(1) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        if va == vb { 1.0 } else { 0.0 }
    } else {
        cov / (va * vb).sqrt()
    }
}

pub use crate::vision::data_config;

/// The labelled validation images of an ensemble (the split every member shares).
pub fn validation_items(dir: &Path) -> Result<Vec<Item>> {
    Ok(crate::vision::load_data(&data_config(dir)?)?.valid)
}

/// Every member's probabilities (`[member][image][class]`, plain inference) on the images of
/// `items` that every member could read, and those images' labels.
pub fn member_rows(
    pred: &Predictor,
    items: &[Item],
    bs: usize,
) -> (Vec<Vec<Vec<f32>>>, Vec<usize>) {
    let raw: Vec<Vec<Option<Vec<f32>>>> = std::iter::once(pred)
        .chain(&pred.others)
        .map(|m| m.infer_one(items, bs, Inference::Plain).probs)
        .collect();
    let keep: Vec<usize> = (0..items.len())
        .filter(|&i| raw.iter().all(|m| m[i].is_some()))
        .collect();
    let probs = raw
        .into_iter()
        .map(|m| {
            keep.iter()
                .map(|&i| m[i].clone().unwrap_or_default())
                .collect()
        })
        .collect();
    (probs, keep.iter().map(|&i| items[i].label).collect())
}

/// An ensemble's validation images in two seeded halves with every member's probabilities on
/// each: one half to fit a combination on, the other to judge it.
pub struct Halves {
    /// The images of the first half (recorded in `ensemble.json` when a fit is kept).
    pub fit_items: Vec<Item>,
    /// Members' rows and labels on the first half.
    pub fit: (Vec<Vec<Vec<f32>>>, Vec<usize>),
    /// Members' rows and labels on the second half.
    pub held: (Vec<Vec<Vec<f32>>>, Vec<usize>),
}

/// Splits the validation images of the ensemble in `dir` into two halves shuffled by `seed` and
/// infers every member on both (ignoring any earlier fit); `what` names the fit for the error
/// when there are too few images.
pub fn halves(dir: &Path, seed: u64, what: &str, device: &Device) -> Result<Halves> {
    let mut items = validation_items(dir)?;
    if items.len() < 4 {
        return Err(Error::Config(format!(
            "{} validation images are too few to {what} on half of them",
            items.len()
        )));
    }
    items.shuffle(&mut StdRng::seed_from_u64(seed));
    let held = items.split_off(items.len() / 2);
    let mut pred = Predictor::load(dir, device)?;
    pred.fit_items.clear();
    Ok(Halves {
        fit: member_rows(&pred, &items, 64),
        held: member_rows(&pred, &held, 64),
        fit_items: items,
    })
}

/// The rows of members `which` combined by `rule`, image by image.
pub fn combine_rows(probs: &[Vec<Vec<f32>>], rule: &Combination, which: &[usize]) -> Vec<Vec<f32>> {
    let n = probs.first().map_or(0, Vec::len);
    (0..n)
        .map(|i| {
            let rows: Vec<&[f32]> = which.iter().map(|&m| probs[m][i].as_slice()).collect();
            rule.combine(&rows)
        })
        .collect()
}

/// Builds the report of the ensemble in `dir` on its validation split.
pub fn report(dir: &Path, device: &Device) -> Result<EnsembleReport> {
    if !crate::infer::is_ensemble(dir) {
        return Err(Error::model(
            dir,
            "not an ensemble (it has no ensemble.json): train one, or make one of runs already trained",
        ));
    }
    let file = EnsembleFile::read(dir)?;
    let pred = Predictor::load(dir, device)?;
    let (items, fit_excluded) = pred.scorable(validation_items(dir)?);
    let (probs, targets) = member_rows(&pred, &items, 64);
    let names: Vec<String> = file
        .members
        .iter()
        .map(|m| m.dir.display().to_string())
        .collect();
    let members: Vec<Score> = probs
        .iter()
        .zip(&names)
        .map(|(p, n)| score_rows(n, p, &targets))
        .collect();
    let combine = |rule: &Combination, which: &[usize]| combine_rows(&probs, rule, which);
    let all: Vec<usize> = (0..probs.len()).collect();
    let mut rules = vec![Combination::Mean, Combination::Geometric];
    if file.combination.weights().is_some() {
        rules.push(file.combination.clone());
    }
    let ensemble = rules
        .iter()
        .map(|r| score_rows(r.name(), &combine(r, &all), &targets))
        .collect();
    let errors: Vec<Vec<f64>> = probs
        .iter()
        .map(|p| {
            p.iter()
                .zip(&targets)
                .map(|(q, &t)| f64::from(u8::from(argmax(q) != t)))
                .collect()
        })
        .collect();
    let m = probs.len();
    let mut correlation = vec![vec![0.0; m]; m];
    let mut disagreement = vec![vec![0.0; m]; m];
    for a in 0..m {
        for b in 0..m {
            correlation[a][b] = pearson(&errors[a], &errors[b]);
            let differ = probs[a]
                .iter()
                .zip(&probs[b])
                .filter(|(x, y)| argmax(x) != argmax(y))
                .count();
            disagreement[a][b] = differ as f64 / targets.len().max(1) as f64;
        }
    }
    // Greedy forward selection by the loss of the mean.
    let mut chosen = vec![
        (0..m)
            .min_by(|&a, &b| members[a].loss.total_cmp(&members[b].loss))
            .unwrap_or(0),
    ];
    let step = |chosen: &[usize]| {
        let s = score_rows("", &combine(&Combination::Mean, chosen), &targets);
        GreedyStep {
            members: chosen.iter().map(|&i| names[i].clone()).collect(),
            accuracy: s.accuracy,
            loss: s.loss,
        }
    };
    let mut greedy = vec![step(&chosen)];
    loop {
        let best = (0..m)
            .filter(|i| !chosen.contains(i))
            .map(|i| {
                let mut c = chosen.clone();
                c.push(i);
                (i, step(&c))
            })
            .min_by(|a, b| a.1.loss.total_cmp(&b.1.loss));
        match best {
            Some((i, s)) if s.loss < greedy.last().map_or(f64::INFINITY, |g| g.loss) => {
                chosen.push(i);
                greedy.push(s);
            }
            _ => break,
        }
    }
    Ok(EnsembleReport {
        n: targets.len(),
        fit_excluded,
        members,
        ensemble,
        correlation,
        disagreement,
        greedy,
    })
}

/// Writes `ensemble_report.json`, `correlation.png`, `disagreement.png` and `report.html` into
/// `dir`; returns the files.
pub fn write(dir: &Path, r: &EnsembleReport) -> Result<Vec<PathBuf>> {
    let out = dir.join("ensemble_report.json");
    write_json(&out, r)?;
    let names: Vec<String> = r.members.iter().map(|m| m.name.clone()).collect();
    let short: Vec<String> = names
        .iter()
        .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
        .collect();
    let corr = dir.join("correlation.png");
    plot_heatmap(
        &r.correlation,
        &short,
        "correlation of the members' errors (Pearson)",
        &corr,
    )?;
    let dis = dir.join("disagreement.png");
    plot_heatmap(
        &r.disagreement,
        &short,
        "share of images two members label differently",
        &dis,
    )?;
    let html = crate::run_dir::RunDir::open(dir)?.add_section(section(r))?;
    Ok(vec![out, corr, dis, html])
}

/// The report page's ensemble section: each member and the ensemble, greedy selection, and the
/// correlation and disagreement plots `write` puts beside it.
pub fn section(r: &EnsembleReport) -> Section {
    let row = |name: String, accuracy: f64, loss: f64| {
        vec![name, format!("{accuracy:.4}"), format!("{loss:.4}")]
    };
    let mut h = format!("<h2>Ensemble ({} validation images)</h2>", r.n);
    let rows = r
        .members
        .iter()
        .map(|m| row(m.name.clone(), m.accuracy, m.loss))
        .chain(r.ensemble.iter().map(|m| {
            row(
                format!("<b>ensemble ({})</b>", html::esc(&m.name)),
                m.accuracy,
                m.loss,
            )
        }));
    h.push_str(&html::table(&["model", "accuracy", "loss"], rows));
    h.push_str("<h3>Greedy selection</h3>");
    h.push_str(&html::table(
        &["members", "accuracy", "loss"],
        r.greedy
            .iter()
            .map(|g| row(g.members.join(" + "), g.accuracy, g.loss)),
    ));
    h.push_str(&html::image(
        "correlation.png",
        "Correlation of the members' errors",
        3,
    ));
    h.push_str(&html::image(
        "disagreement.png",
        "Disagreement between members",
        3,
    ));
    Section::new(50, "ensemble", h)
}

/// The report as text tables.
pub fn to_text(r: &EnsembleReport) -> String {
    let mut s = format!("{} validation images", r.n);
    if r.fit_excluded > 0 {
        s.push_str(&format!(
            " ({} left out: the weights were fitted on them)",
            r.fit_excluded
        ));
    }
    s.push_str(&format!(
        "\n{:<40} {:>9} {:>9}\n",
        "model", "accuracy", "loss"
    ));
    for m in r.members.iter().chain(&r.ensemble) {
        let name = if r.ensemble.contains(m) {
            format!("ensemble ({})", m.name)
        } else {
            m.name.clone()
        };
        s.push_str(&format!("{name:<40} {:>9.4} {:>9.4}\n", m.accuracy, m.loss));
    }
    s.push_str("\nerror correlation / disagreement\n");
    for (i, m) in r.members.iter().enumerate() {
        let row: Vec<String> = (0..r.members.len())
            .map(|j| format!("{:>5.2}/{:<4.2}", r.correlation[i][j], r.disagreement[i][j]))
            .collect();
        s.push_str(&format!("{:<24} {}\n", short_name(&m.name), row.join(" ")));
    }
    s.push_str("\ngreedy selection (mean of the chosen members)\n");
    for g in &r.greedy {
        s.push_str(&format!(
            "  {:>9.4} {:>9.4}  {}\n",
            g.accuracy,
            g.loss,
            g.members
                .iter()
                .map(|n| short_name(n))
                .collect::<Vec<_>>()
                .join(" + ")
        ));
    }
    if let Some(best) = r.greedy.last() {
        s.push_str(&format!("best subset: {}\n", best.members.join(", ")));
    }
    s
}

fn short_name(n: &str) -> &str {
    n.rsplit('/').next().unwrap_or(n)
}
