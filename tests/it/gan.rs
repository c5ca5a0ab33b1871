//! The WGAN: clipping, the critic separating real from generated images, samples moving toward
//! the data, seeded sampling, synthetic images kept out of validation, and bad input.

use crate::common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use fastvision::data::{DataLoaders, ImageFolder, ItemTransform, SplitConfig};
use fastvision::gan::data::GanData;
use fastvision::gan::run::{self as gan_run, GanRunConfig};
use fastvision::gan::train::generate;
use fastvision::gan::{GanConfig, Wgan, gan_learner};
use fastvision::learner::{Learner, Listen, Recorder, Schedule, StepKind};

/// Largest |weight| of a module.
struct MaxAbs(f32);

impl ModuleVisitor for MaxAbs {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let m = param.val().abs().max().into_scalar::<f32>();
        self.0 = self.0.max(m);
    }
}

/// `n` toy images `[n, 1, 16, 16]`: bright left half, dark right half, a little noise.
fn toy(n: usize) -> GanData {
    let s = 16;
    let mut images = Vec::new();
    for i in 0..n {
        for y in 0..s {
            for x in 0..s {
                let base = if x < s / 2 { 0.8 } else { -0.8 };
                let jitter = (((i * 31 + y * 7 + x * 13) % 17) as f32 / 17.0 - 0.5) * 0.2;
                images.push(base + jitter);
            }
        }
    }
    GanData {
        images,
        labels: vec![0; n],
        n,
        channels: 1,
        size: s,
        classes: vec!["toy".into()],
    }
}

fn small(epochs: usize) -> GanConfig {
    GanConfig {
        size: 16,
        bs: 16,
        epochs,
        n_features: 16,
        ..GanConfig::default()
    }
}

/// Trains `learn` for `epochs` at the constant learning rate `lr` (fastai's WGAN recipe).
fn fit(learn: &mut Learner<Wgan>, epochs: usize, lr: f64) {
    learn
        .fit(epochs, Schedule::Constant { lr, mom: 0.0 })
        .unwrap();
}

/// The recorded losses of the steps of `kind`.
fn losses(rec: &Recorder, kind: StepKind) -> Vec<f64> {
    rec.batches
        .iter()
        .filter(|b| b.kind == kind)
        .map(|b| b.loss)
        .collect()
}

#[test]
fn clipping_keeps_every_critic_weight_inside_c() {
    let _g = common::rng_lock();
    let device = fastvision::device();
    let mut learn = gan_learner(&small(1), toy(16), false, &device).unwrap();
    for _ in 0..3 {
        fit(&mut learn, 1, 2e-4);
        let mut v = MaxAbs(0.0);
        learn.model.critic.visit(&mut v);
        assert!(v.0 <= 0.01 + 1e-7, "a critic weight reached {}", v.0);
    }
    assert_eq!(losses(&learn.recorder, StepKind::Critic).len(), 3);
    // Without clipping the same step leaves the range (Adam moves weights by ~lr = 2e-4 per
    // step, but BatchNorm's γ starts at 1): the clip is what holds them.
    let raw = fastvision::models::gan::CriticConfig::new(16, 1)
        .with_n_features(16)
        .init(&device.clone().autodiff())
        .unwrap();
    let mut v = MaxAbs(0.0);
    raw.visit(&mut v);
    assert!(
        v.0 > 0.5,
        "an unclipped critic has weights far outside 0.01"
    );
}

#[test]
fn the_critic_scores_real_images_apart_from_generated_ones_after_a_few_steps() {
    let _g = common::rng_lock();
    let device = fastvision::device();
    // Critic steps only (the switch to the generator never comes in 26 steps).
    let config = GanConfig {
        n_crit: 1000,
        ..small(13)
    };
    let mut learn = gan_learner(&config, toy(32), false, &device).unwrap();
    fit(&mut learn, 13, 2e-4);
    // The critic's loss is mean C(real) − mean C(fake): it falls as the critic separates them.
    let critic = losses(&learn.recorder, StepKind::Critic);
    assert_eq!(critic.len(), 26, "two batches an epoch");
    let (first, last) = (critic[0], critic[critic.len() - 1]);
    assert!(last < first && last < -1e-4, "critic loss {first} → {last}");
}

#[test]
fn the_step_switches_to_the_generator_after_n_crit_critic_steps() {
    let _g = common::rng_lock();
    let device = fastvision::device();
    let config = GanConfig {
        n_crit: 2,
        ..small(6)
    };
    let mut learn = gan_learner(&config, toy(32), false, &device).unwrap();
    fit(&mut learn, 6, 2e-4);
    let kinds: Vec<StepKind> = learn.recorder.batches.iter().map(|b| b.kind).collect();
    use StepKind::{Critic as C, Generator as G};
    assert_eq!(kinds, [C, C, G, C, C, G, C, C, G, C, C, G]);
    let m = learn.recorder.last().unwrap();
    assert!(m.wasserstein.is_some() && m.gen_loss.is_some());
    assert!(
        m.accuracy.is_none() && m.valid_loss.is_none(),
        "no NaN columns"
    );
}

#[test]
fn a_short_run_moves_samples_toward_the_data() {
    let _g = common::rng_lock();
    let device = fastvision::device();
    let data = toy(64);
    let (want, _) = GanData::pixel_stats(&data.images, data.n);
    let config = small(100);
    let mut learn = gan_learner(&config, data, false, &device).unwrap();
    let dist = |l: &Learner<Wgan>| {
        let px = generate(&l.model.generator, config.noise, 64, None, 9, &device);
        let (mean, _) = GanData::pixel_stats(&px, 64);
        mean.iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / mean.len() as f32
    };
    let before = dist(&learn);
    fit(&mut learn, config.epochs, 1e-3);
    let after = dist(&learn);
    eprintln!("mean |sample − data| per pixel: {before} → {after}");
    assert!(
        after < 0.7 * before,
        "mean |sample − data| per pixel: {before} → {after}"
    );
}

fn tiny_gan_run(root: &std::path::Path, conditional: bool) -> std::path::PathBuf {
    let data = root.join("photos");
    common::tiny_dataset(&data, 2, 16, 4);
    let run = root.join("gan");
    let config = GanRunConfig {
        data: Some(data),
        classes: None,
        conditional,
        gan: GanConfig {
            epochs: 2,
            bs: 8,
            n_features: 8,
            ..GanConfig::default()
        },
    };
    gan_run::train(&config, &run, false, &fastvision::device(), Listen::none()).unwrap();
    run
}

#[test]
fn samples_are_the_same_for_a_seed_and_named_as_synthetic() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_gan_run(tmp.path(), true);
    for f in [
        "log.json",
        "losses.png",
        "samples/epoch_001.png",
        "model.safetensors",
        "net.json",
    ] {
        assert!(run.join("conditional").join(f).is_file(), "{f} written");
    }
    let device = fastvision::device();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    fastvision::gan::sample::sample(&run, 3, 5, &a, &device).unwrap();
    fastvision::gan::sample::sample(&run, 3, 5, &b, &device).unwrap();
    fastvision::gan::sample::sample(&run, 3, 6, &c, &device).unwrap();
    let read = |d: &std::path::Path, s: u64| {
        std::fs::read(d.join("bag").join(format!("gan-bag-{s}-00002.png"))).unwrap()
    };
    assert_eq!(read(&a, 5), read(&b, 5), "same seed, same image");
    assert_ne!(read(&a, 5), read(&c, 6), "another seed, another image");
    assert!(a.join("manifest.json").is_file());
    let again = fastvision::gan::sample::sample(&run, 3, 5, &a, &device);
    assert!(again.is_err(), "never overwrites earlier samples");
}

#[test]
fn synthetic_images_train_but_never_validate() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_gan_run(tmp.path(), false);
    let synth = tmp.path().join("synth");
    fastvision::gan::sample::sample(&run, 6, 0, &synth, &fastvision::device()).unwrap();
    let config = fastvision::vision::TrainConfig {
        data: Some(tmp.path().join("photos")),
        extra_data: Some(synth.clone()),
        ..Default::default()
    };
    let data = fastvision::vision::training_data(&config).unwrap();
    assert_eq!(data.synthetic, 12);
    assert_eq!(data.train.len(), 32 + 12);
    let dls = DataLoaders::with_transforms(
        &data,
        ItemTransform::valid(28),
        ItemTransform::valid(28),
        8,
        0,
    );
    assert_eq!(dls.valid.items().len(), 8);
    assert!(
        dls.valid
            .items()
            .iter()
            .all(|i| !i.path.starts_with(&synth)),
        "no synthetic image in the validation loader"
    );
    assert_eq!(
        dls.train
            .items()
            .iter()
            .filter(|i| i.path.starts_with(&synth))
            .count(),
        12
    );
    // --extra-fraction 0.25: a quarter as many synthetic images as real ones.
    let config = fastvision::vision::TrainConfig {
        extra_fraction: Some(0.25),
        ..config
    };
    assert_eq!(
        fastvision::vision::training_data(&config)
            .unwrap()
            .synthetic,
        8
    );
    // Interpretation and cleaning judge the real data only.
    let real = fastvision::vision::load_data(&config).unwrap();
    assert_eq!((real.train.len(), real.synthetic), (32, 0));
}

#[test]
fn bad_input_names_the_class_or_both_class_lists() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("photos");
    common::tiny_dataset(&data, 2, 5, 2);
    let config = GanRunConfig {
        data: Some(data.clone()),
        classes: Some(vec!["bag".into()]),
        conditional: false,
        gan: GanConfig {
            bs: 8,
            ..GanConfig::default()
        },
    };
    let err = gan_run::train(
        &config,
        &tmp.path().join("g"),
        false,
        &fastvision::device(),
        Listen::none(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("class \"bag\" has 5 training images, fewer than one batch (`bs` 8)"),
        "{err}"
    );
    assert!(
        !tmp.path().join("g").exists(),
        "no run folder is left behind"
    );
    let synth = tmp.path().join("synth");
    std::fs::create_dir_all(synth.join("bag")).unwrap();
    std::fs::create_dir_all(synth.join("zebra")).unwrap();
    let mut folder = ImageFolder::from_folder(&data, SplitConfig::default()).unwrap();
    let err = fastvision::gan::extra::add_synthetic(&mut folder, &synth, None, 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("synthetic [bag, zebra], dataset [ankle-boot, bag]")
            && err.contains("unknown: zebra"),
        "{err}"
    );
}

#[test]
fn an_interrupted_gan_run_resumes_where_it_stopped() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_gan_run(tmp.path(), false);
    let device = fastvision::device();
    // The first class is finished; the second stopped after its epochs (as if asked for more).
    let first = run.join("ankle-boot/model.safetensors");
    let before = std::fs::read(&first).unwrap();
    let second = run.join("bag");
    std::fs::remove_file(second.join("model.safetensors")).unwrap();
    std::fs::remove_file(second.join("net.json")).unwrap();
    let mut config = gan_run::load_config(&run).unwrap();
    config.gan.epochs = 3;
    std::fs::write(run.join("gan.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    gan_run::train(&config, &run, true, &device, Listen::none()).unwrap();
    assert_eq!(
        std::fs::read(&first).unwrap(),
        before,
        "a finished net is kept"
    );
    let log: Recorder =
        serde_json::from_slice(&std::fs::read(second.join("log.json")).unwrap()).unwrap();
    let epochs: Vec<usize> = log.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, [0, 1, 2], "epochs 0 and 1 kept, epoch 2 trained");
    assert!(second.join("samples/epoch_002.png").is_file());
}
