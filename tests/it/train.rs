//! Training: a tiny ResNet overfits, bundles round-trip, and an interrupted run resumes.

use crate::common;

use common::{rng_lock, tiny_model};

use fastvision::data::{DataLoaders, ImageFolder, ItemTransform, SplitConfig};
use fastvision::infer::{BundleConfig, Predictor, save_bundle};
use fastvision::learner::schedule::OneCycle;
use fastvision::learner::{Learner, Listen, Schedule};
use fastvision::models::{Arch, ClassifierConfig};
use fastvision::vision::{self, TrainConfig};

/// Twenty 32 px images of two classes in `dir`, validated on themselves, in batches of `bs`.
fn twenty_images(dir: &std::path::Path, bs: usize) -> DataLoaders {
    common::tiny_dataset(dir, 2, 10, 1);
    let mut data = ImageFolder::from_folder(dir, SplitConfig::default()).unwrap();
    data.valid = data.train.clone();
    let plain = ItemTransform::valid(32);
    DataLoaders::with_transforms(&data, plain, plain, bs, 0)
}

#[test]
fn a_tiny_resnet_overfits_twenty_images() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let dls = twenty_images(dir.path(), 10);
    let mut learner =
        Learner::from_config(&tiny_model(2).with_ps(0.0), dls, &fastvision::device(), 0).unwrap();
    // 60 steps: after 40 the BatchNorm running statistics (momentum 0.1) can still lag the
    // batch statistics enough to miss one image in eval mode, depending on the float order.
    learner
        .fit(30, Schedule::Constant { lr: 3e-3, mom: 0.9 })
        .unwrap();
    let losses: Vec<f64> = learner.recorder.batches.iter().map(|b| b.loss).collect();
    assert_eq!(losses.len(), 60);
    assert!(
        losses[58..].iter().sum::<f64>() < 0.1 * losses[..2].iter().sum::<f64>(),
        "loss falls: {losses:?}"
    );
    let acc = learner.validate().accuracy;
    assert_eq!(
        acc,
        Some(1.0),
        "all 20 training images right after 60 steps"
    );
}

#[test]
fn a_fit_can_end_part_way_through_its_last_epoch_with_its_schedule_annealed() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let dls = twenty_images(dir.path(), 4);
    let mut learner = Learner::from_config(&tiny_model(2), dls, &fastvision::device(), 0).unwrap();
    let ipe = fastvision::learner::task::TrainData::n_train_batches(&learner.dls);
    assert_eq!(ipe, 5, "20 images in batches of 4");
    let schedule = Schedule::OneCycle(OneCycle::new(1e-2));
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        assert!(
            learner.fit_part_from(3, Some(bad), schedule, 0).is_err(),
            "last_epoch_pct {bad} is refused"
        );
    }
    assert!(learner.recorder.batches.is_empty(), "nothing trained");
    learner.fit_part_from(3, Some(0.5), schedule, 0).unwrap();
    // Two whole epochs and 3 of the last one's 5 batches, each epoch validated.
    let n = 2 * ipe + 3;
    let lrs: Vec<f64> = learner.recorder.batches.iter().map(|b| b.lr).collect();
    assert_eq!(lrs.len(), n);
    assert_eq!(learner.recorder.epochs.len(), 3);
    assert!(
        learner.recorder.epochs[2]
            .valid_loss
            .is_some_and(f64::is_finite)
    );
    // The one-cycle spans the batches trained: it ends annealed, not cut off at its peak side.
    for (i, lr) in lrs.iter().enumerate() {
        assert_eq!(*lr, schedule.lr(i as f64 / n as f64), "batch {i}");
    }
    assert!(lrs[n - 1] < 0.05 * 1e-2, "annealed: {lrs:?}");
    // Resumed at its last epoch, the fit trains that part again at the same schedule positions.
    learner.fit_part_from(3, Some(0.5), schedule, 2).unwrap();
    let resumed: Vec<f64> = learner.recorder.batches[n..].iter().map(|b| b.lr).collect();
    assert_eq!(resumed, lrs[2 * ipe..]);
}

#[test]
fn efficientnet_lite0_overfits_twenty_images_and_eval_mode_agrees() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let dls = twenty_images(dir.path(), 10);
    let config = ClassifierConfig::new(Arch::EfficientnetLite0, 2)
        .with_ps(0.0)
        .with_hidden(32);
    let mut learner = Learner::from_config(&config, dls, &fastvision::device(), 0).unwrap();
    // 60 steps, as for the ResNet above: after 40 the training loss is still ~0.1 on some seeds
    // and eval mode can miss one image depending on the float order (seeds 0-2 at 60 steps:
    // valid loss 0.003-0.014, all 20 right).
    learner
        .fit(30, Schedule::Constant { lr: 3e-3, mom: 0.9 })
        .unwrap();
    let losses: Vec<f64> = learner.recorder.batches.iter().map(|b| b.loss).collect();
    assert_eq!(losses.len(), 60);
    assert!(
        losses[58..].iter().sum::<f64>() < 0.1 * losses[..2].iter().sum::<f64>(),
        "loss falls: {losses:?}"
    );
    let acc = learner.validate().accuracy;
    assert_eq!(
        acc,
        Some(1.0),
        "eval mode (running BatchNorm statistics) agrees with training"
    );
}

#[test]
fn a_saved_bundle_predicts_exactly_as_the_trained_model() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 3, 8, 4);
    let data = ImageFolder::from_folder(dir.path(), SplitConfig::default()).unwrap();
    let dls = DataLoaders::from_folder(&data, 32, 8, 1);
    let config = tiny_model(3);
    let mut learner = Learner::from_config(&config, dls.clone(), &fastvision::device(), 1).unwrap();
    learner.fit_one_cycle(1, 1e-3).unwrap();
    let bundle = BundleConfig {
        model: config,
        size: 32,
        normalize: dls.normalize,
        vocab: dls.vocab.clone(),
        train_transform: None,
        aug: None,
    };
    let out = dir.path().join("bundle");
    save_bundle(&out, &learner.model, &bundle).unwrap();
    let device = fastvision::device();
    let before =
        Predictor::new(learner.model.clone(), bundle.clone(), &device).get_preds(&dls.valid);
    let loaded = Predictor::load(&out, &device).unwrap();
    assert_eq!(loaded.config, bundle);
    let after = loaded.get_preds(&dls.valid);
    assert_eq!(before.1, after.1);
    assert_eq!(
        before.0, after.0,
        "identical probabilities after save → load"
    );
}

/// A narrow ResNet's run of 3 epochs of 3 batches on 24 demo images, and the folder holding them.
fn three_epochs_of_three_batches() -> (tempfile::TempDir, TrainConfig) {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("data"), 2, 12, 4);
    let config = TrainConfig {
        data: Some(dir.path().join("data")),
        width: 8,
        size: Some(32),
        epochs: 3,
        bs: 8,
        ..TrainConfig::default()
    };
    (dir, config)
}

#[test]
fn an_interrupted_run_resumes_at_the_right_epoch_and_matches_an_uninterrupted_one() {
    let _rng = rng_lock();
    let (dir, config) = three_epochs_of_three_batches();
    let device = fastvision::device();

    let full = vision::train(&config, &dir.path().join("full"), &device, Listen::none()).unwrap();
    let interrupted = dir.path().join("interrupted");
    vision::train(&config, &interrupted, &device, common::StopAfter::listen(1)).unwrap();
    let state =
        fastvision::learner::checkpoint::load_state(&interrupted.join("checkpoint")).unwrap();
    assert_eq!(state.epochs_done, 1);
    let resumed = vision::resume(&interrupted, &device, Listen::none()).unwrap();

    let log = |p: &std::path::Path| -> fastvision::learner::Recorder {
        serde_json::from_slice(&std::fs::read(p.join("log.json")).unwrap()).unwrap()
    };
    let (a, b) = (log(&full.dir), log(&resumed.dir));
    assert_eq!(
        b.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(a.batches.len(), b.batches.len());
    let ipe = 3;
    for (x, y) in a.batches.iter().zip(&b.batches) {
        assert!(
            (x.lr - y.lr).abs() < 1e-15 && (x.mom - y.mom).abs() < 1e-15,
            "schedule continues where it stopped"
        );
    }
    for i in 0..=ipe {
        let (x, y) = (a.batches[i].loss, b.batches[i].loss);
        assert!(
            (x - y).abs() < 1e-4,
            "batch {i}: weights, data order and dropout restored: {x} vs {y}"
        );
    }
    let (la, lb) = (a.epochs[2].train_loss, b.epochs[2].train_loss);
    assert!(
        (la - lb).abs() < 0.1 * la,
        "the resumed run trains like the uninterrupted one: {la} vs {lb}"
    );
}

#[test]
fn a_run_folder_is_never_overwritten() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("taken")).unwrap();
    let err = vision::train(
        &TrainConfig::default(),
        &dir.path().join("taken"),
        &fastvision::device(),
        Listen::none(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

/// Sets its flag once `n` batches have trained, as a stop button pressed mid-epoch would.
struct PressStop {
    cancel: fastvision::learner::Cancel,
    n: usize,
    seen: usize,
}

impl fastvision::learner::Listener for PressStop {
    fn after_batch(&mut self, _state: &mut fastvision::learner::FitState) {
        self.seen += 1;
        if self.seen == self.n {
            self.cancel.cancel();
        }
    }
}

#[test]
fn a_cancelled_run_stops_after_its_batch_keeps_its_last_checkpoint_and_resumes() {
    let _rng = rng_lock();
    let (dir, config) = three_epochs_of_three_batches();
    let device = fastvision::device();
    let run = dir.path().join("run");
    // 3 batches an epoch: the flag is set in the second batch of the second epoch.
    let cancel = fastvision::learner::Cancel::new();
    let press = PressStop {
        cancel: cancel.clone(),
        n: 5,
        seen: 0,
    };
    let err = vision::train(
        &config,
        &run,
        &device,
        Listen::new(press).cancelled_by(cancel),
    )
    .unwrap_err();
    assert!(
        matches!(&err, fastvision::Error::RunKept { source, .. } if matches!(**source, fastvision::Error::Cancelled)),
        "{err}"
    );
    let state = fastvision::learner::checkpoint::load_state(&run.join("checkpoint")).unwrap();
    assert_eq!(
        state.epochs_done, 1,
        "the unfinished epoch is not checkpointed"
    );
    assert!(!run.join("model.safetensors").exists(), "not finished");
    let done = vision::resume(&run, &device, Listen::none()).unwrap();
    assert_eq!(done.last.unwrap().epoch, 2, "resumed to the end");

    // Cancelled in its first epoch, a run leaves nothing behind.
    let cancel = fastvision::learner::Cancel::new();
    cancel.cancel();
    let early = dir.path().join("early");
    let err = vision::train(
        &config,
        &early,
        &device,
        Listen::none().cancelled_by(cancel),
    )
    .unwrap_err();
    assert!(matches!(err, fastvision::Error::Cancelled), "{err}");
    assert!(!early.exists());
}

/// burn keeps BatchNorm's running statistics per thread and reads back their average: a step
/// settles them, so steps taken on two threads in turn (as on the kernels' pool workers) leave
/// the model that the same steps on one thread leave.
#[test]
fn steps_taken_on_two_threads_in_turn_leave_the_model_one_thread_leaves() {
    use burn::tensor::{Distribution, Tensor};
    let _guard = rng_lock();
    let run = |hop: bool| -> Vec<f32> {
        let model = common::briefly_trained_on(&tiny_model(3), 4, 5, |s| hop && s % 2 == 1);
        // Eval mode: the output reads the running statistics.
        let probe = Tensor::<4>::random(
            [4, 3, 32, 32],
            Distribution::Normal(0.0, 1.0),
            &fastvision::device(),
        );
        model
            .forward(probe)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (one, two) = (run(false), run(true));
    common::assert_matches_pytorch("eval logits after steps on two threads", &two, &one, 1e-6);
}
