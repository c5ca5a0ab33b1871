//! Ensembles: the folder round trip, members' data never touching validation, fitted weights
//! never scored on the images they were fitted on, resume, snapshots, and bad folders.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use fastvision::ensemble::train::{self as ens, PlannedMember, Variation};
use fastvision::ensemble::{EnsembleFile, Sampling};
use fastvision::infer::{Inference, Predictor};
use fastvision::learner::Listen;
use fastvision::models::Arch;
use fastvision::vision::{self, TrainConfig};

fn base(data: &Path) -> TrainConfig {
    TrainConfig {
        data: Some(data.into()),
        epochs: 1,
        bs: 8,
        size: Some(32),
        width: 8,
        ..TrainConfig::default()
    }
}

fn quiet() -> Listen {
    Listen::none()
}

fn two_members(root: &Path, variation: Variation) -> (PathBuf, Vec<PlannedMember>) {
    let data = root.join("photos");
    if !data.exists() {
        common::tiny_dataset(&data, 3, 12, 4);
    }
    let plan = ens::plan(
        &base(&data),
        &[(Arch::Resnet18, None), (Arch::EfficientnetLite0, None)],
        1,
        variation,
    )
    .unwrap();
    (data, plan)
}

fn valid_items(dir: &Path) -> Vec<fastvision::data::Item> {
    fastvision::ensemble::report::validation_items(dir).unwrap()
}

#[test]
fn an_ensemble_folder_predicts_the_mean_of_its_members() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let (_, plan) = two_members(tmp.path(), Variation::None);
    let dir = tmp.path().join("ens");
    let device = fastvision::device();
    let file = ens::train(Some(plan), &dir, &device, quiet()).unwrap();
    assert_eq!(file.members.len(), 2);
    let items = valid_items(&dir);
    assert_eq!(items.len(), 12);
    let ensemble = Predictor::load(&dir, &device).unwrap();
    assert!(ensemble.is_ensemble());
    let got = ensemble.infer(&items, 5, Inference::Plain).probs;
    let members: Vec<_> = file
        .members
        .iter()
        .map(|m| {
            Predictor::load(&dir.join(&m.dir), &device)
                .unwrap()
                .infer(&items, 7, Inference::Plain)
                .probs
        })
        .collect();
    for i in 0..items.len() {
        let (a, b, e) = (
            members[0][i].as_ref().unwrap(),
            members[1][i].as_ref().unwrap(),
            got[i].as_ref().unwrap(),
        );
        for c in 0..3 {
            assert!(
                (e[c] - (a[c] + b[c]) / 2.0).abs() < 1e-6,
                "image {i} class {c}"
            );
        }
    }
    // evaluate through the folder scores those combined probabilities.
    let eval =
        fastvision::infer::evaluate(&ensemble, items.clone(), Vec::new(), 8, Inference::Plain);
    assert_eq!(eval.n, 12);
    let r = fastvision::ensemble::report::report(&dir, &device).unwrap();
    assert_eq!(r.ensemble[0].name, "mean");
    assert!((r.ensemble[0].accuracy - eval.accuracy).abs() < 1e-12);
    assert!((r.correlation[0][0] - 1.0).abs() < 1e-12 && r.correlation[0][1] <= 1.0);
    assert!(!r.greedy.is_empty());
    fastvision::ensemble::report::write(&dir, &r).unwrap();
    assert!(dir.join("correlation.png").is_file() && dir.join("report.html").is_file());
}

#[test]
fn bootstrap_and_fold_members_never_train_on_validation_images() {
    let tmp = tempfile::tempdir().unwrap();
    for variation in [Variation::Bagging, Variation::Folds(2)] {
        let (_, plan) = two_members(tmp.path(), variation);
        let mut valids = Vec::new();
        let mut trains = Vec::new();
        for m in &plan {
            let data = vision::training_data(&m.config).unwrap();
            let valid: HashSet<PathBuf> = data.valid.iter().map(|i| i.path.clone()).collect();
            assert!(data.train.iter().all(|i| !valid.contains(&i.path)));
            valids.push(valid);
            trains.push(
                data.train
                    .iter()
                    .map(|i| i.path.clone())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            valids[0], valids[1],
            "one validation split for every member"
        );
        assert_ne!(
            trains[0], trains[1],
            "{variation:?}: members see different training sets"
        );
        match variation {
            Variation::Bagging => assert!(trains.iter().all(|t| t.len() == 36)),
            _ => assert!(trains.iter().all(|t| t.len() == 18)),
        }
    }
    // Members with other seeds still share the split of a folder without valid/.
    let flat = tmp.path().join("flat");
    for entry in std::fs::read_dir(tmp.path().join("photos/train")).unwrap() {
        let e = entry.unwrap();
        let dst = flat.join(e.file_name());
        std::fs::create_dir_all(&dst).unwrap();
        for f in std::fs::read_dir(e.path()).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
        }
    }
    let plan = ens::plan(&base(&flat), &[(Arch::Resnet18, None)], 3, Variation::None).unwrap();
    let splits: Vec<Vec<PathBuf>> = plan
        .iter()
        .map(|m| {
            vision::training_data(&m.config)
                .unwrap()
                .valid
                .into_iter()
                .map(|i| i.path)
                .collect()
        })
        .collect();
    assert!(splits.windows(2).all(|w| w[0] == w[1]) && !splits[0].is_empty());
    assert_ne!(plan[0].config.seed, plan[1].config.seed);
}

#[test]
fn fitted_weights_are_never_scored_on_the_images_they_were_fitted_on() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let (_, plan) = two_members(tmp.path(), Variation::None);
    let dir = tmp.path().join("ens");
    let device = fastvision::device();
    ens::train(Some(plan), &dir, &device, quiet()).unwrap();
    let fitted = fastvision::ensemble::weights::fit_weights(&dir, 3, &device).unwrap();
    assert_eq!(fitted.n_fit, 6);
    assert!((fitted.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let file = EnsembleFile::read(&dir).unwrap();
    let fit: HashSet<PathBuf> = file.fit_items.iter().cloned().collect();
    assert_eq!(fit.len(), 6);
    let items = valid_items(&dir);
    let pred = Predictor::load(&dir, &device).unwrap();
    let (scored, left) = pred.scorable(items.clone());
    assert_eq!((scored.len(), left), (6, 6));
    assert!(scored.iter().all(|i| !fit.contains(&i.path)));
    let eval = fastvision::infer::evaluate(&pred, items, Vec::new(), 8, Inference::Plain);
    assert_eq!((eval.n, eval.fit_excluded), (6, 6));
    let r = fastvision::ensemble::report::report(&dir, &device).unwrap();
    assert_eq!((r.n, r.fit_excluded), (6, 6));
    assert_eq!(r.ensemble.last().unwrap().name, "weighted");
}

#[test]
fn resuming_an_interrupted_ensemble_trains_only_the_missing_members() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let (_, plan) = two_members(tmp.path(), Variation::Bagging);
    let dir = tmp.path().join("ens");
    let device = fastvision::device();
    let file = ens::train(Some(plan.clone()), &dir, &device, quiet()).unwrap();
    let first = dir.join(&file.members[0].dir).join("model.safetensors");
    let before = (
        std::fs::read(&first).unwrap(),
        std::fs::metadata(&first).unwrap().modified().unwrap(),
    );
    // As if training stopped during the second member, before its first checkpoint.
    let second = dir.join(&file.members[1].dir);
    std::fs::remove_file(second.join("model.safetensors")).unwrap();
    std::fs::remove_dir_all(second.join("checkpoint")).unwrap();
    std::fs::remove_file(dir.join("ensemble.json")).unwrap();
    assert!(
        ens::train(Some(plan), &dir, &device, quiet()).is_err(),
        "a new train refuses the folder"
    );
    ens::train(None, &dir, &device, quiet()).unwrap();
    let after = (
        std::fs::read(&first).unwrap(),
        std::fs::metadata(&first).unwrap().modified().unwrap(),
    );
    assert_eq!(before, after, "the finished member is not retrained");
    assert!(second.join("model.safetensors").is_file());
    Predictor::load(&dir, &device).unwrap();
}

#[test]
fn snapshots_make_one_member_per_sgdr_cycle() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("photos");
    common::tiny_dataset(&data, 3, 12, 4);
    let config = TrainConfig {
        schedule: fastvision::vision::ScheduleKind::Sgdr,
        cycles: 3,
        cycle_len: 1,
        cycle_mult: 2,
        snapshots: true,
        ..base(&data)
    };
    let dir = tmp.path().join("run");
    vision::train(&config, &dir, &fastvision::device(), quiet()).unwrap();
    let file = EnsembleFile::read(&dir.join("snapshots")).unwrap();
    assert_eq!(
        file.members.len(),
        3,
        "one snapshot per cycle (1 + 2 + 4 epochs)"
    );
    assert!(matches!(
        file.members[2].sampling,
        Sampling::Snapshot { cycle: 2 }
    ));
    let pred = Predictor::load(&dir.join("snapshots"), &fastvision::device()).unwrap();
    assert_eq!(pred.others.len(), 2);
    // The last snapshot is the final model: same predictions.
    let items = valid_items(&dir.join("snapshots"));
    let device = fastvision::device();
    let last = Predictor::load(&dir.join("snapshots/cycle_2"), &device).unwrap();
    let fin = Predictor::load(&dir, &device).unwrap();
    let (a, b) = (
        last.infer(&items, 8, Inference::Plain).probs,
        fin.infer(&items, 8, Inference::Plain).probs,
    );
    assert!(a == b, "the last snapshot predicts as the final model");
    let bad = TrainConfig {
        schedule: fastvision::vision::ScheduleKind::OneCycle,
        ..config
    };
    assert!(
        bad.validate()
            .unwrap_err()
            .to_string()
            .contains("`schedule` sgdr")
    );
}

#[test]
fn missing_corrupt_or_mismatched_members_are_refused_by_name() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let (_, plan) = two_members(tmp.path(), Variation::None);
    let dir = tmp.path().join("ens");
    let device = fastvision::device();
    let file = ens::train(Some(plan), &dir, &device, quiet()).unwrap();
    let second = dir.join(&file.members[1].dir);
    let weights = second.join("model.safetensors");
    let saved = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, b"not a model").unwrap();
    let err = Predictor::load(&dir, &device)
        .err()
        .expect("corrupt member")
        .to_string();
    assert!(
        err.contains("01-efficientnet_lite0-s42") && err.contains("missing or corrupt"),
        "{err}"
    );
    std::fs::remove_file(&weights).unwrap();
    let err = Predictor::load(&dir, &device)
        .err()
        .expect("missing member")
        .to_string();
    assert!(err.contains("01-efficientnet_lite0-s42"), "{err}");
    std::fs::write(&weights, saved).unwrap();
    // A member trained on other classes.
    let cfg_path = second.join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, cfg.replace("\"coat\"", "\"zebra\"")).unwrap();
    let err = Predictor::load(&dir, &device)
        .err()
        .expect("other classes")
        .to_string();
    assert!(
        err.contains("[ankle-boot, bag, coat]") && err.contains("[ankle-boot, bag, zebra]"),
        "{err}"
    );
}

#[test]
fn inception_members_are_upscaled_and_a_small_size_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("photos");
    common::tiny_dataset(&data, 2, 4, 2);
    let plan = ens::plan(
        &TrainConfig {
            size: Some(28),
            ..base(&data)
        },
        &[(Arch::Resnet18, None), (Arch::InceptionV3, None)],
        1,
        Variation::None,
    )
    .unwrap();
    assert_eq!(plan[0].config.size, Some(28));
    assert_eq!(plan[1].config.size, Some(75));
    let config = TrainConfig {
        arch: Arch::InceptionV3,
        size: Some(32),
        ..base(&data)
    };
    let err = vision::train(
        &config,
        &tmp.path().join("r"),
        &fastvision::device(),
        quiet(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("inception_v3 needs images of at least 75 px") && err.contains("`size` 75"),
        "{err}"
    );
    assert!(!tmp.path().join("r").exists());
}

#[test]
fn the_selected_ensemble_is_never_below_its_best_member_on_the_scoring_half() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let (data, plan) = two_members(tmp.path(), Variation::Bagging);
    let dir = tmp.path().join("ens");
    let device = fastvision::device();
    ens::train(Some(plan), &dir, &device, quiet()).unwrap();
    // A third member that has barely trained: a mean that includes it may lose to the best.
    let weak = TrainConfig {
        epochs: 1,
        lr: fastvision::learner::Lrs::Single(1e-6),
        ..base(&data)
    };
    vision::train(&weak, &dir.join("members/02-weak"), &device, quiet()).unwrap();
    let mut file = EnsembleFile::read(&dir).unwrap();
    let mut third = file.members[0].clone();
    third.dir = "members/02-weak".into();
    file.members.push(third);
    file.write(&dir).unwrap();
    for seed in 0..4 {
        let s = fastvision::ensemble::select::select(&dir, seed, false, &device).unwrap();
        let members = &s.held_out[..3];
        let best = members
            .iter()
            .map(|m| m.accuracy)
            .fold(f64::NEG_INFINITY, f64::max);
        let chosen_accuracy = s.score.accuracy;
        assert!(
            chosen_accuracy >= best,
            "seed {seed}: chose {} at {chosen_accuracy} below the best member's {best}: {:?}",
            s.chosen_name,
            s.held_out
        );
        // What was written is what was chosen, and it is used from now on.
        let file = EnsembleFile::read(&dir).unwrap();
        assert_eq!(file.combination, s.chosen);
        assert_eq!(file.fit_items.is_empty(), s.chosen_name == "mean");
    }
}
