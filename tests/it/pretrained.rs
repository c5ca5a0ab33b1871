//! Pretrained checkpoints: every torch format loads strictly and our body's forward pass equals
//! torchvision's (fixtures from scripts/torch_fixtures.py).

use crate::common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use fastvision::burn;
use fastvision::models::{Arch, ClassifierConfig, ImageClassifier};
use fastvision::weights::load_pretrained_body;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn parity() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("resnet_parity.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn model(arch: Arch, width: usize) -> ImageClassifier {
    ClassifierConfig::new(arch, 10)
        .with_width(width)
        .init(&fastvision::device())
        .unwrap()
}

/// Loads `file` into a fresh model and compares its eval-mode body features with torchvision's.
fn assert_parity(arch: Arch, file: &Path, key: &str) {
    let mut m = model(arch, 8);
    let report = load_pretrained_body(&mut m, file).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.dropped.iter().any(|k| k.ends_with("fc.weight")),
        "old head dropped knowingly: {:?}",
        report.dropped
    );
    assert!(
        report
            .dropped
            .iter()
            .any(|k| k.ends_with("num_batches_tracked"))
    );
    let p = parity();
    let shape: Vec<usize> = p["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let device = fastvision::device();
    let x = Tensor::<4>::from_data(TensorData::new(floats(&p["input"]), shape), &device);
    let m = m.valid();
    let got: Vec<f32> = m.body.forward(x).into_data().try_to_vec().unwrap();
    let want = floats(&p[key]["features"]);
    common::assert_matches_pytorch(&file.display().to_string(), &got, &want, 1e-4);
}

#[test]
fn torchvision_zip_checkpoint_matches_pytorch() {
    assert_parity(Arch::Resnet18, &fixture("resnet18_w8.pth"), "resnet18");
}

#[test]
fn legacy_torch_format_matches_pytorch() {
    assert_parity(
        Arch::Resnet18,
        &fixture("resnet18_w8_legacy.pth"),
        "resnet18",
    );
}

#[test]
fn places365_style_training_checkpoint_matches_pytorch() {
    assert_parity(
        Arch::Resnet18,
        &fixture("resnet18_w8_places.pth.tar"),
        "resnet18",
    );
}

#[test]
fn safetensors_checkpoint_matches_pytorch() {
    assert_parity(
        Arch::Resnet18,
        &fixture("resnet18_w8.safetensors"),
        "resnet18",
    );
}

#[test]
fn bottleneck_resnet50_matches_pytorch() {
    assert_parity(Arch::Resnet50, &fixture("resnet50_w8.pth"), "resnet50");
}

#[test]
fn a_checkpoint_of_another_architecture_is_refused_with_every_key_named() {
    let mut m = model(Arch::Resnet34, 8);
    let err = load_pretrained_body(&mut m, &fixture("resnet18_w8.pth"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("resnet18_w8.pth")
            && err.contains("missing from the file: body.layer1.2.conv1.weight"),
        "{err}"
    );
    assert!(
        err.contains("body.layer3.5.bn2"),
        "every missing key is listed: {err}"
    );

    let mut m = model(Arch::Resnet18, 16);
    let err = load_pretrained_body(&mut m, &fixture("resnet18_w8.pth"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("body.conv1.weight") && err.to_lowercase().contains("shape"),
        "{err}"
    );

    let mut m = model(Arch::Resnet18, 8);
    let err = load_pretrained_body(&mut m, Path::new("/nowhere/weights.pth"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nowhere/weights.pth") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn inception_v3_loads_torchvisions_checkpoint_strictly_and_matches_pytorch() {
    // torchvision's Inception3 at 1/8 width (scripts/inception_fixture.py): aux classifier and
    // fc are dropped knowingly, everything else must map one to one.
    let mut m = model(Arch::InceptionV3, 8);
    let report = load_pretrained_body(&mut m, &fixture("inception_v3_w8.pth"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.dropped.iter().any(|k| k.starts_with("AuxLogits.")),
        "{:?}",
        report.dropped
    );
    assert!(report.dropped.iter().any(|k| k == "fc.weight"));
    assert!(
        report.loaded > 380,
        "every Inception tensor loaded: {}",
        report.loaded
    );
    let p: Value =
        serde_json::from_slice(&std::fs::read(fixture("inception_parity.json")).unwrap()).unwrap();
    let device = fastvision::device();
    let m = m.valid();
    for size in ["75", "107"] {
        let shape: Vec<usize> = p[size]["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(floats(&p[size]["input"]), shape), &device);
        let out = m.body.forward(x);
        let want_shape: Vec<usize> = p[size]["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(out.dims().to_vec(), want_shape);
        let got: Vec<f32> = out.into_data().try_to_vec().unwrap();
        common::assert_matches_pytorch(
            &format!("inception_v3 at {size} px"),
            &got,
            &floats(&p[size]["features"]),
            1e-4,
        );
    }
    // A ResNet checkpoint is refused, every missing Inception key named.
    let mut m = model(Arch::InceptionV3, 8);
    let err = load_pretrained_body(&mut m, &fixture("resnet18_w8.pth"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing from the file: body.Mixed_7c.branch_pool.conv.weight"),
        "{err}"
    );
}
