//! Helpers shared by the integration tests: small datasets made from the bundled demo.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fastvision::learner::{EpochMetrics, FitState, Listen, Listener};
use fastvision::models::{Arch, ClassifierConfig};

/// burn's device RNG (init, dropout) is global: tests that seed it must not run at once.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the process-wide RNG lock for the rest of a test.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// A narrow ResNet-18 (width 8, hidden 32) that trains in a blink.
pub fn tiny_model(n_classes: usize) -> ClassifierConfig {
    ClassifierConfig::new(Arch::Resnet18, n_classes)
        .with_width(8)
        .with_hidden(32)
}

/// Stops training after `n` epochs in all, across fits and stages, as an interruption would.
pub struct StopAfter {
    n: usize,
    seen: usize,
}

impl StopAfter {
    /// Stops after `n` epochs: a listener for a run.
    pub fn listen(n: usize) -> Listen {
        Listen::new(Self { n, seen: 0 })
    }

    /// Stops after `n` epochs: a callback for a learner.
    pub fn callback(n: usize) -> Box<Self> {
        Box::new(Self { n, seen: 0 })
    }
}

impl fastvision::learner::Callback for StopAfter {}

impl Listener for StopAfter {
    fn after_epoch(&mut self, state: &mut FitState, _m: &EpochMetrics) {
        self.seen += 1;
        if self.seen >= self.n {
            state.stop = true;
        }
    }
}

/// Runs the built `fastvision` in `cwd` with `args` (whatever `FASTVISION_DEVICE` the caller
/// has set): its exit code and its stdout followed by its stderr.
pub fn run_cli(cwd: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastvision"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FASTVISION_DEVICE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Some file in the folder `dir` (the first the folder lists).
pub fn any_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// The repository's demo dataset.
pub fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo")
}

/// Copies `n_train`/`n_valid` images of each of the first `n_classes` demo classes into
/// `dst/train/<class>/` and `dst/valid/<class>/`.
pub fn tiny_dataset(dst: &Path, n_classes: usize, n_train: usize, n_valid: usize) {
    for (split, n) in [("train", n_train), ("valid", n_valid)] {
        let mut classes: Vec<_> = std::fs::read_dir(demo().join(split))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        classes.sort();
        for class in classes.into_iter().take(n_classes) {
            let out = dst.join(split).join(class.file_name().unwrap());
            std::fs::create_dir_all(&out).unwrap();
            let mut files: Vec<_> = std::fs::read_dir(&class)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files.into_iter().take(n) {
                std::fs::copy(&f, out.join(f.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// Asserts `got` equals PyTorch's `want` within `rel` of the largest reference magnitude.
pub fn assert_matches_pytorch(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: output sizes differ");
    let scale = want.iter().fold(0.0f32, |a, b| a.max(b.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= rel * scale,
        "{what}: max difference {worst} vs scale {scale}"
    );
}

/// `config`'s model after `steps` high-rate steps on one random batch of 8 (3 classes), in
/// eval mode: every BatchNorm then has its own running statistics, γ and β, so tests of
/// inference paths (BN folding, export) see non-trivial ones. Hold [`rng_lock`] around it.
pub fn briefly_trained(
    config: &ClassifierConfig,
    steps: usize,
    seed: u64,
) -> fastvision::models::ImageClassifier {
    briefly_trained_on(config, steps, seed, |_| false)
}

/// [`briefly_trained`] with each step for which `elsewhere(step)` holds taken on a thread of
/// its own (the others on the calling thread).
pub fn briefly_trained_on(
    config: &ClassifierConfig,
    steps: usize,
    seed: u64,
    elsewhere: impl Fn(usize) -> bool,
) -> fastvision::models::ImageClassifier {
    use burn::module::Module;
    use burn::tensor::{Distribution, Int, Tensor, TensorData};
    let dir = tempfile::tempdir().unwrap();
    tiny_dataset(dir.path(), 3, 8, 2);
    let data = fastvision::data::ImageFolder::from_folder(dir.path(), Default::default()).unwrap();
    let device = fastvision::device().autodiff();
    device.seed(seed);
    let model = config.init(&device).unwrap();
    let dls = fastvision::data::DataLoaders::from_folder(&data, 32, 8, seed);
    let mut learn =
        fastvision::learner::Learner::new(model, dls, Default::default(), &device, seed);
    let x = Tensor::<4>::random([8, 3, 32, 32], Distribution::Normal(0.5, 2.0), &device);
    let y = Tensor::<1, Int>::from_data(
        TensorData::new((0..8i64).map(|i| i % 3).collect(), [8]),
        &device,
    );
    for step in 0..steps {
        let mut one = || learn.step_tensors(x.clone(), y.clone(), 3e-2, 0.9);
        if elsewhere(step) {
            std::thread::scope(|s| s.spawn(one).join().unwrap());
        } else {
            one();
        }
    }
    learn.model.valid()
}

/// [`run_cli`] that fails the test when the command has not ended within `secs` seconds (it is
/// killed): for cases whose bug would be a hang.
pub fn run_cli_within(cwd: &Path, args: &[&str], secs: u64) -> (i32, String) {
    let (child, out) = spawn_cli(cwd, args, &[]);
    wait_within(child, out, args, secs)
}

/// Starts the built `fastvision` in `cwd` with `args` and the variables `env` (stdin empty);
/// its stdout and stderr go into the returned temporary file.
pub fn spawn_cli(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, std::fs::File) {
    let out = tempfile::tempfile().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_fastvision"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FASTVISION_DEVICE")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out.try_clone().unwrap())
        .spawn()
        .unwrap();
    (child, out)
}

/// Waits for `child` (started with `args` by [`spawn_cli`]) at most `secs` seconds, then kills
/// it and fails the test; returns its exit code and output.
pub fn wait_within(
    mut child: std::process::Child,
    out: std::fs::File,
    args: &[&str],
    secs: u64,
) -> (i32, String) {
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed().as_secs() >= secs {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`fastvision {}` hung: killed after {secs} s",
                args.join(" ")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (status.code().unwrap_or(-1), read_output(out))
}

/// All that a command wrote into the temporary file `out` of [`spawn_cli`].
pub fn read_output(mut out: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    out.seek(std::io::SeekFrom::Start(0)).unwrap();
    out.read_to_string(&mut text).unwrap();
    text
}

/// The one line a refused command prints (its last non-empty line).
pub fn last_line(out: &str) -> &str {
    out.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}
