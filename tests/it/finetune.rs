//! LR finder, freezing and discriminative learning rates on small real data.

use crate::common;

use common::rng_lock;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use fastvision::burn;
use fastvision::data::{DataLoaders, ImageFolder, SplitConfig};
use fastvision::learner::lr_find::LrFindConfig;
use fastvision::learner::{Learner, Lrs, Schedule};
use fastvision::models::{Arch, ClassifierConfig};

/// Every float tensor of a module (parameters and running statistics), by path.
#[derive(Default)]
struct Snapshot {
    path: Vec<String>,
    values: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for Snapshot {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.into());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.values.push((
            self.path.join("."),
            p.val().into_data().try_to_vec().unwrap(),
        ));
    }
}

fn snapshot(m: &impl Module) -> Vec<(String, Vec<f32>)> {
    let mut s = Snapshot::default();
    m.visit(&mut s);
    s.values
}

fn learner(
    dir: &std::path::Path,
    n_classes: usize,
    width: usize,
    size: u32,
    data_root: Option<&std::path::Path>,
) -> Learner {
    let root = match data_root {
        Some(r) => r.to_path_buf(),
        None => {
            common::tiny_dataset(dir, n_classes, 16, 4);
            dir.to_path_buf()
        }
    };
    let data = ImageFolder::from_folder(&root, SplitConfig::default()).unwrap();
    let dls = DataLoaders::from_folder(&data, size, 16, 0);
    let cfg = ClassifierConfig::new(Arch::Resnet18, data.vocab.len())
        .with_width(width)
        .with_hidden(64);
    Learner::from_config(&cfg, dls, &fastvision::device(), 0).unwrap()
}

#[test]
fn lr_find_restores_the_model_exactly_and_stops_on_divergence() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut l = learner(dir.path(), 2, 8, 32, None);
    l.fit_one_cycle(1, 1e-3).unwrap();
    let before = snapshot(&l.model);
    let valid_before = l.validate().loss;
    let batches_before = l.recorder.batches.len();
    let found = l.lr_find(LrFindConfig::default()).unwrap();
    assert_eq!(
        snapshot(&l.model),
        before,
        "weights and BatchNorm statistics restored bit-exactly"
    );
    // BatchNorm keeps its last update pending until read: a pending update of the test must
    // not overwrite the restored statistics when they are next read.
    assert_eq!(
        snapshot(&l.model.valid()),
        before,
        "statistics still restored once synced"
    );
    assert_eq!(l.validate().loss, valid_before, "validation unchanged");
    assert_eq!(
        l.recorder.batches.len(),
        batches_before,
        "the test leaves no trace in the recorder"
    );
    assert!(found.diverged, "an LR of 10 makes the loss diverge");
    assert!(
        found.lrs.len() < 100,
        "stopped early at {} iterations",
        found.lrs.len()
    );
    let last = *found.losses.last().unwrap();
    let best = found.losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(last > 4.0 * best || !last.is_finite());
    assert!(found.lrs.windows(2).all(|w| w[1] > w[0]));
    l.fit_one_cycle(1, 1e-3).unwrap();
}

#[test]
fn the_valley_on_the_demo_lies_between_1e_4_and_1e_1() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let demo = common::demo();
    let mut l = learner(dir.path(), 10, 16, 28, Some(&demo));
    let found = l.lr_find(LrFindConfig::default()).unwrap();
    let v = found.suggestions.valley;
    assert!((1e-4..=1e-1).contains(&v), "valley {v:e}");
}

#[test]
fn frozen_parameters_do_not_move_except_batchnorm_and_each_group_gets_its_lr() {
    let _rng = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut l = learner(dir.path(), 2, 8, 32, None);
    l.freeze();
    let before = snapshot(&l.model);
    l.fit(1, Schedule::Constant { lr: 1e-2, mom: 0.9 }).unwrap();
    let after = snapshot(&l.model);
    for ((path, a), (_, b)) in before.iter().zip(&after) {
        let moved = a != b;
        if path.starts_with("head.") || path.contains("bn") {
            assert!(moved, "{path} trains while frozen");
        } else {
            assert!(!moved, "{path} is frozen but moved");
        }
    }

    l.unfreeze();
    l.set_lrs(Lrs::Range(1e-5, 1e-3));
    let m = l.lr_mults();
    assert!(
        (m[0] - 0.01).abs() < 1e-12 && (m[1] - 0.1).abs() < 1e-12 && m[2] == 1.0,
        "{m:?}"
    );
    let before = snapshot(&l.model);
    l.fit(1, Schedule::Constant { lr: 1e-3, mom: 0.9 }).unwrap();
    let after = snapshot(&l.model);
    let max_step = |name: &str| {
        let (_, a) = before.iter().find(|(p, _)| p == name).unwrap();
        let (_, b) = after.iter().find(|(p, _)| p == name).unwrap();
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max) as f64
    };
    let steps = [
        max_step("body.ResNet.layer1.0.conv1.weight"),
        max_step("body.ResNet.layer3.0.conv1.weight"),
        max_step("head.lin2.weight"),
    ];
    let batches = 2.0;
    for (step, lr) in steps.iter().zip([1e-5, 1e-4, 1e-3]) {
        assert!(
            *step > 0.3 * lr && *step < 1.5 * batches * lr,
            "Adam moves a weight by about its group's LR per step: {steps:?}"
        );
    }
}
