//! A tabular training run: read the CSV, choose column roles and the split, fit the processing
//! on the training rows, train the model with the Learner, and write the run folder (bundle with
//! the fitted processing, `log.json`, plots, `report.html`). Orchestration only.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

pub use super::config::{
    TABULAR_FILE, TabularBundle, TabularConfig, ValidSpec, check_model_size, load_bundle,
    model_config,
};
use super::data::TabularDataLoaders;
use super::model::TabularModel;
use super::process::{Processor, TargetSpec};
use super::table::{ColumnKind, Table, cont_cat_split};
use crate::error::{Error, Result};
use crate::io::write_json;
use crate::learner::schedule::{OneCycle, Schedule};
use crate::learner::{AdamConfig, Learner, Listen, Listener, Recorder, Stage};
use crate::run::Recipe;
use crate::run_dir::RunDir;
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
        .map_err(|_| Error::Config("`delimiter` must be one ASCII character".into()))?;
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
    check_model_size(config, &processor)?;
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
    let named: Vec<String> = config.cat.iter().chain(&config.cont).cloned().collect();
    table.columns_of(&named)?;
    if named.contains(&config.target) {
        return Err(Error::Config(format!(
            "column \"{}\" is the target; it cannot also be an input",
            config.target
        )));
    }
    let mut skip: Vec<&str> = vec![config.target.as_str()];
    skip.extend(valid_col);
    skip.extend(named.iter().map(String::as_str));
    let (auto_cont, auto_cat) = cont_cat_split(table, config.max_card, &skip);
    let in_order = |names: Vec<String>| -> Vec<String> {
        let names: HashSet<String> = names.into_iter().collect();
        table
            .headers
            .iter()
            .filter(|h| names.contains(*h))
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
            valid.columns_of(&table.headers)?;
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
                    "`ValidSpec::Pct` {pct} must be in [0, 1)"
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
            Some(m) => {
                let loss = m.valid_loss.unwrap_or(f64::NAN);
                match (m.rmse, m.accuracy) {
                    (Some(r), _) => format!("final: rmse {r:.4}, valid loss {loss:.4}"),
                    (None, Some(a)) => format!("final: accuracy {a:.4}, valid loss {loss:.4}"),
                    (None, None) => "final: no validation rows".into(),
                }
            }
            None => "final: no epoch trained".into(),
        }
    }
}

fn build_learner(
    p: &Prepared,
    config: &TabularConfig,
    device: &Device,
    listen: &mut Listen,
) -> Result<Learner<TabularModel>> {
    let device = device.clone().autodiff();
    device.seed(config.seed);
    let mut model = model_config(config, &p.processor).init(&device);
    if let Some(from) = &config.init_embeddings {
        let shared = super::embeddings::init_from(&mut model, &p.processor, from, &device)?;
        listen.note(&format!(
            "embeddings: {shared} rows started from {}",
            from.display()
        ));
    }
    Ok(Learner::new(
        model,
        p.dls.clone(),
        AdamConfig::default(),
        &device,
        config.seed,
    ))
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
        format!("categorical: {}", names_list(&pr.cat_inputs())),
        format!("continuous:  {}", names_list(&pr.cont_names)),
        rows,
    ]
}

/// Column names for a note: all of them, or the first 50 and how many more.
fn names_list(names: &[String]) -> String {
    const SHOWN: usize = 50;
    let mut s = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … and {} more", names.len() - SHOWN));
    }
    s
}

/// A tabular model's run: its [`TabularConfig`] as a [`Recipe`] for the run driver.
#[derive(Debug, Clone)]
pub struct TabularRecipe(pub TabularConfig);

impl Recipe for TabularRecipe {
    type Model = TabularModel;
    type Settings = TabularConfig;
    type Prepared = Prepared;
    type Summary = TabularSummary;

    fn from_settings(settings: TabularConfig) -> Self {
        Self(settings)
    }

    fn settings(&self) -> &TabularConfig {
        &self.0
    }

    fn with_absolute_paths(self) -> Self {
        Self(self.0.with_absolute_paths())
    }

    fn prepare(&self, _device: &Device, listen: &mut Listen) -> Result<Prepared> {
        let p = prepare(&self.0)?;
        for n in describe(&p, &self.0) {
            listen.note(&n);
        }
        Ok(p)
    }

    fn learner(
        &self,
        p: &Prepared,
        device: &Device,
        _fresh: bool,
        listen: &mut Listen,
    ) -> Result<Learner<TabularModel>> {
        build_learner(p, &self.0, device, listen)
    }

    fn fingerprint(
        &self,
        p: &Prepared,
    ) -> Option<(
        std::path::PathBuf,
        crate::learner::checkpoint::DataFingerprint,
    )> {
        // A classification's classes: a resume on a table whose target levels changed would
        // give the outputs other meanings.
        match &p.processor.target {
            super::process::Target::Classification { vocab, .. } => Some((
                self.0.csv.clone(),
                crate::learner::checkpoint::DataFingerprint {
                    classes: vocab.clone(),
                    counts: Vec::new(),
                },
            )),
            _ => None,
        }
    }

    fn lr_auto(&self) -> bool {
        self.0.lr_auto
    }

    fn set_found_lr(&mut self, lr: f64) {
        self.0.lr = lr;
        self.0.lr_auto = false;
    }

    fn plan(&self) -> Vec<Stage> {
        vec![Stage {
            epochs: self.0.epochs,
            schedule: Schedule::OneCycle(OneCycle::new(self.0.lr)),
            lrs: self.0.lr.into(),
            frozen: false,
            size: None,
            last_epoch_pct: None,
        }]
    }

    fn finish(
        &self,
        run: &RunDir,
        learner: &Learner<TabularModel>,
        p: &Prepared,
        seconds: f64,
    ) -> Result<TabularSummary> {
        finish(run, learner, p, &self.0, seconds)
    }
}

/// Trains a tabular model as `config` says into the new folder `run_dir`; `listen` hears the
/// column roles and other notes, every epoch and batch.
pub fn train(
    config: &TabularConfig,
    run_dir: &Path,
    device: &Device,
    listen: Listen,
) -> Result<TabularSummary> {
    crate::run::train(TabularRecipe(config.clone()), run_dir, device, listen)
}

/// Resumes the tabular run in `run_dir` from its last checkpoint and finishes it.
pub fn resume(run_dir: &Path, device: &Device, listen: Listen) -> Result<TabularSummary> {
    crate::run::resume::<TabularRecipe>(run_dir, device, listen)
}

fn finish(
    run: &RunDir,
    learner: &Learner<TabularModel>,
    p: &Prepared,
    config: &TabularConfig,
    seconds: f64,
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
        seconds,
    })
}
