//! The GPU backend (wgpu on Vulkan; in CI Mesa's software driver, lavapipe): a tiny ResNet's
//! training steps on the GPU equal the CPU's from the same weights, its loss falls, and the
//! GPU's predictions equal the CPU's for the same trained weights.
//!
//! Runs only in a build with GPU support (`cargo test --features gpu`), and needs a Vulkan
//! driver: `apt-get install mesa-vulkan-drivers libvulkan1` gives a software one anywhere.

#![cfg(feature = "wgpu")]

use crate::common;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use fastvision::backend::{DeviceChoice, select};
use fastvision::burn;
use fastvision::data::{DataLoaders, ImageFolder, ItemTransform, SplitConfig};
use fastvision::learner::{Learner, Precision};

fn gpu() -> Device {
    let s = select(DeviceChoice::Gpu).unwrap_or_else(|e| {
        panic!("{e}\n(the GPU tests need a Vulkan driver: apt-get install mesa-vulkan-drivers)")
    });
    eprintln!("device: {}", s.description);
    s.device
}

/// The largest absolute difference between two equally long slices, and the largest magnitude.
fn worst(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    (diff, scale)
}

/// One batch of 16 real demo images (2 classes, 32 px, no augmentation), its loaders, and a
/// way to put its images and labels on any device.
struct OneBatch {
    dls: DataLoaders,
    pixels: Vec<f32>,
    labels: Vec<i64>,
    _dir: tempfile::TempDir,
}

impl OneBatch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        common::tiny_dataset(dir.path(), 2, 8, 1);
        let data = ImageFolder::from_folder(dir.path(), SplitConfig::default()).unwrap();
        let plain = ItemTransform::valid(32);
        let dls = DataLoaders::with_transforms(&data, plain, plain, 16, 0);
        let batch = dls.train.iter(0).next().expect("one batch");
        let pixels = batch
            .images(&Device::flex())
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let labels = batch.labels.clone();
        Self {
            dls,
            pixels,
            labels,
            _dir: dir,
        }
    }

    fn images(&self, d: &Device) -> Tensor<4> {
        let n = self.labels.len();
        Tensor::<4>::from_data(TensorData::new(self.pixels.clone(), [n, 3, 32, 32]), d)
    }

    fn targets(&self, d: &Device) -> Tensor<1, Int> {
        let n = self.labels.len();
        Tensor::<1, Int>::from_data(TensorData::new(self.labels.clone(), [n]), d)
    }
}

#[test]
fn a_tiny_resnet_trains_on_the_gpu_as_on_the_cpu() {
    let rng = common::rng_lock();
    let gpu = gpu();
    let cpu = Device::flex();
    let b = OneBatch::new();
    let dls = b.dls.clone();
    let images = |d: &Device| b.images(d);
    let targets = |d: &Device| b.targets(d);

    // The same initial weights on both devices (dropout off: its masks come from each device's RNG).
    let cpu_ad = cpu.clone().autodiff();
    cpu_ad.seed(0);
    let model = common::tiny_model(2).with_ps(0.0).init(&cpu_ad).unwrap();
    // Nothing below draws from the device RNG (dropout is off): the other tests may run.
    drop(rng);
    let gpu_ad = gpu.clone().autodiff();
    let on_gpu = model.clone().fork(&gpu_ad);
    let mut lc = Learner::new(model, dls.clone(), Default::default(), &cpu_ad, 0);
    let mut lg = Learner::new(on_gpu, dls, Default::default(), &gpu_ad, 0);

    let steps = 8;
    let (mut on_cpu, mut on_gpu) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        on_cpu.push(lc.step_tensors(images(&cpu_ad), targets(&cpu_ad), 1e-2, 0.9));
        on_gpu.push(lg.step_tensors(images(&gpu_ad), targets(&gpu_ad), 1e-2, 0.9));
    }
    eprintln!("losses, cpu: {on_cpu:?}\nlosses, gpu: {on_gpu:?}");
    assert!(
        (on_cpu[0] - on_gpu[0]).abs() < 1e-4 * on_cpu[0].abs().max(1.0),
        "the first loss (same weights, same batch) agrees: cpu {} gpu {}",
        on_cpu[0],
        on_gpu[0]
    );
    // Later steps drift apart as float rounding differs (training at a high rate is chaotic);
    // the first three agree closely.
    for (c, g) in on_cpu.iter().zip(&on_gpu).take(3) {
        assert!(
            (c - g).abs() < 1e-2 * c.abs().max(0.1),
            "the first steps' losses agree within 1 %: cpu {on_cpu:?} gpu {on_gpu:?}"
        );
    }
    assert!(
        on_gpu[steps - 1] < 0.5 * on_gpu[0],
        "the loss falls on the GPU: {on_gpu:?}"
    );

    // Predictions in eval mode, from the GPU-trained weights on both devices.
    let trained = lg.model.valid();
    let copy = trained.clone().to_device(&cpu);
    let logits = |m: &fastvision::models::ImageClassifier, d: &Device| {
        m.forward(images(d))
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 logits")
    };
    let (g, c) = (logits(&trained, &gpu), logits(&copy, &cpu));
    let (diff, scale) = worst(&g, &c);
    assert!(
        diff <= 1e-4 * scale.max(1.0),
        "GPU and CPU logits agree for the same weights: max difference {diff} (scale {scale})"
    );
}

#[test]
fn mixed_precision_fp16_trains_with_loss_scaling() {
    let rng = common::rng_lock();
    let gpu = gpu().autodiff();
    let b = OneBatch::new();
    gpu.seed(0);
    let model = common::tiny_model(2).with_ps(0.0).init(&gpu).unwrap();
    // Nothing below depends on the device RNG (dropout is off): the other tests may run.
    drop(rng);
    let mut fp32 = Learner::new(model.clone(), b.dls.clone(), Default::default(), &gpu, 0);
    let mut fp16 = Learner::new(model.fork(&gpu), b.dls.clone(), Default::default(), &gpu, 0);
    fp16.set_precision(Precision::Fp16).unwrap();
    assert!(
        Learner::new(
            common::tiny_model(2).init(&gpu).unwrap(),
            b.dls.clone(),
            Default::default(),
            &gpu,
            0
        )
        .set_precision(Precision::Bf16)
        .is_err(),
        "bf16 is refused on Vulkan, which has no bf16 arithmetic"
    );
    let (mut l32, mut l16) = (Vec::new(), Vec::new());
    for _ in 0..12 {
        l32.push(fp32.step_tensors(b.images(&gpu), b.targets(&gpu), 1e-2, 0.9));
        l16.push(fp16.step_tensors(b.images(&gpu), b.targets(&gpu), 1e-2, 0.9));
    }
    eprintln!("losses, fp32: {l32:?}\nlosses, fp16: {l16:?}");
    assert!(
        (l32[0] - l16[0]).abs() < 5e-2 * l32[0],
        "half-precision convolutions give the same first loss within 5 %: {} vs {}",
        l32[0],
        l16[0]
    );
    let scaler = fp16.scaler().expect("fp16 scales its loss");
    // As PyTorch's GradScaler, the first steps at scale 2^16 overflow and are skipped until
    // the scale has halved enough.
    assert!(
        (1..=5).contains(&scaler.skipped) && scaler.scale < 65536.0,
        "a few overflowing steps skipped, the scale lowered: {scaler:?}"
    );
    assert_eq!(
        l16[0], l16[1],
        "a skipped step leaves the weights as they were"
    );
    assert!(l16[11] < 0.5 * l16[0], "the fp16 loss falls: {l16:?}");
}
