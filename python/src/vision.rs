//! Images: `DataLoaders` (a folder of class folders, split and batched), `Learner` (a model in
//! memory between fits, or one loaded for inference) and `load_learner`.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use fastvision::data::ImageFolder;
use fastvision::infer::{Inference, Predictor, Tta};
use fastvision::learner::Lrs;
use fastvision::report::plot::{plot_losses, plot_lr_find};
use fastvision::vision::{self, TrainConfig, VisionLearner};
use numpy::{PyArray1, PyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyRuntimeError, PyUserWarning, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::listen;
use crate::settings::{parse, read, scratch};

/// Registers the image classes and functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DataLoaders>()?;
    m.add_class::<Learner>()?;
    m.add_function(wrap_pyfunction!(vision_learner, m)?)?;
    m.add_function(wrap_pyfunction!(load_learner, m)?)?;
    Ok(())
}

/// A dataset folder read, split and ready to batch, with the settings the learner will use.
#[pyclass(module = "fastvision._engine", frozen)]
pub struct DataLoaders {
    pub(crate) config: TrainConfig,
    pub(crate) data: ImageFolder,
}

#[pymethods]
impl DataLoaders {
    /// Reads `path` (class folders, or `train/` and `valid/` of class folders; `None` = the
    /// bundled demo) and splits it.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (path=None, valid_pct=0.2, size=None, bs=None, seed=42, aug=None, min_scale=None))]
    fn from_folder(
        py: Python<'_>,
        path: Option<PathBuf>,
        valid_pct: f64,
        size: Option<u32>,
        bs: Option<usize>,
        seed: u64,
        aug: Option<String>,
        min_scale: Option<f64>,
    ) -> PyResult<Self> {
        let config = TrainConfig {
            data: path,
            valid_pct,
            size,
            bs: bs.unwrap_or(64),
            auto_bs: bs.is_none(),
            seed,
            aug: aug.map(|a| parse("aug", &a)).transpose()?,
            min_scale,
            ..TrainConfig::default()
        };
        config.validate().map_err(to_py)?;
        let data = py
            .detach(|| vision::training_data(&config))
            .map_err(to_py)?;
        Ok(Self { config, data })
    }

    /// Class names, sorted (an index into this list is a label).
    #[getter]
    fn vocab(&self) -> Vec<String> {
        self.data.vocab.clone()
    }

    /// The dataset folder.
    #[getter]
    fn path(&self) -> String {
        self.data.root.display().to_string()
    }

    /// Image side the learner trains at (`None`: 64, or the data's smallest side if smaller).
    #[getter]
    fn size(&self) -> Option<u32> {
        self.config.size
    }

    /// Batch size.
    #[getter]
    fn bs(&self) -> usize {
        self.config.bs
    }

    /// The items of `split` ("train" or "valid") as (file, label) pairs.
    fn items(&self, split: &str) -> PyResult<Vec<(String, usize)>> {
        let items = match split {
            "train" => &self.data.train,
            "valid" => &self.data.valid,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid setting: `split` {other:?}: \"train\" or \"valid\""
                )));
            }
        };
        Ok(items
            .iter()
            .map(|i| (i.path.display().to_string(), i.label))
            .collect())
    }

    /// Files that were left out, with the reason.
    fn skipped(&self) -> Vec<(String, String)> {
        self.data
            .skipped
            .iter()
            .map(|s| (s.path.display().to_string(), s.reason.clone()))
            .collect()
    }

    /// A PNG grid of `n` augmented training images with their classes (fastai's `show_batch`).
    fn show_batch(&self, py: Python<'_>, n: usize) -> PyResult<Vec<u8>> {
        let dir = scratch()?;
        let run = dir.path().join("batch");
        let png = py
            .detach(|| vision::show_batch(&self.config, &run, n))
            .map_err(to_py)?;
        read(&png)
    }
}

/// Predictions and their targets, as numpy arrays.
pub type Preds<'py, T> = PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray1<T>>)>;

/// A learning rate: one for every group, a (low, high) range over them (fastai's
/// `slice(lo, hi)`), or `(hi,)`: hi/10 for every group but the head (fastai's `slice(hi)`).
#[derive(FromPyObject)]
pub enum Lr {
    /// The same for every group.
    One(f64),
    /// Geometric from low to high.
    Range((f64, f64)),
    /// hi/10, then hi for the head.
    UpTo((f64,)),
}

impl From<Lr> for Lrs {
    fn from(lr: Lr) -> Self {
        match lr {
            Lr::One(v) => Lrs::Single(v),
            Lr::Range((lo, hi)) => Lrs::Range(lo, hi),
            Lr::UpTo((hi,)) => Lrs::UpTo(hi),
        }
    }
}

/// What a learner holds: a model it trains, or one loaded from an export to predict with.
enum State {
    Train(Box<VisionLearner>),
    Infer(Box<Predictor>),
}

/// An image classifier: trainable when built by `vision_learner`, predict-only when loaded.
#[pyclass(module = "fastvision._engine", frozen)]
pub struct Learner {
    state: Mutex<State>,
}

impl Learner {
    /// The learner's state; a `RuntimeError` while another thread uses it (training), rather
    /// than waiting for it with the GIL held (which the training's progress needs).
    fn lock(&self) -> PyResult<MutexGuard<'_, State>> {
        busy(self.state.try_lock())
    }

    /// Runs `f` on the trainable learner, the GIL released, progress and interrupts through
    /// `progress`.
    fn with_train<T: Send>(
        &self,
        py: Python<'_>,
        progress: Option<Py<PyAny>>,
        f: impl FnOnce(&mut VisionLearner, fastvision::learner::Listen) -> fastvision::Result<T> + Send,
    ) -> PyResult<T> {
        let mut state = self.lock()?;
        let State::Train(vl) = &mut *state else {
            return Err(PyRuntimeError::new_err(
                "this learner was loaded from an export: it predicts, it does not train \
                 (build one with vision_learner to train)",
            ));
        };
        let vl: &mut VisionLearner = vl;
        listen::run(py, progress, |l| f(vl, l))
    }

    /// Runs a fit of the learner, with progress and interrupts through `progress`.
    fn fit_with(
        &self,
        py: Python<'_>,
        progress: Option<Py<PyAny>>,
        fit: impl FnOnce(&mut fastvision::learner::Learner) -> fastvision::Result<()> + Send,
    ) -> PyResult<()> {
        self.with_train(py, progress, |vl, l| vl.fit_with(l, fit))
    }

    /// Probabilities of `images` (by every member of a loaded ensemble) and the class names.
    fn probs(
        &self,
        py: Python<'_>,
        images: Vec<image::RgbImage>,
    ) -> PyResult<(Vec<Vec<f32>>, Vec<String>)> {
        let mut guard = self.lock()?;
        let state: &mut State = &mut guard;
        Ok(py.detach(move || match state {
            State::Train(vl) => {
                let p = vl.predictor();
                (p.probs_of_images(&images), p.config.vocab.clone())
            }
            State::Infer(p) => (p.probs_of_images(&images), p.config.vocab.clone()),
        }))
    }
}

/// Per-image losses and predictions on the validation set.
fn interpretation(vl: &VisionLearner) -> fastvision::interpret::Interpretation {
    fastvision::interpret::interpret(&vl.predictor(), &vl.prepared.data.valid, vl.config.bs)
}

/// The guard of `lock`, or a `RuntimeError` when another thread holds it.
pub fn busy<T>(lock: std::sync::TryLockResult<T>) -> PyResult<T> {
    match lock {
        Ok(g) => Ok(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
            "the learner is busy in another thread (training or predicting): wait for it",
        )),
    }
}

/// An RGB image from an H×W, H×W×1, H×W×3 or H×W×4 `uint8` array, in one pass.
fn rgb_image(a: &numpy::ndarray::ArrayViewD<'_, u8>) -> PyResult<image::RgbImage> {
    let shape = a.shape();
    let (h, w, c) = match *shape {
        [h, w] => (h, w, 1),
        [h, w, c] if matches!(c, 1 | 3 | 4) => (h, w, c),
        _ => {
            return Err(PyValueError::new_err(format!(
                "an image array must be H×W, H×W×1, H×W×3 or H×W×4 uint8, not shape {shape:?}"
            )));
        }
    };
    if h == 0 || w == 0 || h > 1 << 15 || w > 1 << 15 {
        return Err(PyValueError::new_err(format!(
            "an image array's sides must be 1 to 32768 pixels, not {h}×{w}"
        )));
    }
    // In logical (row-major) order whatever the strides: C or Fortran order, a crop, a flip.
    let mut rgb = Vec::with_capacity(h * w * 3);
    for (i, &v) in a.iter().enumerate() {
        match c {
            1 => rgb.extend_from_slice(&[v; 3]),
            3 => rgb.push(v),
            _ if i % 4 < 3 => rgb.push(v),
            _ => {}
        }
    }
    image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| PyValueError::new_err("the image array's size does not match its shape"))
}

/// The (label, index, probabilities) of one row of probabilities.
fn prediction<'py>(
    py: Python<'py>,
    probs: Vec<f32>,
    vocab: &[String],
) -> (String, usize, Bound<'py, PyArray1<f32>>) {
    let idx = fastvision::tabular::predict::argmax(&probs);
    (vocab[idx].clone(), idx, PyArray1::from_vec(py, probs))
}

/// Probabilities as a 2-D array (rows × classes).
fn matrix<'py>(
    py: Python<'py>,
    rows: &[Vec<f32>],
    k: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    if rows.is_empty() {
        return Ok(PyArray2::zeros(py, [0, k], false));
    }
    PyArray2::from_vec2(py, rows).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

#[pymethods]
impl Learner {
    /// Class names.
    #[getter]
    fn vocab(&self) -> PyResult<Vec<String>> {
        Ok(match &*self.lock()? {
            State::Train(vl) => vl.prepared.dls.vocab.clone(),
            State::Infer(p) => p.config.vocab.clone(),
        })
    }

    /// Whether the learner can train (built by `vision_learner`, not loaded from an export).
    #[getter]
    fn trainable(&self) -> PyResult<bool> {
        Ok(matches!(&*self.lock()?, State::Train(_)))
    }

    /// fastai's `fit_one_cycle(n_epoch, lr_max)`.
    #[pyo3(signature = (n_epoch, lr_max, progress=None))]
    fn fit_one_cycle(
        &self,
        py: Python<'_>,
        n_epoch: usize,
        lr_max: Lr,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let lrs = Lrs::from(lr_max);
        self.fit_with(py, progress, move |l| l.fit_one_cycle(n_epoch, lrs))
    }

    /// fastai's `fit_flat_cos(n_epoch, lr)`.
    #[pyo3(signature = (n_epoch, lr, progress=None))]
    fn fit_flat_cos(
        &self,
        py: Python<'_>,
        n_epoch: usize,
        lr: Lr,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let lrs = Lrs::from(lr);
        self.fit_with(py, progress, move |l| l.fit_flat_cos(n_epoch, lrs))
    }

    /// fastai's `fit_sgdr(n_cycles, cycle_len, lr_max, cycle_mult)`.
    #[pyo3(signature = (n_cycles, cycle_len, lr_max, cycle_mult=2, progress=None))]
    fn fit_sgdr(
        &self,
        py: Python<'_>,
        n_cycles: usize,
        cycle_len: usize,
        lr_max: Lr,
        cycle_mult: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let lrs = Lrs::from(lr_max);
        self.fit_with(py, progress, move |l| {
            l.fit_sgdr(n_cycles, cycle_len, cycle_mult, lrs)
        })
    }

    /// fastai's `fine_tune(epochs, base_lr, freeze_epochs, lr_mult)`.
    #[pyo3(signature = (epochs, base_lr=2e-3, freeze_epochs=1, lr_mult=100.0, progress=None))]
    fn fine_tune(
        &self,
        py: Python<'_>,
        epochs: usize,
        base_lr: f64,
        freeze_epochs: usize,
        lr_mult: f64,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        self.fit_with(py, progress, move |l| {
            l.fine_tune(epochs, base_lr, freeze_epochs, lr_mult)
        })
    }

    /// Trains only the head (and BatchNorm) from now on.
    fn freeze(&self, py: Python<'_>) -> PyResult<()> {
        self.with_train(py, None, |vl, _| {
            vl.learner.freeze();
            Ok(())
        })
    }

    /// The precision of the convolutions (and, on the CPU in bf16, the linear layers) now (`fp32`, `bf16`, `fp16`: `auto` is resolved when set).
    fn precision(&self) -> PyResult<String> {
        Ok(match &*self.lock()? {
            State::Train(vl) => vl.learner.precision().to_string(),
            State::Infer(p) => p.precision().to_string(),
        })
    }

    /// Trains and predicts in `precision` from now on (`auto`, `fp32`, `bf16`, `fp16`); the
    /// precision it resolved to.
    fn set_precision(&self, py: Python<'_>, precision: &str) -> PyResult<String> {
        let precision: fastvision::learner::Precision =
            precision.parse().map_err(PyValueError::new_err)?;
        let mut guard = self.lock()?;
        let state: &mut State = &mut guard;
        py.detach(move || match state {
            State::Train(vl) => {
                vl.learner.set_precision(precision)?;
                Ok(vl.learner.precision().to_string())
            }
            State::Infer(p) => {
                p.set_precision(precision)?;
                Ok(p.precision().to_string())
            }
        })
        .map_err(to_py)
    }

    /// Trains every parameter from now on.
    fn unfreeze(&self, py: Python<'_>) -> PyResult<()> {
        self.with_train(py, None, |vl, _| {
            vl.learner.unfreeze();
            Ok(())
        })
    }

    /// The LR range test: (suggestions as JSON, the plot as PNG); the weights are restored.
    #[pyo3(signature = (progress=None))]
    fn lr_find(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> PyResult<(String, Vec<u8>)> {
        let found = self.with_train(py, progress, |vl, l| {
            vl.fit_with(l, |learner| {
                learner.lr_find(fastvision::learner::lr_find::LrFindConfig::default())
            })
        })?;
        let dir = scratch()?;
        let png = dir.path().join("lr_find.png");
        plot_lr_find(&found, &png).map_err(to_py)?;
        let json = serde_json::to_string(&found.suggestions)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok((json, read(&png)?))
    }

    /// (validation loss, accuracy).
    fn validate(&self, py: Python<'_>) -> PyResult<(Option<f64>, Option<f64>)> {
        let v = self.with_train(py, None, |vl, _| Ok(vl.learner.validate()))?;
        Ok((v.loss, v.accuracy))
    }

    /// Every epoch's metrics so far, as JSON.
    fn recorder_json(&self, py: Python<'_>) -> PyResult<String> {
        self.with_train(py, None, |vl, _| {
            serde_json::to_string(&vl.learner.recorder.epochs)
                .map_err(|e| fastvision::Error::Config(e.to_string()))
        })
    }

    /// The training and validation losses as a PNG (fastai's `recorder.plot_loss`).
    fn plot_loss(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        let dir = scratch()?;
        let png = dir.path().join("losses.png");
        self.with_train(py, None, |vl, _| plot_losses(&vl.learner.recorder, &png))?;
        read(&png)
    }

    /// Probabilities and targets of the validation set: plain, "tta" (`n` augmented passes
    /// blended with `beta`) or "ten_crop".
    #[pyo3(signature = (how="plain", n=4, beta=0.25))]
    fn get_preds<'py>(&self, py: Python<'py>, how: &str, n: usize, beta: f64) -> Preds<'py, i64> {
        let how = match how {
            "plain" => Inference::Plain,
            "tta" => Inference::Tta(Tta {
                n,
                beta,
                ..Tta::default()
            }),
            "ten_crop" => Inference::TenCrop,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid setting: `how` {other:?}: \"plain\", \"tta\" or \"ten_crop\""
                )));
            }
        };
        let (probs, targets, k, augments) = self.with_train(py, None, |vl, _| {
            let (p, t) = vl.get_preds(how);
            let augments = vl.bundle_config().augments();
            Ok((p, t, vl.prepared.dls.vocab.len(), augments))
        })?;
        if let Some(note) = how.note(augments) {
            let text = std::ffi::CString::new(note).unwrap_or_default();
            PyErr::warn(py, &py.get_type::<PyUserWarning>(), &text, 1)?;
        }
        let targets: Vec<i64> = targets.into_iter().map(|t| t as i64).collect();
        Ok((matrix(py, &probs, k)?, PyArray1::from_vec(py, targets)))
    }

    /// Predicts an image file: (label, index, probabilities).
    fn predict_path<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
    ) -> PyResult<(String, usize, Bound<'py, PyArray1<f32>>)> {
        let img = fastvision::data::decode::decode_rgb(&path).map_err(|message| {
            to_py(fastvision::Error::Image {
                path: path.clone(),
                message,
            })
        })?;
        let (mut probs, vocab) = self.probs(py, vec![img])?;
        Ok(prediction(py, probs.remove(0), &vocab))
    }

    /// Predicts an image given as a `uint8` array: H×W (grey), H×W×1, H×W×3 (RGB) or H×W×4
    /// (RGBA, alpha ignored); (label, index, probabilities). The pixels are copied once, into
    /// the engine's RGB image, whatever the array's strides.
    fn predict_array<'py>(
        &self,
        py: Python<'py>,
        array: PyReadonlyArrayDyn<'py, u8>,
    ) -> PyResult<(String, usize, Bound<'py, PyArray1<f32>>)> {
        let img = rgb_image(&array.as_array())?;
        let (mut probs, vocab) = self.probs(py, vec![img])?;
        Ok(prediction(py, probs.remove(0), &vocab))
    }

    /// The validation set's per-image interpretation, as JSON (vocab, images with actual,
    /// predicted, prob, loss).
    fn interpretation_json(&self, py: Python<'_>) -> PyResult<String> {
        let interp = self.with_train(py, None, |vl, _| Ok(interpretation(vl)))?;
        serde_json::to_string(&serde_json::json!({
            "vocab": interp.vocab,
            "images": interp.images,
        }))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// `n` validation images with their actual and predicted classes, as a PNG grid (fastai's
    /// `show_results`).
    #[pyo3(signature = (n=9))]
    fn show_results(&self, py: Python<'_>, n: usize) -> PyResult<Vec<u8>> {
        let dir = scratch()?;
        let png = dir.path().join("results.png");
        self.with_train(py, None, |vl, _| vl.show_results(n, &png))?;
        read(&png)
    }

    /// Writes the current weights as one safetensors file (never replaces a file).
    fn export(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.with_train(py, None, |vl, _| vl.export(&path))
    }

    /// Writes the current weights as an ONNX file (never replaces a file).
    fn export_onnx(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.with_train(py, None, |vl, _| vl.export_onnx(&path))
    }
}

/// A learner for `dls` with body `arch`, from pretrained weights when `pretrained` names them
/// (a file, or a known name in the cache).
#[pyfunction]
#[pyo3(signature = (dls, arch="resnet18", pretrained=None, mixup=None, cutmix=None, label_smoothing=None, width=64, progress=None))]
#[allow(clippy::too_many_arguments)]
fn vision_learner(
    py: Python<'_>,
    dls: &DataLoaders,
    arch: &str,
    pretrained: Option<String>,
    mixup: Option<f64>,
    cutmix: Option<f64>,
    label_smoothing: Option<f64>,
    width: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Learner> {
    let config = TrainConfig {
        arch: arch.parse().map_err(to_py)?,
        pretrained,
        mixup,
        cutmix,
        label_smoothing,
        width,
        ..dls.config.clone()
    };
    let data = dls.data.clone();
    let device = fastvision::device();
    let vl = listen::run(py, progress, |mut l| {
        VisionLearner::new(&config, data, &device, &mut l)
    })?;
    Ok(Learner {
        state: Mutex::new(State::Train(Box::new(vl))),
    })
}

/// A predict-only learner from an exported file, a run folder or an ensemble folder.
#[pyfunction]
fn load_learner(py: Python<'_>, path: PathBuf) -> PyResult<Learner> {
    let device = fastvision::device();
    let p = py
        .detach(|| Predictor::load(&path, &device))
        .map_err(to_py)?;
    Ok(Learner {
        state: Mutex::new(State::Infer(Box::new(p))),
    })
}
