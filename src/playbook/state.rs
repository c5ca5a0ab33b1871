//! What the playbook keeps: the user's wishes, the state saved after every step
//! (`playbook.json`) and the file names of the playbook folder.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::learner::Precision;
use crate::models::Arch;
use crate::vision::TrainConfig;

/// The playbook's state, saved as `playbook.json` after every step.
pub const STATE_FILE: &str = "playbook.json";
/// The plan, as it was made.
pub const PLAN_FILE: &str = "plan.json";
/// The page with the plan and the table.
pub const PAGE: &str = "playbook.html";
/// Predictions for the unlabelled `test/` images.
pub const PREDICTIONS: &str = "predictions.csv";
/// Where the steps' run folders live.
pub const STEPS: &str = "steps";

/// What the user asks of the playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookConfig {
    /// The dataset folder.
    pub data: PathBuf,
    /// The time budget, seconds.
    pub budget_s: f64,
    /// Quarantine the confusing images (journaled, undoable) and retrain without them.
    pub drop_confusing: bool,
    /// The main architecture.
    pub arch: Arch,
    /// The final image side [default: the data's, at most 64].
    pub size: Option<u32>,
    /// Seed of everything random.
    pub seed: u64,
    /// Validation fraction when the data has no `valid/`.
    pub valid_pct: f64,
    /// Float precision (`Auto`: bf16 on a CPU with AMX, else fp32).
    pub precision: Precision,
    /// Runs that can train at once (Ray workers): with more than one, ensemble members train
    /// beside the main model.
    #[serde(default = "one")]
    pub workers: usize,
}

/// One worker.
fn one() -> usize {
    1
}

impl PlaybookConfig {
    /// The playbook for `data` within `budget_s` with the defaults: ResNet-18, seed 42.
    pub fn new(data: impl Into<PathBuf>, budget_s: f64) -> Self {
        Self {
            data: data.into(),
            budget_s,
            drop_confusing: false,
            arch: Arch::Resnet18,
            size: None,
            seed: 42,
            valid_pct: 0.2,
            precision: Precision::Auto,
            workers: 1,
        }
    }

    /// The training settings every step starts from.
    pub(super) fn base(&self) -> TrainConfig {
        TrainConfig {
            data: Some(self.data.clone()),
            arch: self.arch,
            size: self.size,
            seed: self.seed,
            valid_pct: self.valid_pct,
            auto_bs: true,
            precision: self.precision,
            ..TrainConfig::default()
        }
        .with_absolute_paths()
    }
}

/// One row of the playbook's table: what a step did and what it bought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step's name.
    pub name: String,
    /// What it did.
    pub what: String,
    /// Validation accuracy of the model after the step (the images it was measured on are in
    /// `on`).
    pub accuracy: Option<f64>,
    /// Validation loss likewise.
    pub loss: Option<f64>,
    /// Accuracy gained over the step it improves on (measured on the same images).
    pub gain: Option<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// What else to know (images flagged, members kept, a step shortened for the budget…).
    pub note: String,
    /// Its run folder, relative to the playbook folder, if it trained one.
    pub run: Option<PathBuf>,
    /// It trained on another worker beside the main model's steps: its seconds overlap theirs.
    #[serde(default)]
    pub beside: bool,
    /// When it ended, seconds since the Unix epoch.
    #[serde(default)]
    pub ended: Option<f64>,
}

/// `playbook.json`: the configuration, the plan and the steps done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookState {
    /// What was asked.
    pub config: PlaybookConfig,
    /// The plan.
    pub plan: Plan,
    /// Results of the steps done, in order (the first is the measuring).
    pub results: Vec<StepResult>,
    /// The run folders (relative) of the final models: the main model, then the members.
    pub models: Vec<PathBuf>,
    /// Whether test-time augmentation improved the validation accuracy (then the predictions
    /// for `test/` use it).
    pub tta_helped: bool,
    /// When the step in progress started (seconds since the Unix epoch), so that a resume after
    /// a kill counts the time it ran.
    #[serde(default)]
    pub step_started: Option<f64>,
    /// Seconds spent in steps that were interrupted and started again.
    #[serde(default)]
    pub interrupted_s: f64,
    /// Seconds the main model's steps waited for the steps beside them to end.
    #[serde(default)]
    pub waited_s: f64,
}

impl PlaybookState {
    /// Seconds spent so far, across interruptions (steps beside the main model's count only
    /// as long as it waited for them).
    pub fn spent_s(&self) -> f64 {
        self.results
            .iter()
            .filter(|r| !r.beside)
            .map(|r| r.seconds)
            .sum::<f64>()
            + self.interrupted_s
            + self.waited_s
    }

    /// Steps finished (the measuring is not a step).
    pub fn steps_done(&self) -> usize {
        self.results.len().saturating_sub(1)
    }

    /// Refuses a state file that cannot be continued (hand-edited or damaged), naming `path`.
    pub fn check(&self, path: &std::path::Path) -> crate::error::Result<()> {
        let bad = |m: String| {
            Err(crate::error::Error::model(
                path,
                format!("not a playbook state that can be resumed: {m}"),
            ))
        };
        if self.results.is_empty() {
            return bad("`results` is empty (its first row is the measuring)".into());
        }
        if self.steps_done() > self.plan.steps.len() {
            return bad(format!(
                "{} steps done of a plan of {}",
                self.steps_done(),
                self.plan.steps.len()
            ));
        }
        let times = self
            .results
            .iter()
            .map(|r| r.seconds)
            .chain([self.interrupted_s, self.waited_s]);
        if times.clone().any(|t| !(t.is_finite() && t >= 0.0)) {
            return bad("a step's `seconds` is negative or not a number".into());
        }
        if self
            .step_started
            .is_some_and(|t| !(t.is_finite() && t >= 0.0))
        {
            return bad("`step_started` is not a time".into());
        }
        if self.steps_done() > 0 && self.models.is_empty() {
            return bad("steps are done but `models` is empty".into());
        }
        if !(self.config.budget_s.is_finite() && self.config.budget_s > 0.0) {
            return bad(format!("`budget_s` {}", self.config.budget_s));
        }
        Ok(())
    }
}
