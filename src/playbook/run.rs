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
use super::plan::{DataSize, MEMBERS_FROM_EPOCHS, MIN_LR, Plan, Speeds, Step, Wishes, plan};
use super::state::{PLAN_FILE, PlaybookConfig, PlaybookState, STATE_FILE, STEPS, StepResult};
use super::steps::Play;
use crate::data::Item;
use crate::error::Result;
use crate::io::{read_json, write_json};
use crate::learner::{Listen, Listener};
use crate::models::Arch;
use crate::run_dir::RunDir;
use crate::vision::{self, TrainConfig};

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
        workers: config.workers,
    };
    let lr = crate::learner::lr_find::round_lr(m.lr_find.suggestions.valley).max(MIN_LR);
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
            "  {:<28} {:>8.0} s  {}{}",
            s.step.name(),
            s.estimate_s,
            s.step.describe(),
            if s.beside {
                " (beside the main model, on another worker)"
            } else {
                ""
            }
        ));
    }
    out.push(format!(
        "  {:<28} {:>8.0} s  of {:.0} s",
        "total",
        plan.estimate_s(),
        plan.wishes.budget_s
    ));
    let main = plan.steps.iter().find_map(|s| match s.step {
        Step::Train { .. } => Some(s.step.length()),
        _ => None,
    });
    let members = plan
        .steps
        .iter()
        .filter(|s| matches!(s.step, Step::Member { .. }))
        .count();
    if let (Some(e), 0) = (main, members) {
        out.push(format!(
            "  no ensemble members: the budget buys one model {}; a second model pays only once each gets {MEMBERS_FROM_EPOCHS}",
            super::plan::length_text(e)
        ));
    }
    out
}

/// Runs a new playbook into the folder `dir` (which must not exist).
pub fn run(
    config: &PlaybookConfig,
    dir: &Path,
    device: &Device,
    mut progress: Listen,
) -> Result<PlaybookState> {
    start(config, dir, device, &mut progress)?;
    resume_in(dir, device, progress, Until::End)
}

/// Measures, plans and creates the playbook folder `dir` (which must not exist) with its plan
/// and state, running no step: [`resume`] runs them, or, with several workers, [`run_main`] and
/// [`run_beside`] on each.
pub fn start(
    config: &PlaybookConfig,
    dir: &Path,
    device: &Device,
    progress: &mut Listen,
) -> Result<PlaybookState> {
    RunDir::refuse_existing(dir)?;
    let t0 = Instant::now();
    let (plan, notes) = make_plan(config, device)?;
    for n in notes.iter().chain(&plan_text(&plan)) {
        progress.note(n);
    }
    let run = RunDir::create(dir)?;
    let _lock = run.lock()?;
    write_json(&run.file(PLAN_FILE), &plan)?;
    let measure = StepResult {
        name: "measure".into(),
        what: "bench and LR range test".into(),
        accuracy: None,
        loss: None,
        gain: None,
        seconds: t0.elapsed().as_secs_f64(),
        note: String::new(),
        run: None,
        beside: false,
        ended: Some(unix_s(std::time::SystemTime::now())),
    };
    let state = PlaybookState {
        config: config.clone(),
        plan,
        results: vec![measure],
        models: Vec::new(),
        tta_helped: false,
        step_started: None,
        interrupted_s: 0.0,
        waited_s: 0.0,
    };
    write_json(&run.file(STATE_FILE), &state)?;
    Ok(state)
}

/// Runs the main model's steps of the playbook in `dir` (made by [`start`]), up to the first
/// step beside them that has not ended ([`run_beside`] runs those on other workers; when all
/// have, on to the ensemble step); then [`resume`] ends it.
pub fn run_main(dir: &Path, device: &Device, progress: Listen) -> Result<PlaybookState> {
    resume_in(dir, device, progress, Until::Beside)
}

/// Runs step `index` (from 0) of the playbook in `dir`, one that trains beside the main model,
/// on this worker: its planned epochs whatever the time, its result in `steps/NN-name.json`
/// for [`resume`] to collect; the result already there when it ran before (a retried task).
pub fn run_beside(
    dir: &Path,
    index: usize,
    device: &Device,
    mut progress: Listen,
) -> Result<StepResult> {
    let run = RunDir::open(dir)?;
    let mut state = load_state(&run)?;
    let Some(planned) = state.plan.steps.get(index).filter(|s| s.beside).cloned() else {
        return Err(crate::error::Error::model(
            run.file(STATE_FILE),
            format!("its step {index} does not train beside the main model"),
        ));
    };
    let folder = step_folder(index, &planned.step);
    if let Some(done) = beside_result(&run, &folder)? {
        return Ok(done);
    }
    let valid = validation(&state.config.base())?;
    let t0 = Instant::now();
    let mut result = StepResult::of(&planned.step);
    let mut play = Play::new(
        &run,
        &mut state,
        device,
        &mut progress,
        &valid,
        folder.clone(),
        0.0,
    );
    // Its epochs as planned: the main model's time is its own, whatever the others' pace.
    play.pace = 1.0;
    play.room = f64::INFINITY;
    planned.step.run(&mut play, &mut result)?;
    result.seconds = t0.elapsed().as_secs_f64();
    result.beside = true;
    if result.note.is_empty() {
        result.note = "trained beside the main model, on another worker".into();
    }
    result.ended = Some(unix_s(std::time::SystemTime::now()));
    let file = run.file(&beside_file(&folder));
    write_json(&file, &result)?;
    // As a retried task will read it (JSON may round a float's last digit).
    read_json(&file)
}

/// The indices (from 0) of the steps of the playbook in `dir` that train beside its main model.
pub fn beside_steps(dir: &Path) -> Result<Vec<usize>> {
    let state = load_state(&RunDir::open(dir)?)?;
    Ok((state.plan.steps.iter().enumerate())
        .filter(|(_, s)| s.beside)
        .map(|(i, _)| i)
        .collect())
}

/// The playbook's state in `run`, refused when it cannot be continued.
fn load_state(run: &RunDir) -> Result<PlaybookState> {
    let path = run.file(STATE_FILE);
    let state: PlaybookState = read_json(&path)?;
    state.check(&path)?;
    Ok(state)
}

/// The run folder of step `index` (from 0), relative to the playbook folder.
fn step_folder(index: usize, step: &Step) -> PathBuf {
    PathBuf::from(STEPS).join(format!("{:02}-{}", index + 1, step.name()))
}

/// Where a step run beside the main model leaves its result: beside its run folder.
fn beside_file(folder: &Path) -> String {
    format!("{}.json", folder.to_string_lossy())
}

/// The result of the step in `folder` run beside the main model, once it has ended.
fn beside_result(run: &RunDir, folder: &Path) -> Result<Option<StepResult>> {
    let path = run.file(&beside_file(folder));
    if !path.is_file() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}

/// How far a resumed playbook goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Every step, the output files too.
    End,
    /// Up to the first step beside the main model that has not ended.
    Beside,
}

/// Continues the playbook in `dir` after an interruption: finished steps are kept, an
/// interrupted training resumes from its checkpoint, the rest runs within what is left of the
/// budget. Steps planned beside the main model that ended on other workers are collected;
/// those that did not run here, in turn.
pub fn resume(dir: &Path, device: &Device, progress: Listen) -> Result<PlaybookState> {
    resume_in(dir, device, progress, Until::End)
}

/// [`resume`], up to `until`.
fn resume_in(
    dir: &Path,
    device: &Device,
    mut progress: Listen,
    until: Until,
) -> Result<PlaybookState> {
    let run = RunDir::open(dir)?;
    let _lock = run.lock()?;
    let mut state = load_state(&run)?;
    if let Some(lost) = count_interrupted(&mut state, &run.file(HEARTBEAT)) {
        progress.note(&format!(
            "the interrupted step {} had run {lost:.0} s: counted in the budget",
            state.steps_done() + 1
        ));
    }
    if state.steps_done() > 0 {
        progress.note(&format!(
            "resuming {}: {} of {} steps done, {:.0} s of {:.0} s spent",
            dir.display(),
            state.steps_done(),
            state.plan.steps.len(),
            state.spent_s(),
            state.config.budget_s
        ));
    }
    continue_steps(&run, &mut state, device, &mut progress, until)?;
    Ok(state)
}

/// A file whose modification time the playbook keeps current while it runs, so a resume after a
/// kill knows how long the interrupted step ran.
const HEARTBEAT: &str = ".heartbeat";

/// `t` in seconds since the Unix epoch.
fn unix_s(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Adds the time the interrupted step ran (from its start to the last `heartbeat` its process
/// left) to the time spent; returns it, or `None` when no step was interrupted.
fn count_interrupted(state: &mut PlaybookState, heartbeat: &Path) -> Option<f64> {
    let started = state.step_started.take()?;
    let alive = std::fs::metadata(heartbeat)
        .and_then(|m| m.modified())
        .map_or(started, unix_s);
    let lost = (alive - started).max(0.0);
    state.interrupted_s += lost;
    Some(lost)
}

/// Touches a file every second from a thread of its own until dropped.
struct Heartbeat {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(path: PathBuf) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = std::fs::File::create(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                std::thread::park_timeout(std::time::Duration::from_secs(1));
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The validation images of the playbook's data (the split every step shares).
fn validation(config: &TrainConfig) -> Result<Vec<Item>> {
    Ok(vision::load_data(config)?.valid)
}

fn continue_steps(
    run: &RunDir,
    state: &mut PlaybookState,
    device: &Device,
    progress: &mut Listen,
    until: Until,
) -> Result<()> {
    let base = state.config.base();
    let valid = validation(&base)?;
    let steps = state.plan.steps.clone();
    let _heartbeat = Heartbeat::start(run.file(HEARTBEAT));
    for (i, planned) in steps.iter().enumerate().skip(state.steps_done()) {
        let folder = step_folder(i, &planned.step);
        if planned.beside {
            if let Some(r) = beside_result(run, &folder)? {
                collect(state, r);
                write_json(&run.file(STATE_FILE), &*state)?;
                continue;
            }
            if until == Until::Beside {
                return Ok(());
            }
        }
        let t0 = Instant::now();
        state.step_started = Some(unix_s(std::time::SystemTime::now()));
        write_json(&run.file(STATE_FILE), &*state)?;
        let later: f64 = steps
            .iter()
            .skip(i + 1)
            .filter(|s| !s.beside)
            .map(|s| s.estimate_s)
            .sum();
        let mut result = StepResult::of(&planned.step);
        progress.note(&format!("step {}: {}", i + 1, result.what));
        let mut play = Play::new(run, state, device, progress, &valid, folder, later);
        planned.step.run(&mut play, &mut result)?;
        result.seconds = t0.elapsed().as_secs_f64();
        result.ended = Some(unix_s(std::time::SystemTime::now()));
        state.step_started = None;
        state.results.push(result);
        write_json(&run.file(STATE_FILE), &*state)?;
    }
    if until == Until::End {
        write_page(run, state)?;
        predict_test(run, state, device)?;
    }
    Ok(())
}

/// Adds the result of a step that ran beside the main model, its model among the final ones,
/// and the time the main model's steps waited for it.
fn collect(state: &mut PlaybookState, result: StepResult) {
    let main_ended = state
        .results
        .iter()
        .rev()
        .find(|r| !r.beside)
        .and_then(|r| r.ended);
    if let (Some(main), Some(ended)) = (main_ended, result.ended) {
        // At most its own seconds: a resume days later does not charge the days.
        state.waited_s = state
            .waited_s
            .max((ended - main).clamp(0.0, result.seconds));
    }
    if let Some(run) = &result.run {
        state.models.push(run.clone());
    }
    state.results.push(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan of no steps, for the state's bookkeeping.
    fn make_test_plan() -> Plan {
        Plan {
            data: DataSize {
                train: 10,
                valid: 2,
                size: 28,
            },
            speeds: Speeds {
                train_s_per_image: 0.01,
                infer_s_per_image: 0.001,
                epoch_overhead_s: 0.3,
                run_overhead_s: 1.0,
            },
            wishes: Wishes {
                budget_s: 60.0,
                spent_s: 1.0,
                drop_confusing: false,
                workers: 1,
            },
            arch: Arch::Resnet18,
            lr: 1e-3,
            pretrained: None,
            steps: Vec::new(),
        }
    }

    #[test]
    fn a_step_beside_the_main_model_counts_only_as_long_as_it_was_waited_for() {
        let row = |name: &str, seconds: f64, ended: f64, beside: bool| StepResult {
            name: name.into(),
            what: String::new(),
            accuracy: Some(0.5),
            loss: None,
            gain: None,
            seconds,
            note: String::new(),
            run: beside.then(|| PathBuf::from(format!("steps/{name}"))),
            beside,
            ended: Some(ended),
        };
        let mut state = PlaybookState {
            config: PlaybookConfig::new("d", 60.0),
            plan: make_test_plan(),
            results: vec![
                row("measure", 5.0, 1005.0, false),
                row("tta", 50.0, 1055.0, false),
            ],
            models: vec![PathBuf::from("steps/01-train")],
            tta_helped: false,
            step_started: None,
            interrupted_s: 0.0,
            waited_s: 0.0,
        };
        // Ended before the main model's steps: no wait.
        collect(&mut state, row("a", 40.0, 1045.0, true));
        assert_eq!(state.spent_s(), 55.0);
        // Ended 10 s after them: 10 s.
        collect(&mut state, row("b", 45.0, 1065.0, true));
        assert_eq!(state.spent_s(), 65.0);
        // Collected a day later: at most its own seconds.
        collect(&mut state, row("c", 30.0, 1055.0 + 86_400.0, true));
        assert_eq!(state.spent_s(), 85.0);
        assert_eq!(state.models.len(), 4, "the members after the main model");
        assert_eq!(state.steps_done(), 4);
    }

    #[test]
    fn an_interrupted_step_counts_until_its_last_heartbeat_and_a_damaged_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let beat = dir.path().join(HEARTBEAT);
        let heart = Heartbeat::start(beat.clone());
        std::thread::sleep(std::time::Duration::from_millis(1200));
        drop(heart);
        let then = unix_s(std::fs::metadata(&beat).unwrap().modified().unwrap());
        let mut state = PlaybookState {
            config: PlaybookConfig::new("d", 60.0),
            plan: make_test_plan(),
            results: Vec::new(),
            models: Vec::new(),
            tta_helped: false,
            step_started: Some(then - 20.0),
            interrupted_s: 0.0,
            waited_s: 0.0,
        };
        let lost = count_interrupted(&mut state, &beat).unwrap();
        assert!((lost - 20.0).abs() < 0.01, "{lost}");
        assert!((state.spent_s() - 20.0).abs() < 0.01);
        assert_eq!(count_interrupted(&mut state, &beat), None, "counted once");
        let err = state.check(Path::new("p.json")).unwrap_err().to_string();
        assert!(err.contains("p.json") && err.contains("results"), "{err}");
    }
}
