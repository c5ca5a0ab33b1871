//! The real EfficientNet-Lite0 ImageNet weights (fetched by scripts/fetch_test_weights.sh, which
//! `.ci/run` calls): our forward pass equals the PyTorch reference, and real photos get their
//! ImageNet class in the top 5 (fixtures from scripts/effnet_fixture.py).

use crate::common;

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::store::{KeyRemapper, ModuleSnapshot, PytorchStore};
use burn::tensor::{Tensor, TensorData};
use fastvision::burn;
use fastvision::models::{Arch, ClassifierConfig};
use fastvision::weights::load_pretrained_body;
use serde_json::Value;

fn weights() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/.weights/efficientnet-lite0-57934424.pth");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch_test_weights.sh (as .ci/run does)",
        path.display()
    );
    path
}

/// The reference's ImageNet classifier (`_fc`), to read our features' top 5.
#[derive(Module, Debug)]
struct ImageNetFc {
    fc: Linear,
}

#[test]
fn efficientnet_lite0_matches_pytorch_and_recognises_real_photos() {
    let device = fastvision::device();
    let mut model = ClassifierConfig::new(Arch::EfficientnetLite0, 10)
        .init(&device)
        .unwrap();
    let report = load_pretrained_body(&mut model, &weights()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.dropped.iter().any(|k| k == "_fc.weight"),
        "{:?}",
        report.dropped
    );
    let model = model.valid();

    let mut fc = ImageNetFc {
        fc: LinearConfig::new(1280, 1000).init(&device),
    };
    let mut store = PytorchStore::from_file(weights())
        .remap(KeyRemapper::from_patterns(vec![(r"^_fc\.", "fc.")]).unwrap())
        .allow_partial(true);
    let applied = fc.load_from(&mut store).unwrap();
    assert_eq!(applied.applied.len(), 2, "{applied}");

    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/effnet_lite0_parity.json")).unwrap();
    let (mean, std) = (
        fixture["mean"].as_f64().unwrap() as f32,
        fixture["std"].as_f64().unwrap() as f32,
    );
    for name in ["chelsea", "coffee", "rocket"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/photos/{name}.png"));
        let img = fastvision::data::decode::decode_rgb(&path).unwrap();
        let (w, h) = img.dimensions();
        let plane = (w * h) as usize;
        let mut chw = vec![0.0f32; 3 * plane];
        for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * plane + i] = (f32::from(px[c]) - mean) / std;
            }
        }
        let x = Tensor::<4>::from_data(
            TensorData::new(chw, [1, 3, h as usize, w as usize]),
            &device,
        );
        let feats = model.body.forward(x);
        let pooled = feats.mean_dim(3).mean_dim(2).reshape([1, 1280]);
        let got: Vec<f32> = pooled.clone().into_data().try_to_vec().unwrap();
        let want: Vec<f32> = fixture[name]["pooled"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        common::assert_matches_pytorch(name, &got, &want, 1e-4);

        let logits: Vec<f32> = fc.fc.forward(pooled).into_data().try_to_vec().unwrap();
        let mut idx: Vec<usize> = (0..1000).collect();
        idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let top5 = &idx[..5];
        let expected = fixture[name]["top5"][0].as_u64().unwrap() as usize;
        assert!(
            top5.contains(&expected),
            "{name}: top 5 {top5:?} lacks ImageNet class {expected}"
        );
    }
}
