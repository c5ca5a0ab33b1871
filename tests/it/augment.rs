//! Augmentation, MixUp/CutMix, progressive resizing and test-time augmentation on tiny data.

use crate::common;

use common::{rng_lock, tiny_model};

use burn::module::Param;
use burn::tensor::Tensor;
use fastvision::burn;
use fastvision::data::{AugLevel, DataLoaders, ImageFolder, ItemTransform, SplitConfig};
use fastvision::infer::{BundleConfig, Inference, Predictor, Tta};
use fastvision::learner::{Learner, Listen, MixUp, Schedule};
use fastvision::vision::{self, TrainConfig};

#[test]
fn progressive_resizing_trains_each_size_and_resumes_in_its_stage() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("data"), 2, 12, 4);
    let config = TrainConfig {
        data: Some(dir.path().join("data")),
        width: 8,
        bs: 8,
        sizes: vec![16, 24],
        size_epochs: vec![1, 2],
        ..TrainConfig::default()
    };
    let plan = config.plan();
    assert_eq!(
        plan.iter().map(|s| (s.size, s.epochs)).collect::<Vec<_>>(),
        vec![(Some(16), 1), (Some(24), 2)]
    );
    // A part of an epoch ends the last stage only.
    let part = TrainConfig {
        last_epoch_pct: Some(0.5),
        ..config.clone()
    };
    assert!(part.validate().is_ok());
    assert_eq!(
        part.plan()
            .iter()
            .map(|s| s.last_epoch_pct)
            .collect::<Vec<_>>(),
        vec![None, Some(0.5)]
    );
    let sgdr = TrainConfig {
        schedule: vision::ScheduleKind::Sgdr,
        ..part.clone()
    };
    for bad in [0.0, 1.5] {
        let e = TrainConfig {
            last_epoch_pct: Some(bad),
            ..config.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`last_epoch_pct`"), "{e}");
    }
    let e = sgdr.validate().unwrap_err().to_string();
    assert!(e.contains("`last_epoch_pct`") && e.contains("sgdr"), "{e}");
    let device = fastvision::device();
    let run_dir = dir.path().join("prog");
    vision::train(&config, &run_dir, &device, common::StopAfter::listen(2)).unwrap();
    let state = fastvision::learner::checkpoint::load_state(&run_dir.join("checkpoint")).unwrap();
    assert_eq!((state.stage, state.stage_epochs_done), (1, 1));
    let done = vision::resume(&run_dir, &device, Listen::none()).unwrap();
    let log: fastvision::learner::Recorder =
        serde_json::from_slice(&std::fs::read(done.dir.join("log.json")).unwrap()).unwrap();
    let seen: Vec<(usize, u32)> = log.epochs.iter().map(|e| (e.stage, e.size)).collect();
    assert_eq!(seen, vec![(0, 16), (1, 24), (1, 24)]);
    let bundle = fastvision::infer::bundle::load_bundle_config(&done.dir).unwrap();
    assert_eq!(bundle.size, 24, "the model is bundled at its final size");
}

#[test]
fn resizing_keeps_the_weights_and_changes_the_batches() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 2, 8, 4);
    let data = ImageFolder::from_folder(dir.path(), SplitConfig::default()).unwrap();
    let dls = DataLoaders::from_folder(&data, 16, 8, 0).with_aug(AugLevel::Default.transforms());
    let mut learner = Learner::from_config(&tiny_model(2), dls, &fastvision::device(), 0).unwrap();
    learner.fit_one_cycle(1, 1e-3).unwrap();
    let before = learner.model.head.lin2.weight.val().into_data();
    learner.resize(24);
    assert_eq!(learner.model.head.lin2.weight.val().into_data(), before);
    assert_eq!(learner.dls.train.iter(0).next().unwrap().size, 24);
    assert_eq!(learner.dls.valid.iter(0).next().unwrap().size, 24);
    assert!(
        learner.dls.train.aug().is_some(),
        "augmentation survives resizing"
    );
    learner.fit_one_cycle(1, 1e-3).unwrap();
    assert_eq!(learner.recorder.epochs[1].size, 24);
}

#[test]
fn mixup_trains_and_validation_is_never_mixed() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 2, 16, 6);
    let data = ImageFolder::from_folder(dir.path(), SplitConfig::default()).unwrap();
    let dls = DataLoaders::from_folder(&data, 24, 8, 0).with_aug(AugLevel::Default.transforms());
    let mut learner = Learner::from_config(&tiny_model(2), dls, &fastvision::device(), 0).unwrap();
    learner.loss_func = fastvision::learner::LossFunc::label_smoothing(0.1);
    learner.callbacks.push(Box::new(MixUp::new(0)));
    learner
        .fit(3, Schedule::Constant { lr: 2e-3, mom: 0.9 })
        .unwrap();
    assert!(learner.recorder.batches.iter().all(|b| b.loss.is_finite()));
    let last = learner.recorder.last().unwrap().clone();
    let v = learner.validate();
    let (valid_loss, accuracy) = (v.loss, v.accuracy);
    assert!((last.valid_loss.unwrap() - valid_loss.unwrap()).abs() < 1e-6);
    assert_eq!(last.accuracy, accuracy);
}

#[test]
fn tta_and_ten_crop_of_a_constant_model_give_that_constant() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 3, 1, 2);
    let data = ImageFolder::from_folder(dir.path(), SplitConfig::default()).unwrap();
    let device = fastvision::device();
    let config = tiny_model(3);
    let mut model = config.init(&device).unwrap();
    let shape = model.head.lin2.weight.val().dims();
    model.head.lin2.weight = Param::from_tensor(Tensor::zeros(shape, &device));
    let bundle = BundleConfig {
        model: config,
        size: 24,
        normalize: fastvision::data::Normalize::IMAGENET,
        vocab: data.vocab.clone(),
        train_transform: Some(ItemTransform::train(24)),
        aug: AugLevel::Heavy.transforms(),
    };
    let predictor = Predictor::new(model, bundle, &device);
    for how in [
        Inference::Plain,
        Inference::Tta(Tta::default()),
        Inference::TenCrop,
    ] {
        let out = predictor.infer(&data.valid, 4, how);
        assert_eq!(out.probs.len(), 6);
        for row in out.probs {
            for p in row.expect("every image predicted") {
                assert!((p - 1.0 / 3.0).abs() < 1e-6, "{how:?}: {p}");
            }
        }
    }
}

#[test]
fn tta_changes_a_trained_models_probabilities_but_keeps_them_distributions() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 2, 8, 3);
    let data = ImageFolder::from_folder(dir.path(), SplitConfig::default()).unwrap();
    let dls = DataLoaders::from_folder(&data, 24, 8, 0).with_aug(AugLevel::Default.transforms());
    let mut learner = Learner::from_config(&tiny_model(2), dls, &fastvision::device(), 0).unwrap();
    learner.fit_one_cycle(2, 2e-3).unwrap();
    let bundle = BundleConfig {
        model: tiny_model(2),
        size: 24,
        normalize: learner.dls.normalize,
        vocab: data.vocab.clone(),
        train_transform: Some(learner.dls.train.transform()),
        aug: learner.dls.train.aug(),
    };
    let predictor = Predictor::new(learner.model.clone(), bundle, learner.device());
    let plain = predictor.infer(&data.valid, 4, Inference::Plain).probs;
    let tta = predictor
        .infer(&data.valid, 4, Inference::Tta(Tta::default()))
        .probs;
    let again = predictor
        .infer(&data.valid, 4, Inference::Tta(Tta::default()))
        .probs;
    assert_eq!(tta, again, "seeded");
    assert_ne!(tta, plain);
    for row in tta.into_iter().flatten() {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
