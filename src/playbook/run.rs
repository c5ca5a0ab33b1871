//! Running the playbook: measure, plan, then each step as an ordinary run folder under the
//! playbook folder (`steps/NN-name/`), the state saved after every step so that `--resume`
//! continues after an interruption, the budget watched as it goes; at the end the playbook
//! folder is an ensemble folder of its final models (so `predict`, `evaluate`, `interpret` accept
//! it), with `playbook.html`, the table of what each step bought, and `predictions.csv` for an
//! unlabelled `test/` folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;

use super::output::{predict_test, write_page};
use super::plan::{DataSize, Plan, Speeds, Step, Wishes, plan, sizes_for, train_estimate};
use super::state::{
    PLAN_FILE, PlaybookConfig, PlaybookState, Progress, STATE_FILE, STEPS, StepResult,
};
use crate::clean::{Journal, flags, out_of_fold};
use crate::data::Item;
use crate::data::sample::Sampling;
use crate::ensemble::report::score_rows;
use crate::error::{Error, Result};
use crate::infer::{Combination, EnsembleFile, Inference, Member, Predictor, Tta};
use crate::interpret::{Split, interpret_folder};
use crate::io::{read_json, write_atomic, write_json};
use crate::learner::{Listener, Lrs};
use crate::models::Arch;
use crate::run_dir::RunDir;
use crate::vision::{self, TrainConfig};

/// Hands `text` to a fresh set of callbacks as a note.
fn note(progress: &mut Progress, text: &str) {
    progress.note(text);
}

/// Measures the machine on the data (LR range test, timed) and plans within the budget; writes
/// nothing.
pub fn make_plan(config: &PlaybookConfig, device: &Device) -> Result<(Plan, Vec<String>)> {
    let t0 = Instant::now();
    let mut base = config.base();
    let mut notes = Vec::new();
    let pretrained = pretrained_for(config.arch, &mut notes);
    base.pretrained.clone_from(&pretrained);
    base.fine_tune = pretrained.is_some();
    let m = vision::measure(&base, device)?;
    notes.extend(m.notes.iter().cloned());
    let d = DataSize {
        train: m.n_train,
        valid: m.n_valid,
        size: m.size,
    };
    let speeds = Speeds {
        train_s_per_image: m.train_s_per_image,
        infer_s_per_image: m.infer_s_per_image,
        epoch_overhead_s: 0.3,
        run_overhead_s: 1.0 + m.load_s,
    };
    let wishes = Wishes {
        budget_s: config.budget_s,
        spent_s: t0.elapsed().as_secs_f64(),
        drop_confusing: config.drop_confusing,
    };
    let lr = crate::learner::lr_find::round_lr(m.lr_find.suggestions.valley);
    Ok((plan(d, speeds, wishes, config.arch, lr, pretrained), notes))
}

/// The named pretrained checkpoint of `arch` when it is cached or can be downloaded now.
fn pretrained_for(arch: Arch, notes: &mut Vec<String>) -> Option<String> {
    let name = arch.to_string();
    let c = crate::weights::hub::find(&name)?;
    match c.fetch(&crate::weights::cache_dir()) {
        Ok(_) => Some(name),
        Err(e) => {
            notes.push(format!(
                "pretrained {name} weights are not available ({e}): training from scratch"
            ));
            None
        }
    }
}

/// The plan as lines of text, with the total against the budget.
pub fn plan_text(plan: &Plan) -> Vec<String> {
    let mut out = vec![format!(
        "plan for {} training and {} validation images at {} px, {}{} at lr {:.2e}, within {:.0} s:",
        plan.data.train,
        plan.data.valid,
        plan.data.size,
        plan.arch,
        plan.pretrained
            .as_ref()
            .map(|p| format!(" from pretrained {p}"))
            .unwrap_or_default(),
        plan.lr,
        plan.wishes.budget_s
    )];
    out.push(format!(
        "  {:<28} {:>8.0} s  (bench and LR range test)",
        "measure", plan.wishes.spent_s
    ));
    for s in &plan.steps {
        out.push(format!(
            "  {:<28} {:>8.0} s  {}",
            s.step.name(),
            s.estimate_s,
            s.step.describe()
        ));
    }
    out.push(format!(
        "  {:<28} {:>8.0} s  of {:.0} s",
        "total",
        plan.estimate_s(),
        plan.wishes.budget_s
    ));
    out
}

/// Runs a new playbook into the folder `dir` (which must not exist).
pub fn run(
    config: &PlaybookConfig,
    dir: &Path,
    device: &Device,
    mut progress: Progress,
) -> Result<PlaybookState> {
    RunDir::refuse_existing(dir)?;
    let t0 = Instant::now();
    let (plan, notes) = make_plan(config, device)?;
    for n in notes.iter().chain(&plan_text(&plan)) {
        note(&mut progress, n);
    }
    let run = RunDir::create(dir)?;
    write_json(&run.file(PLAN_FILE), &plan)?;
    let mut state = PlaybookState {
        config: config.clone(),
        plan,
        results: vec![StepResult {
            name: "measure".into(),
            what: "bench and LR range test".into(),
            accuracy: None,
            loss: None,
            gain: None,
            seconds: t0.elapsed().as_secs_f64(),
            note: String::new(),
            run: None,
        }],
        models: Vec::new(),
        tta_helped: false,
    };
    write_json(&run.file(STATE_FILE), &state)?;
    continue_steps(&run, &mut state, device, &mut progress)?;
    Ok(state)
}

/// Continues the playbook in `dir` after an interruption: finished steps are kept, an
/// interrupted training resumes from its checkpoint, the rest runs within what is left of the
/// budget.
pub fn resume(dir: &Path, device: &Device, mut progress: Progress) -> Result<PlaybookState> {
    let run = RunDir::open(dir)?;
    let mut state: PlaybookState = read_json(&run.file(STATE_FILE))?;
    note(
        &mut progress,
        &format!(
            "resuming {}: {} of {} steps done, {:.0} s of {:.0} s spent",
            dir.display(),
            state.results.len() - 1,
            state.plan.steps.len(),
            state.spent_s(),
            state.config.budget_s
        ),
    );
    continue_steps(&run, &mut state, device, &mut progress)?;
    Ok(state)
}

/// The validation images of the playbook's data (the split every step shares).
fn validation(config: &TrainConfig) -> Result<Vec<Item>> {
    Ok(vision::load_data(config)?.valid)
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
fn train_step(
    config: &TrainConfig,
    dir: &Path,
    device: &Device,
    progress: &Progress,
) -> Result<()> {
    if dir.join(crate::infer::bundle::CONFIG_FILE).is_file() {
        return Ok(());
    }
    if vision::has_checkpoint(dir) {
        vision::resume(dir, device, progress.clone())?;
        return Ok(());
    }
    if dir.exists() {
        // Interrupted before its first epoch: our own folder, nothing in it to keep.
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    vision::train(config, dir, device, progress.clone())?;
    Ok(())
}

/// The main recipe at `epochs`: progressive sizes from [`super::plan::PROGRESSIVE_FROM_EPOCHS`]
/// epochs, one-cycle at the found LR, MixUp from [`super::plan::MIXUP_FROM_EPOCHS`] epochs,
/// fine-tuning from pretrained weights when found.
fn main_recipe(state: &PlaybookState, epochs: usize) -> TrainConfig {
    let p = &state.plan;
    let plan = crate::run::EpochPlan::split(&sizes_for(p.data.size, epochs), epochs);
    TrainConfig {
        epochs,
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

/// Scales an epoch count down so the step fits in `left` seconds at the pace measured so far.
fn fit_epochs(epochs: usize, estimate: impl Fn(usize) -> f64, left: f64) -> usize {
    let mut e = epochs;
    while e > 1 && estimate(e) > left {
        e -= (e / 4).max(1);
    }
    e
}

/// Scales an epoch count down to fit `left` seconds, or up (to [`super::plan::MAX_EPOCHS`])
/// to use them: the last member takes up what the earlier steps left of the budget.
fn fill_epochs(epochs: usize, estimate: impl Fn(usize) -> f64, left: f64) -> usize {
    let mut e = fit_epochs(epochs, &estimate, left);
    while e < super::plan::MAX_EPOCHS && estimate(e + 1) <= left {
        e += 1;
    }
    e
}

fn continue_steps(
    run: &RunDir,
    state: &mut PlaybookState,
    device: &Device,
    progress: &mut Progress,
) -> Result<()> {
    let base = state.config.base();
    let valid = validation(&base)?;
    let steps = state.plan.steps.clone();
    // How much slower (or faster) than planned the steps done so far ran.
    let pace = |state: &PlaybookState| {
        let planned: f64 = state.plan.wishes.spent_s
            + state
                .plan
                .steps
                .iter()
                .take(state.results.len() - 1)
                .map(|s| s.estimate_s)
                .sum::<f64>();
        (state.spent_s() / planned.max(1.0)).clamp(0.5, 3.0)
    };
    for (i, planned) in steps.iter().enumerate().skip(state.results.len() - 1) {
        let t0 = Instant::now();
        let left = state.config.budget_s - state.spent_s();
        let later: f64 = steps.iter().skip(i + 1).map(|s| s.estimate_s).sum::<f64>() * pace(state);
        let room = left - later;
        let folder = PathBuf::from(STEPS).join(format!("{:02}-{}", i + 1, planned.step.name()));
        let path = run.file(&folder.to_string_lossy());
        let mut result = StepResult {
            name: planned.step.name(),
            what: planned.step.describe(),
            accuracy: None,
            loss: None,
            gain: None,
            seconds: 0.0,
            note: String::new(),
            run: None,
        };
        note(progress, &format!("step {}: {}", i + 1, result.what));
        let previous = state.results.iter().rev().find_map(|r| r.accuracy);
        match &planned.step {
            Step::Train { epochs, .. } | Step::Retrain { epochs } => {
                let est = |e: usize| {
                    train_estimate(
                        &state.plan.data,
                        &state.plan.speeds,
                        &sizes_for(state.plan.data.size, e),
                        e,
                    ) * pace(state)
                };
                let e = fit_epochs(*epochs, est, room);
                if e < *epochs {
                    result.note = format!("{e} epochs instead of {epochs}, to fit the budget");
                    result.what = format!("{} ({e} epochs run)", result.what);
                }
                train_step(&main_recipe(state, e), &path, device, progress)?;
                let pred = Predictor::load(&path, device)?;
                let (a, l) = score(&pred, &valid, Inference::Plain);
                result.accuracy = Some(a);
                result.loss = Some(l);
                result.gain = previous.map(|p| a - p);
                result.run = Some(folder.clone());
                state.models = vec![folder];
            }
            Step::Confusing { folds, epochs } => {
                let main = run.file(&state.models[0].to_string_lossy());
                let data = vision::load_data(&base)?;
                let interp = if *folds >= 2 {
                    let config = main_recipe(state, *epochs);
                    out_of_fold(&config, &data, *folds, device, progress.clone())?
                } else {
                    let pred = Predictor::load(&main, device)?;
                    interpret_folder(&pred, &data, Split::Train, 64)?
                };
                let flagged = flags(&interp, 0.9);
                let csv = crate::clean::confusing::to_csv(&flagged)?;
                write_atomic(
                    &run.file(crate::clean::confusing::CONFUSING_FILE),
                    csv.as_bytes(),
                )?;
                result.note = format!(
                    "{} of {} training images confidently wrong ({}); review them on the review page with the model in {}",
                    flagged.len(),
                    interp.images.len(),
                    crate::clean::confusing::CONFUSING_FILE,
                    main.display()
                );
                if state.config.drop_confusing && !flagged.is_empty() {
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
            }
            Step::Tta => {
                let main = run.file(&state.models[0].to_string_lossy());
                let pred = Predictor::load(&main, device)?;
                let (plain, _) = score(&pred, &valid, Inference::Plain);
                let (a, l) = score(&pred, &valid, Inference::Tta(Tta::default()));
                result.accuracy = Some(a);
                result.loss = Some(l);
                result.gain = Some(a - plain);
                state.tta_helped = a > plain;
            }
            Step::Member {
                arch,
                seed,
                size,
                epochs,
            } => {
                let d = DataSize {
                    size: *size,
                    ..state.plan.data
                };
                let scale = (f64::from(*size) / f64::from(state.plan.data.size)).powi(2);
                let sp = Speeds {
                    train_s_per_image: state.plan.speeds.train_s_per_image * scale,
                    infer_s_per_image: state.plan.speeds.infer_s_per_image * scale,
                    ..state.plan.speeds
                };
                let est = |e: usize| train_estimate(&d, &sp, &[*size], e) * pace(state);
                if est(1) > room {
                    result.note = "skipped: it no longer fits the budget".into();
                } else {
                    let e = fill_epochs(*epochs, est, room);
                    if e != *epochs {
                        result.note = format!("{e} epochs instead of {epochs}, to fit the budget");
                        result.what = planned
                            .step
                            .describe()
                            .replace(&format!("{epochs} epochs"), &format!("{e} epochs"));
                    }
                    let config = TrainConfig {
                        arch: *arch,
                        seed: *seed,
                        split_seed: Some(state.config.seed),
                        size: Some(*size),
                        epochs: e,
                        lr: Lrs::Single(state.plan.lr),
                        mixup: (e >= super::plan::MIXUP_FROM_EPOCHS).then_some(0.4),
                        sampling: Some(Sampling::All),
                        pretrained: state.plan.pretrained.clone(),
                        fine_tune: state.plan.pretrained.is_some(),
                        ..base.clone()
                    };
                    train_step(&config, &path, device, progress)?;
                    let pred = Predictor::load(&path, device)?;
                    let (a, l) = score(&pred, &valid, Inference::Plain);
                    result.accuracy = Some(a);
                    result.loss = Some(l);
                    result.run = Some(folder.clone());
                    state.models.push(folder);
                }
            }
            Step::Ensemble => {
                finish_ensemble(run, state, &mut result, device)?;
            }
        }
        result.seconds = t0.elapsed().as_secs_f64();
        state.results.push(result);
        write_json(&run.file(STATE_FILE), &*state)?;
    }
    write_page(run, state)?;
    predict_test(run, state, device)?;
    Ok(())
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
