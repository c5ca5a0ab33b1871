//! ONNX export runs in tract-onnx (a pure-Rust ONNX runtime) and gives our logits.

use crate::common;

use burn::tensor::{Distribution, Tensor};
use fastvision::data::Normalize;
use fastvision::infer::BundleConfig;
use fastvision::models::{Arch, ClassifierConfig};
use tract_onnx::prelude::{Framework, InferenceModelExt, IntoRunnable, tvec};

#[test]
fn onnx_export_computes_the_same_logits_in_tract() {
    let _lock = common::rng_lock();
    let size = 40;
    for config in [
        common::tiny_model(3),
        ClassifierConfig::new(Arch::Resnet50, 3)
            .with_width(8)
            .with_hidden(16),
        ClassifierConfig::new(Arch::EfficientnetLite0, 3).with_hidden(16),
    ] {
        let model = common::briefly_trained(&config, 3, 5);
        let bundle = BundleConfig {
            model: config.clone(),
            size,
            normalize: Normalize::IMAGENET,
            vocab: vec!["a".into(), "b".into(), "c".into()],
            train_transform: None,
            aug: None,
        };
        let bytes = fastvision::infer::onnx::onnx_model(&model, &bundle).unwrap();
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        // The batch is dynamic: two sizes through the same plan.
        for batch in [2usize, 3] {
            let plain = fastvision::device();
            let x = Tensor::<4>::random(
                [batch, 3, size as usize, size as usize],
                Distribution::Normal(0.0, 1.0),
                &plain,
            );
            let input: Vec<f32> = x.clone().into_data().try_to_vec().unwrap();
            let ours: Vec<f32> = model.forward(x).into_data().try_to_vec().unwrap();
            let t = tract_onnx::prelude::Tensor::from_shape(
                &[batch, 3, size as usize, size as usize],
                &input,
            )
            .unwrap();
            let out = plan.run(tvec!(t.into())).unwrap();
            let theirs: Vec<f32> = out[0]
                .to_plain_array_view::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect();
            assert_eq!(ours.len(), theirs.len(), "{:?} batch {batch}", config.arch);
            let scale = ours.iter().fold(0.0f32, |a, b| a.max(b.abs()));
            let worst = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-4 * scale.max(1.0),
                "{:?} batch {batch}: {worst} vs scale {scale}\n{ours:?}\n{theirs:?}",
                config.arch
            );
        }
    }
}
