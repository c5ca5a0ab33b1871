//! Each step of the playbook names, describes and runs itself ([`Step::run`]): the main model,
//! confusing images, TTA, ensemble members and the ensemble, given what the playbook has done so
//! far and the time it may take ([`Play`]).

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::plan::{
    DataSize, Step, length_text, longest_fit, main_estimate, sizes_for, split_length,
    train_estimate,
};
use super::state::{PlaybookState, StepResult};
use crate::clean::{Journal, flags, out_of_fold};
use crate::data::Item;
use crate::data::sample::Sampling;
use crate::ensemble::report::score_rows;
use crate::error::Result;
use crate::infer::{Combination, EnsembleFile, Inference, Member, Predictor, Tta};
use crate::interpret::{Split, interpret_folder};
use crate::io::write_atomic;
use crate::learner::{Listen, Lrs};
use crate::run::plan::most_epochs;
use crate::run_dir::RunDir;
use crate::text::count;
use crate::vision::{self, TrainConfig};

/// What a step runs with: the playbook folder and state, the device and listener, the
/// validation images every step is scored on, its own folder, and the time it may take.
pub struct Play<'a> {
    /// The playbook folder.
    pub run: &'a RunDir,
    /// What the playbook has done so far.
    pub state: &'a mut PlaybookState,
    /// Where to compute.
    pub device: &'a Device,
    /// Who hears the step's training.
    pub progress: &'a mut Listen,
    /// The validation images.
    pub valid: &'a [Item],
    /// The step's run folder, relative to the playbook folder.
    pub folder: PathBuf,
    /// How much slower (or faster) than planned the steps done so far ran.
    pub pace: f64,
    /// Seconds this step may take: what is left of the budget less the later steps' estimates
    /// (at the pace so far).
    pub room: f64,
}

impl<'a> Play<'a> {
    /// The context of the next step, whose later steps are estimated at `later_s` seconds.
    pub fn new(
        run: &'a RunDir,
        state: &'a mut PlaybookState,
        device: &'a Device,
        progress: &'a mut Listen,
        valid: &'a [Item],
        folder: PathBuf,
        later_s: f64,
    ) -> Self {
        let planned: f64 = state.plan.wishes.spent_s
            + state
                .plan
                .steps
                .iter()
                .take(state.steps_done())
                .filter(|s| !s.beside)
                .map(|s| s.estimate_s)
                .sum::<f64>();
        let pace = (state.spent_s() / planned.max(1.0)).clamp(0.5, 3.0);
        let room = state.config.budget_s - state.spent_s() - later_s * pace;
        Self {
            run,
            state,
            device,
            progress,
            valid,
            folder,
            pace,
            room,
        }
    }

    /// The step's run folder.
    fn path(&self) -> PathBuf {
        self.run.file(&self.folder.to_string_lossy())
    }

    /// The main model's run folder.
    fn main_model(&self) -> PathBuf {
        self.run.file(&self.state.models[0].to_string_lossy())
    }

    /// Trains (or resumes, or finds finished) this step's run folder with `config`, and scores
    /// it on the validation images.
    fn train(&mut self, config: &TrainConfig, result: &mut StepResult) -> Result<f64> {
        let path = self.path();
        train_or_resume(config, &path, self.device, self.progress)?;
        let pred = Predictor::load(&path, self.device)?;
        let (a, l) = score(&pred, self.valid, Inference::Plain);
        result.accuracy = Some(a);
        result.loss = Some(l);
        result.run = Some(self.folder.clone());
        Ok(a)
    }
}

impl StepResult {
    /// The row of `step`, before it runs.
    pub fn of(step: &Step) -> Self {
        Self {
            name: step.name(),
            what: step.describe(),
            accuracy: None,
            loss: None,
            gain: None,
            seconds: 0.0,
            note: String::new(),
            run: None,
            beside: false,
            ended: None,
        }
    }

    /// Says that `step` runs `run` of its planned `planned` epochs, to fit the budget, and
    /// describes it as it runs.
    fn shortened(&mut self, step: &Step, run: f64, planned: f64) {
        if (run - planned).abs() > 1e-9 {
            let planned = match split_length(planned) {
                (e, None) => e.to_string(),
                _ => format!("{planned:.2}"),
            };
            self.note = format!(
                "{} instead of {planned}, to fit the budget",
                length_text(run)
            );
            self.what = step.with_length(run).describe();
        }
    }
}

impl Step {
    /// A short name for tables and folder names.
    pub fn name(&self) -> String {
        match self {
            Step::Train { .. } => "train".into(),
            Step::Confusing { .. } => "confusing".into(),
            Step::Retrain { .. } => "retrain".into(),
            Step::Tta => "tta".into(),
            Step::Member {
                arch, seed, size, ..
            } => format!("member-{arch}-s{seed}-{size}px"),
            Step::Ensemble => "ensemble".into(),
        }
    }

    /// What the step does, in words.
    pub fn describe(&self) -> String {
        let epochs = |n: &usize| count(*n, "epoch");
        match self {
            Step::Train { sizes, mixup, .. } => format!(
                "{} of one-cycle at {} px{}",
                length_text(self.length()),
                sizes
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" → "),
                if *mixup { ", MixUp" } else { "" }
            ),
            Step::Confusing { folds: 0, .. } => {
                "confusing images judged by the main model (in-sample)".into()
            }
            Step::Confusing { folds, epochs: e } => {
                format!(
                    "confusing images out of fold: {folds} models of {}",
                    epochs(e)
                )
            }
            Step::Retrain { .. } => format!(
                "{} again without the confusing images",
                length_text(self.length())
            ),
            Step::Tta => "test-time augmentation on the validation images".into(),
            Step::Member {
                arch,
                seed,
                size,
                epochs: e,
            } => format!("{arch}, seed {seed}, {size} px, {}", epochs(e)),
            Step::Ensemble => "greedy selection of the ensemble (Caruana)".into(),
        }
    }

    /// Runs this step within `play`, recording what it did and bought in `result`.
    pub fn run(&self, play: &mut Play<'_>, result: &mut StepResult) -> Result<()> {
        match self {
            Step::Train { .. } | Step::Retrain { .. } => {
                main_model(play, self, self.length(), result)
            }
            Step::Confusing { folds, epochs } => confusing(play, *folds, *epochs, result),
            Step::Tta => tta(play, result),
            Step::Member {
                arch,
                seed,
                size,
                epochs,
            } => {
                let config = TrainConfig {
                    arch: *arch,
                    seed: *seed,
                    size: Some(*size),
                    epochs: *epochs,
                    ..play.state.config.base()
                };
                member(play, self, config, result)
            }
            Step::Ensemble => finish_ensemble(play.run, play.state, result, play.device),
        }
    }
}

/// The main model (or its retraining without the confusing images), as much of its planned
/// `length` in epochs as fits.
fn main_model(
    play: &mut Play<'_>,
    step: &Step,
    length: f64,
    result: &mut StepResult,
) -> Result<()> {
    let (data, speeds, pace) = (play.state.plan.data, play.state.plan.speeds, play.pace);
    let l = longest_fit(length, play.room, |l| {
        main_estimate(&data, &speeds, l) * pace
    });
    result.shortened(step, l, length);
    let previous = play.state.results.iter().rev().find_map(|r| r.accuracy);
    let a = play.train(&main_recipe(play.state, l), result)?;
    result.gain = previous.map(|p| a - p);
    play.state.models = vec![play.folder.clone()];
    Ok(())
}

/// Confusing training images, judged out of fold (or by the main model), written to a CSV and
/// quarantined when asked.
fn confusing(
    play: &mut Play<'_>,
    folds: usize,
    epochs: usize,
    result: &mut StepResult,
) -> Result<()> {
    let main = play.main_model();
    let data = vision::load_data(&play.state.config.base())?;
    // Out of fold only while the folds' models still fit what is left, at the pace so far.
    let plan = &play.state.plan;
    let fold_data = DataSize {
        train: plan.data.train * 2 / 3,
        valid: plan.data.train / 3,
        ..plan.data
    };
    let folds_s = folds as f64
        * train_estimate(
            &fold_data,
            &plan.speeds,
            &sizes_for(plan.data.size, epochs),
            epochs,
        )
        * play.pace;
    let folds = if folds_s <= play.room { folds } else { 0 };
    let interp = if folds >= 2 {
        let config = main_recipe(play.state, epochs as f64);
        out_of_fold(&config, &data, folds, play.device, play.progress.clone())?
    } else {
        let pred = Predictor::load(&main, play.device)?;
        interpret_folder(&pred, &data, Split::Train, 64)?
    };
    let flagged = flags(&interp, 0.9);
    let csv = crate::clean::confusing::to_csv(&flagged)?;
    write_atomic(
        &play.run.file(crate::clean::confusing::CONFUSING_FILE),
        csv.as_bytes(),
    )?;
    result.note = format!(
        "{} of {} training images confidently wrong ({}); review them on the review page with the model in {}",
        flagged.len(),
        interp.images.len(),
        crate::clean::confusing::CONFUSING_FILE,
        main.display()
    );
    if play.state.config.drop_confusing && !flagged.is_empty() {
        let journal = Journal::new(&data.root)?;
        for f in &flagged {
            if let Some(rel) = journal.relative(&f.path) {
                journal.quarantine(&rel)?;
            }
        }
        result.note.push_str(&format!(
            "; quarantined (journaled in {}: undoable)",
            data.root.display()
        ));
    }
    Ok(())
}

/// Test-time augmentation of the main model, against its plain predictions.
fn tta(play: &mut Play<'_>, result: &mut StepResult) -> Result<()> {
    let pred = Predictor::load(&play.main_model(), play.device)?;
    let (plain, _) = score(&pred, play.valid, Inference::Plain);
    let (a, l) = score(&pred, play.valid, Inference::Tta(Tta::default()));
    result.accuracy = Some(a);
    result.loss = Some(l);
    result.gain = Some(a - plain);
    play.state.tta_helped = a > plain;
    Ok(())
}

/// An ensemble member of `config`'s architecture, seed and size with its planned epochs, or as
/// many as the budget still holds; skipped when under three quarters of them fit (a member much
/// shorter than the main model weakens the ensemble more than it adds).
fn member(
    play: &mut Play<'_>,
    step: &Step,
    config: TrainConfig,
    result: &mut StepResult,
) -> Result<()> {
    let plan = &play.state.plan;
    let size = config.size.unwrap_or(plan.data.size);
    let d = DataSize { size, ..plan.data };
    let sp = plan.speeds.at_size(plan.data.size, size);
    let pace = play.pace;
    let est = |e: usize| train_estimate(&d, &sp, &[size], e) * pace;
    let e = most_epochs(1, config.epochs, play.room, est);
    if est(e) > play.room || 4 * e < 3 * config.epochs {
        result.note = format!(
            "skipped: {e} of its {} fit what is left of the budget",
            count(config.epochs, "epoch")
        );
        return Ok(());
    }
    result.shortened(step, e as f64, config.epochs as f64);
    let config = TrainConfig {
        epochs: e,
        split_seed: Some(play.state.config.seed),
        lr: Lrs::Single(plan.lr),
        mixup: (e >= super::plan::MIXUP_FROM_EPOCHS).then_some(0.4),
        sampling: Some(Sampling::All),
        pretrained: plan.pretrained.clone(),
        fine_tune: plan.pretrained.is_some(),
        ..config
    };
    play.train(&config, result)?;
    play.state.models.push(play.folder.clone());
    Ok(())
}

/// Accuracy and loss of `predictor` on `items` (with `how`).
fn score(predictor: &Predictor, items: &[Item], how: Inference) -> (f64, f64) {
    let out = predictor.infer(items, 64, how);
    let (probs, targets): (Vec<Vec<f32>>, Vec<usize>) = out
        .probs
        .into_iter()
        .zip(items)
        .filter_map(|(p, i)| Some((p?, i.label)))
        .unzip();
    let s = score_rows("", &probs, &targets);
    (s.accuracy, s.loss)
}

/// Trains (or resumes, or finds finished) the run folder `dir` with `config`.
fn train_or_resume(
    config: &TrainConfig,
    dir: &Path,
    device: &Device,
    progress: &Listen,
) -> Result<()> {
    if dir.join(crate::infer::bundle::CONFIG_FILE).is_file() {
        return Ok(());
    }
    let recipe = vision::VisionRecipe(config.clone());
    crate::run::train_or_resume(recipe, dir, device, progress.clone())?;
    Ok(())
}

/// The main recipe `length` epochs long (the last possibly a part of one): progressive sizes
/// from [`super::plan::PROGRESSIVE_FROM_EPOCHS`] epochs, one-cycle at the found LR, MixUp from
/// [`super::plan::MIXUP_FROM_EPOCHS`] epochs, fine-tuning from pretrained weights when found.
fn main_recipe(state: &PlaybookState, length: f64) -> TrainConfig {
    let p = &state.plan;
    let (epochs, last_epoch_pct) = split_length(length);
    let plan = crate::run::EpochPlan::split(&sizes_for(p.data.size, epochs), epochs);
    TrainConfig {
        epochs,
        last_epoch_pct,
        sizes: plan.sizes,
        size_epochs: plan.epochs,
        size: Some(p.data.size),
        lr: Lrs::Single(p.lr),
        mixup: (epochs >= super::plan::MIXUP_FROM_EPOCHS).then_some(0.4),
        pretrained: p.pretrained.clone(),
        fine_tune: p.pretrained.is_some(),
        ..state.config.base()
    }
}

/// Makes the playbook folder an ensemble of its final models, chosen by greedy selection on
/// half the validation images and judged on the other half.
fn finish_ensemble(
    run: &RunDir,
    state: &PlaybookState,
    result: &mut StepResult,
    device: &Device,
) -> Result<()> {
    let mut members = Vec::new();
    for m in &state.models {
        let path = run.file(&m.to_string_lossy());
        let config = vision::load_config(&path)?;
        members.push(Member {
            dir: m.clone(),
            arch: config.arch,
            seed: config.seed,
            size: crate::infer::bundle::load_bundle_config(&path)?.size,
            sampling: Sampling::All,
        });
    }
    let file = EnsembleFile {
        members,
        combination: Combination::Mean,
        fit_items: Vec::new(),
    };
    file.write(run.path())?;
    if state.models.len() < 2 {
        result.note = "one model: nothing to combine".into();
        return Ok(());
    }
    let s = crate::ensemble::select::select(run.path(), state.config.seed, false, device)?;
    let best = s
        .held_out
        .iter()
        .take(state.models.len())
        .map(|m| m.accuracy)
        .fold(f64::NEG_INFINITY, f64::max);
    result.accuracy = Some(s.score.accuracy);
    result.loss = Some(s.score.loss);
    result.gain = Some(s.score.accuracy - best);
    result.note = format!(
        "{} on the {} validation images not used to select; the gain is over the best single model on them{}",
        s.chosen_name,
        s.n_held,
        s.chosen.weights_note()
    );
    let r = crate::ensemble::report::report(run.path(), device)?;
    crate::ensemble::report::write(run.path(), &r)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::thresholds::{MIXUP_FROM_EPOCHS, PROGRESSIVE_FROM_EPOCHS};

    #[test]
    fn a_shortened_main_model_reads_as_it_runs() {
        let planned = PROGRESSIVE_FROM_EPOCHS.max(MIXUP_FROM_EPOCHS) + 2;
        let step = Step::main(28, planned as f64);
        let mut r = StepResult::of(&step);
        assert_eq!(
            r.what,
            format!("{planned} epochs of one-cycle at 16 → 28 px, MixUp")
        );
        r.shortened(&step, 5.0, planned as f64);
        assert_eq!(r.what, "5 epochs of one-cycle at 28 px");
        assert_eq!(
            r.note,
            format!("5 epochs instead of {planned}, to fit the budget")
        );
        let mut same = StepResult::of(&step);
        same.shortened(&step, planned as f64, planned as f64);
        assert_eq!((same.what, same.note), (step.describe(), String::new()));
        // A part of an epoch reads as such, planned or as it runs.
        let short = Step::main(28, 1.63);
        let mut r = StepResult::of(&short);
        assert_eq!(r.what, "1.63 epochs of one-cycle at 28 px");
        r.shortened(&short, 1.4, 1.63);
        assert_eq!(r.what, "1.40 epochs of one-cycle at 28 px");
        assert_eq!(r.note, "1.40 epochs instead of 1.63, to fit the budget");
    }
}
