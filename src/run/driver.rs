//! The run lifecycle, written once: refuse an existing folder → prepare → build the learner →
//! create the folder → settings → LR range test when asked → notes → train the plan with a
//! checkpoint after every epoch → on failure keep the folder (resumable) or remove it → finish.
//! `resume` replays it from the folder's settings and checkpoint.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;

use super::recipe::Recipe;
use crate::error::{Error, Result};
use crate::learner::lr_find::{LrFind, LrFindConfig, round_lr};
use crate::learner::{Checkpoint, Learner, Listen, Listener, Stage, Trainable, checkpoint};
use crate::report::plot::plot_lr_find;
use crate::run_dir::{self, RunDir, rank_folder};

/// Trains `recipe` into the new run folder `run_dir` (refused when it exists) and finishes it.
/// `listen` hears the notes, every epoch and every batch.
pub fn train<R: Recipe>(
    recipe: R,
    run_dir: &Path,
    device: &Device,
    mut listen: Listen,
) -> Result<R::Summary> {
    // Rank 0 alone checks (the others write elsewhere, and could see its new folder).
    if crate::distributed::is_main() {
        RunDir::refuse_existing(run_dir)?;
    }
    let (_private, run_dir) = &rank_folder(run_dir, false)?;
    let t0 = Instant::now();
    let mut recipe = recipe.with_absolute_paths();
    let p = recipe.prepare(device, &mut listen)?;
    let mut learner = recipe.learner(&p, device, true, &mut listen)?;
    let run = RunDir::create(run_dir)?;
    let _lock = run.lock()?;
    let trained = (|| {
        run.write_settings(recipe.settings())?;
        recipe.start(&run, &p)?;
        if recipe.lr_auto() {
            let found = lr_find_into(&mut learner, &run)?;
            let lr = round_lr(found.suggestions.valley);
            recipe.set_found_lr(lr);
            listen.note(&format!(
                "`lr` auto: the LR finder suggests {lr:.2e} (valley); training with it"
            ));
            run.write_settings(recipe.settings())?;
        }
        for n in recipe.notes(&p) {
            listen.note(&n);
        }
        attach(&recipe, &run, &p, &mut learner, listen);
        execute(&mut learner, &recipe.plan(), 0, 0)
    })();
    if let Err(e) = trained {
        // Kept only with a committed checkpoint: a failure before the first one (a full disk
        // while writing it) leaves nothing to resume, and the name free.
        return Err(run.fail(e, has_checkpoint(run.path())));
    }
    recipe.finish(&run, &learner, &p, t0.elapsed().as_secs_f64())
}

/// Resumes the run in `run_dir` from its last checkpoint (its settings rebuild the recipe) and
/// finishes it.
pub fn resume<R: Recipe>(
    run_dir: &Path,
    device: &Device,
    mut listen: Listen,
) -> Result<R::Summary> {
    let t0 = Instant::now();
    let (_private, run_dir) = &rank_folder(run_dir, true)?;
    let run = RunDir::open(run_dir)?;
    let _lock = run.lock()?;
    let ckpt = run.checkpoint_dir();
    let saved = checkpoint::to_resume(run.path(), &ckpt)?;
    let recipe = R::from_settings(run.read_settings()?);
    let p = recipe
        .prepare(device, &mut listen)
        .map_err(|e| e.in_file(run.file(run_dir::SETTINGS)))?;
    if let (Some(then), Some((data, now))) = (&saved.data, recipe.fingerprint(&p))
        && let Some(note) = then.check_resume(&now, &data)?
    {
        listen.note(&note);
    }
    let mut learner = recipe.learner(&p, device, false, &mut listen)?;
    let state = learner.load_checkpoint(&ckpt)?;
    attach(&recipe, &run, &p, &mut learner, listen);
    execute(
        &mut learner,
        &recipe.plan(),
        state.stage,
        state.stage_epochs_done,
    )
    .map_err(|e| run.fail(e, true))?;
    recipe.finish(&run, &learner, &p, t0.elapsed().as_secs_f64())
}

/// Continues the run in `run_dir` where it stands: resumed from its checkpoint, or — a folder
/// without one, interrupted before its first epoch — removed and trained afresh from `recipe`.
/// For runs that a larger job owns and restarts (ensemble members, playbook steps, GAN nets).
pub fn train_or_resume<R: Recipe>(
    recipe: R,
    run_dir: &Path,
    device: &Device,
    listen: Listen,
) -> Result<R::Summary> {
    if has_checkpoint(run_dir) {
        return resume::<R>(run_dir, device, listen);
    }
    if run_dir.exists() && crate::distributed::is_main() {
        // Not while another process trains in it (its first epoch not yet checkpointed).
        drop(RunDir::open(run_dir)?.lock()?);
        std::fs::remove_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
    }
    train(recipe, run_dir, device, listen)
}

/// The learner's callbacks for a run: the recipe's, the checkpoint, then the listener.
fn attach<R: Recipe>(
    recipe: &R,
    run: &RunDir,
    p: &R::Prepared,
    learner: &mut Learner<R::Model>,
    listen: Listen,
) {
    learner.callbacks = recipe.callbacks(run, p);
    let data = recipe.fingerprint(p).map(|(_, fp)| fp);
    learner.callbacks.push(Box::new(
        Checkpoint::new(run.checkpoint_dir()).with_data(data),
    ));
    learner.add_listener(listen);
}

/// Runs the stages of `plan` from stage `from_stage`, epoch `from_epoch`.
pub fn execute<M: Trainable>(
    learner: &mut Learner<M>,
    plan: &[Stage],
    from_stage: usize,
    from_epoch: usize,
) -> Result<()> {
    for (i, stage) in plan.iter().enumerate().skip(from_stage) {
        learner.stage = i;
        let start = if i == from_stage { from_epoch } else { 0 };
        if start < stage.epochs {
            learner.run_stage(stage, start)?;
        }
    }
    Ok(())
}

/// Runs the LR range test on `learner` and writes `lr_find.json` and `lr_find.png` into `run`.
pub fn lr_find_into<M: Trainable>(learner: &mut Learner<M>, run: &RunDir) -> Result<LrFind> {
    let found = learner.lr_find(LrFindConfig::default())?;
    crate::io::write_json(&run.file(run_dir::LR_FIND), &found)?;
    plot_lr_find(&found, &run.file(run_dir::LR_FIND_PLOT))?;
    Ok(found)
}

/// Whether `run_dir` holds a committed checkpoint (an interrupted run that a resume continues;
/// one that cannot be read is said so by the resume, never removed).
pub fn has_checkpoint(run_dir: &Path) -> bool {
    run_dir
        .join(run_dir::CHECKPOINT)
        .join(checkpoint::STATE_FILE)
        .exists()
}
