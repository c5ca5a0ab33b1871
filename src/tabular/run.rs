//! A tabular training run: read the CSV, choose column roles and the split, fit the processing
//! on the training rows, train the model with the Learner, and write the run folder (bundle with
//! the fitted processing, `log.json`, plots, `report.html`). Orchestration only.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

pub use super::config::{
    TABULAR_FILE, TabularBundle, TabularConfig, ValidSpec, load_bundle, model_config,
};
use super::data::{TabBatch, TabularDataLoaders};
use super::model::TabularModel;
use super::process::{Processor, TargetSpec};
use super::table::{ColumnKind, Table, cont_cat_split};
use crate::error::{Error, Result};
use crate::io::write_json;
use crate::learner::checkpoint;
use crate::learner::schedule::{OneCycle, Schedule};
use crate::learner::{AdamConfig, Callback, Learner, Recorder};
use crate::report::plot::plot_lr_find;
use crate::run_dir::{self, RunDir};
use crate::weights::save_weights;

/// The data of a run: both splits as tables, the fitted processing and the loaders.
pub struct Prepared {
    /// Training rows.
    pub train: Table,
    /// Validation rows.
    pub valid: Table,
    /// The processing fitted on `train`.
    pub processor: Processor,
    /// Batches of both splits.
    pub dls: TabularDataLoaders,
    /// Rows dropped because their target was missing.
    pub dropped: usize,
}

/// Reads the data and fits the processing as `config` says.
pub fn prepare(config: &TabularConfig) -> Result<Prepared> {
    config.validate()?;
    let delim = u8::try_from(config.delimiter)
        .map_err(|_| Error::Config("--delimiter must be one ASCII character".into()))?;
    let table = Table::read(&config.csv, delim)?;
    let t = table.column(&config.target)?;
    let keep: Vec<usize> = (0..table.len())
        .filter(|&r| table.columns[t][r].is_some())
        .collect();
    let dropped = table.len() - keep.len();
    let table = table.select(&keep);
    if table.is_empty() {
        return Err(Error::table(
            &config.csv,
            None,
            Some(&config.target),
            "every row's target is missing",
        ));
    }
    let regression = config.regression.unwrap_or_else(|| match table.kind(t) {
        ColumnKind::Float => true,
        ColumnKind::Int => table.n_unique(t) > config.max_card,
        _ => false,
    });
    let (train, valid, valid_col) = split(&table, config, delim)?;
    let (cat, cont) = column_roles(&table, config, valid_col.as_deref())?;
    let spec = TargetSpec {
        name: config.target.clone(),
        regression,
        y_range: config.y_range,
    };
    let processor = Processor::fit(&train, &cat, &cont, &spec)?;
    let dls = TabularDataLoaders::new(
        processor.transform(&train, true)?,
        processor.transform(&valid, true)?,
        config.bs,
        config.seed,
    );
    Ok(Prepared {
        train,
        valid,
        processor,
        dls,
        dropped,
    })
}

/// The categorical and continuous columns: the user's, the rest by `cont_cat_split`.
fn column_roles(
    table: &Table,
    config: &TabularConfig,
    valid_col: Option<&str>,
) -> Result<(Vec<String>, Vec<String>)> {
    for name in config.cat.iter().chain(&config.cont) {
        table.column(name)?;
        if name == &config.target {
            return Err(Error::Config(format!(
                "column \"{name}\" is the target; it cannot also be an input"
            )));
        }
    }
    let mut skip: Vec<&str> = vec![config.target.as_str()];
    skip.extend(valid_col);
    skip.extend(config.cat.iter().map(String::as_str));
    skip.extend(config.cont.iter().map(String::as_str));
    let (auto_cont, auto_cat) = cont_cat_split(table, config.max_card, &skip);
    let in_order = |names: Vec<String>| -> Vec<String> {
        table
            .headers
            .iter()
            .filter(|h| names.contains(h))
            .cloned()
            .collect()
    };
    let cat = in_order(config.cat.iter().cloned().chain(auto_cat).collect());
    let cont = in_order(config.cont.iter().cloned().chain(auto_cont).collect());
    Ok((cat, cont))
}

/// The training and validation tables, and the split column (not an input) if one was used.
fn split(
    table: &Table,
    config: &TabularConfig,
    delim: u8,
) -> Result<(Table, Table, Option<String>)> {
    match &config.valid {
        ValidSpec::File(path) => {
            let valid = Table::read(path, delim)?;
            for h in &table.headers {
                valid.column(h)?;
            }
            let t = valid.column(&config.target)?;
            let keep: Vec<usize> = (0..valid.len())
                .filter(|&r| valid.columns[t][r].is_some())
                .collect();
            Ok((table.clone(), valid.select(&keep), None))
        }
        ValidSpec::Column(name) => {
            let c = table.column(name)?;
            let mut is_valid = Vec::with_capacity(table.len());
            for (cell, &line) in table.columns[c].iter().zip(&table.lines) {
                let v = match cell.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("true" | "1" | "yes") => true,
                    Some("false" | "0" | "no") | None => false,
                    Some(other) => {
                        return Err(Error::table(
                            &table.path,
                            Some(line),
                            Some(name),
                            format!(
                                "\"{other}\" is not True/False (the column marks validation rows)"
                            ),
                        ));
                    }
                };
                is_valid.push(v);
            }
            let rows = |want: bool| -> Vec<usize> {
                (0..table.len()).filter(|&r| is_valid[r] == want).collect()
            };
            Ok((
                table.select(&rows(false)),
                table.select(&rows(true)),
                Some(name.clone()),
            ))
        }
        ValidSpec::Pct(pct) => {
            if !(0.0..1.0).contains(pct) {
                return Err(Error::Config(format!(
                    "--valid-pct {pct} must be in [0, 1)"
                )));
            }
            let mut order: Vec<usize> = (0..table.len()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(config.seed));
            let n_valid = (pct * table.len() as f64).round() as usize;
            let (mut valid, mut train) = (order[..n_valid].to_vec(), order[n_valid..].to_vec());
            valid.sort_unstable();
            train.sort_unstable();
            Ok((table.select(&train), table.select(&valid), None))
        }
    }
}

/// What a finished tabular run reports.
#[derive(Debug, Clone)]
pub struct TabularSummary {
    /// The run folder.
    pub dir: PathBuf,
    /// The recorder (last epoch: final metrics).
    pub recorder: Recorder,
    /// Training and validation rows.
    pub n_train: usize,
    /// Validation rows.
    pub n_valid: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl TabularSummary {
    /// The closing line: `final: accuracy …` or `final: rmse …`.
    pub fn final_line(&self) -> String {
        match self.recorder.last() {
            Some(m) => match m.rmse {
                Some(r) => format!("final: rmse {r:.4}, valid loss {:.4}", m.valid_loss),
                None => format!(
                    "final: accuracy {:.4}, valid loss {:.4}",
                    m.accuracy, m.valid_loss
                ),
            },
            None => "final: no epoch trained".into(),
        }
    }
}

fn build_learner(
    p: &Prepared,
    config: &TabularConfig,
    device: &Device,
    callbacks: &mut Callbacks,
) -> Result<Learner<TabularModel>> {
    let device = device.clone().autodiff();
    device.seed(config.seed);
    let mut model = model_config(config, &p.processor).init(&device);
    if let Some(from) = &config.init_embeddings {
        let shared = super::embeddings::init_from(&mut model, &p.processor, from, &device)?;
        note(
            callbacks,
            &format!("embeddings: {shared} rows started from {}", from.display()),
        );
    }
    Ok(Learner::new(
        model,
        p.dls.clone(),
        AdamConfig::default(),
        &device,
        config.seed,
    ))
}

/// The callbacks of a tabular run.
type Callbacks = Vec<Box<dyn Callback<TabBatch>>>;

/// Hands `text` to every callback as a note.
fn note(callbacks: &mut Callbacks, text: &str) {
    callbacks.iter_mut().for_each(|cb| cb.note(text));
}

/// The column roles and split sizes, as fastai users see them in `TabularPandas`.
fn describe(p: &Prepared, config: &TabularConfig) -> Vec<String> {
    let pr = &p.processor;
    let mut rows = format!("rows: {} train, {} valid", p.dls.train.n, p.dls.valid.n);
    if p.dropped > 0 {
        rows.push_str(&format!(" ({} rows without a target left out)", p.dropped));
    }
    vec![
        format!(
            "target: {} ({})",
            config.target,
            match &pr.target {
                super::process::Target::Classification { vocab, .. } =>
                    format!("classification, {} classes", vocab.len()),
                super::process::Target::Regression { y_range, .. } =>
                    format!("regression, y_range {:.4}..{:.4}", y_range.0, y_range.1),
            }
        ),
        format!("categorical: {}", pr.cat_inputs().join(", ")),
        format!("continuous:  {}", pr.cont_names.join(", ")),
        rows,
    ]
}

/// Trains a tabular model as `config` says into the new folder `run_dir`; `callbacks` (e.g.
/// progress) are added to the learner and receive the column roles and other notes.
pub fn train(
    config: &TabularConfig,
    run_dir: &Path,
    device: &Device,
    mut callbacks: Callbacks,
) -> Result<TabularSummary> {
    RunDir::refuse_existing(run_dir)?;
    let t0 = Instant::now();
    let p = prepare(config)?;
    for n in describe(&p, config) {
        note(&mut callbacks, &n);
    }
    let mut learner = build_learner(&p, config, device, &mut callbacks)?;
    let run = RunDir::create(run_dir)?;
    let mut config = config.with_absolute_paths();
    let trained = (|| {
        if config.lr_auto {
            let found = learner.lr_find(Default::default())?;
            plot_lr_find(&found, &run.file(run_dir::LR_FIND_PLOT))?;
            config.lr = crate::learner::lr_find::round_lr(found.suggestions.valley);
            config.lr_auto = false;
            note(
                &mut callbacks,
                &format!(
                    "--lr auto: the LR finder suggests {:.2e} (valley)",
                    config.lr
                ),
            );
        }
        run.write_settings(&config)?;
        learner.checkpoint_dir = Some(run.checkpoint_dir());
        learner.callbacks = std::mem::take(&mut callbacks);
        learner.fit_one_cycle(config.epochs, config.lr)
    })();
    if let Err(e) = trained {
        return Err(run.fail(e, learner.epochs_done > 0));
    }
    finish(&run, &learner, &p, &config, t0)
}

/// Resumes the tabular run in `run_dir` from its last checkpoint and finishes it.
pub fn resume(run_dir: &Path, device: &Device, mut callbacks: Callbacks) -> Result<TabularSummary> {
    let t0 = Instant::now();
    let run = RunDir::open(run_dir)?;
    let config: TabularConfig = run.read_settings()?;
    let p = prepare(&config)?;
    let mut learner = build_learner(&p, &config, device, &mut callbacks)?;
    let ckpt = run.checkpoint_dir();
    let state = learner.load_checkpoint(&ckpt)?;
    learner.checkpoint_dir = Some(ckpt);
    learner.callbacks = callbacks;
    let schedule = Schedule::OneCycle(OneCycle::new(config.lr));
    learner.set_lrs(config.lr.into());
    learner.fit_from(config.epochs, schedule, state.stage_epochs_done)?;
    finish(&run, &learner, &p, &config, t0)
}

fn finish(
    run: &RunDir,
    learner: &Learner<TabularModel>,
    p: &Prepared,
    config: &TabularConfig,
    t0: Instant,
) -> Result<TabularSummary> {
    save_weights(run.path(), &learner.model)?;
    let bundle = TabularBundle {
        model: model_config(config, &p.processor),
        processor: p.processor.clone(),
    };
    write_json(&run.file(TABULAR_FILE), &bundle)?;
    run.finish(&learner.recorder, config)?;
    let device = learner.device().clone().without_autodiff();
    let (model, _) = load_bundle(run.path(), &device)?;
    super::report::write(run.path(), &model, &p.processor, &p.valid, &device)?;
    Ok(TabularSummary {
        dir: run.path().into(),
        recorder: learner.recorder.clone(),
        n_train: p.dls.train.n,
        n_valid: p.dls.valid.n,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Has `checkpoint.json`: an interrupted run that `--resume` continues.
pub fn has_checkpoint(dir: &Path) -> bool {
    checkpoint::load_state(&dir.join(run_dir::CHECKPOINT)).is_ok()
}
