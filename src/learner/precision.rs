//! Training and inference precision: f32, or mixed precision as fastai's `to_fp16` and
//! PyTorch's autocast — half-precision convolutions over f32 master weights
//! ([`crate::ops::autocast`]), with dynamic loss scaling for fp16 so small gradients do not
//! flush to zero. On the CPU, bf16 runs where the CPU multiplies it natively
//! ([`crate::ops::kernels::bf16`]); `auto` takes it where that is measured faster (AMX tiles,
//! AVX-512 BF16 on AMD).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::kernels::bf16::{self, Mul};

/// The float precision of the convolutions (and, in bf16 on the CPU, the linear layers), in
/// training and inference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 on a CPU whose bf16 arithmetic is measured faster than f32 (AMX tiles, AVX-512
    /// BF16 on AMD), f32 everywhere else ([`Precision::resolve`]).
    #[default]
    Auto,
    /// Everything in f32 (fastai's default).
    Fp32,
    /// Convolutions in f16, dynamic loss scaling (fastai's `to_fp16`).
    Fp16,
    /// Convolutions in bf16 (no loss scaling needed: bf16 has f32's range).
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "fp32" | "f32" => Ok(Self::Fp32),
            "fp16" | "f16" => Ok(Self::Fp16),
            "bf16" => Ok(Self::Bf16),
            _ => Err("expected auto, fp32, fp16 or bf16".into()),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
            Self::Bf16 => "bf16",
        })
    }
}

impl Precision {
    /// The half-precision dtype of the convolutions, `None` for f32 (and for `Auto`, which
    /// [`Precision::resolve`] turns into a definite precision first).
    pub fn half(self) -> Option<FloatDType> {
        match self {
            Self::Auto | Self::Fp32 => None,
            Self::Fp16 => Some(FloatDType::F16),
            Self::Bf16 => Some(FloatDType::BF16),
        }
    }

    /// The definite precision `self` means on `device`: `Auto` is bf16 on a CPU whose bf16
    /// arithmetic is measured faster than its f32 FMAs ([`bf16::faster_than_f32`]: AMX tiles,
    /// AVX-512 BF16 on AMD; there ResNet-18 trains and predicts 1.1–1.8× faster than in f32,
    /// docs/benchmarks.md), fp32 elsewhere (GPUs train in fp32 unless asked).
    pub fn resolve(self, device: &Device) -> Self {
        match self {
            Self::Auto
                if crate::backend::backend_of(device) == "flex"
                    && bf16::faster_than_f32().is_some() =>
            {
                Self::Bf16
            }
            Self::Auto => Self::Fp32,
            other => other,
        }
    }

    /// `self` resolved on `device`, and why, in a few words for the device line
    /// (`bf16 (auto: AMX tiles)`, `bf16 (auto: AVX-512 BF16 on AMD)`,
    /// `fp32 (auto: AVX-512 BF16 only, no faster than f32 here)`).
    pub fn explain(self, device: &Device) -> String {
        let resolved = self.resolve(device);
        let flex = crate::backend::backend_of(device) == "flex";
        let unit = match bf16::native() {
            Some(Mul::Amx) => "AMX tiles",
            Some(_) if bf16::faster_than_f32().is_some() => "AVX-512 BF16 on AMD",
            Some(_) => "AVX-512 BF16",
            None => "no native bf16",
        };
        match (self, resolved, flex) {
            (Self::Auto, Self::Bf16, _) => format!("bf16 (auto: {unit})"),
            (Self::Auto, _, true) if bf16::native().is_some() => {
                format!("fp32 (auto: {unit} only, no faster than f32 here)")
            }
            (Self::Auto, _, true) => "fp32 (auto: no native bf16 on this CPU)".into(),
            (Self::Auto, _, false) => "fp32 (auto)".into(),
            (Self::Bf16, _, true) => format!("bf16 ({unit})"),
            (p, _, _) => p.to_string(),
        }
    }

    /// Refuses a precision that `device` cannot compute in: fp16 on the CPU, bf16 on a CPU
    /// without native bf16 (AVX-512 BF16 or AMX), a GPU without the dtype's arithmetic.
    pub fn check(self, device: &Device) -> Result<()> {
        let Some(half) = self.resolve(device).half() else {
            return Ok(());
        };
        let backend = crate::backend::backend_of(device);
        if backend == "flex" && self == Self::Fp16 {
            return Err(Error::Config(format!(
                "`precision` {self}: fp16 is for GPUs; on the CPU use bf16 (where the CPU has it) or fp32"
            )));
        }
        if backend == "flex" {
            return match bf16::native() {
                Some(_) => Ok(()),
                None => Err(Error::Config(format!(
                    "`precision` {self}: this CPU has no native bf16 arithmetic (AVX-512 BF16 or AMX); use fp32"
                ))),
            };
        }
        if !device.supports_dtype(DType::from(half)) {
            return Err(Error::Config(format!(
                "`precision` {self}: this device ({backend}) has no {self} arithmetic{}",
                if self == Self::Bf16 {
                    "; use fp16 (Vulkan has no bf16), or libtorch on CUDA"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }
}

/// Dynamic loss scaling as PyTorch's `GradScaler` (its defaults): the loss is multiplied by
/// `scale` before the backward pass; a step whose gradients overflow is skipped and halves the
/// scale, and 2000 clean steps in a row double it.
#[derive(Debug, Clone, PartialEq)]
pub struct GradScaler {
    /// The current factor.
    pub scale: f64,
    /// Clean steps since the last overflow or growth.
    pub clean: usize,
    /// Steps skipped so far because their gradients were not finite.
    pub skipped: usize,
}

impl Default for GradScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            clean: 0,
            skipped: 0,
        }
    }
}

impl GradScaler {
    /// Records one step: `finite` says whether its scaled gradients were all finite.
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.clean += 1;
            if self.clean >= 2000 {
                self.scale *= 2.0;
                self.clean = 0;
            }
        } else {
            self.scale = (self.scale / 2.0).max(1.0);
            self.clean = 0;
            self.skipped += 1;
        }
    }
}

/// Whether every gradient `grads` holds for `model`'s parameters is finite (one sum, one sync).
pub fn grads_finite<M: Module>(model: &M, grads: &GradientsParams) -> bool {
    struct Sum<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.cast(FloatDType::F32).abs().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut sum = Sum { grads, total: None };
    model.visit(&mut sum);
    sum.total.is_none_or(|t| t.into_scalar::<f32>().is_finite())
}

/// Whether every float parameter of `model` is finite (one sum, one sync): a diverged or
/// damaged model's are not.
pub fn params_finite<M: Module>(model: &M) -> bool {
    struct Sum(Option<Tensor<1>>);
    impl ModuleVisitor for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let s = param.val().cast(FloatDType::F32).abs().sum();
            self.0 = Some(match self.0.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
    let mut sum = Sum(None);
    model.visit(&mut sum);
    sum.0.is_none_or(|t| t.into_scalar::<f32>().is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scaler_backs_off_on_overflow_and_grows_after_2000_clean_steps() {
        let mut s = GradScaler::default();
        s.update(false);
        assert_eq!((s.scale, s.skipped), (32768.0, 1));
        for _ in 0..1999 {
            s.update(true);
        }
        assert_eq!(s.scale, 32768.0);
        s.update(true);
        assert_eq!(s.scale, 65536.0);
    }

    #[test]
    fn precisions_parse_and_the_cpu_refuses_half() {
        assert_eq!("FP16".parse::<Precision>(), Ok(Precision::Fp16));
        assert!("fp8".parse::<Precision>().is_err());
        assert!(Precision::Fp16.check(&Device::flex()).is_err());
        assert!(Precision::Fp32.check(&Device::flex()).is_ok());
        assert!(Precision::Auto.check(&Device::flex()).is_ok());
        // bf16 on the CPU exactly where it has native bf16; auto takes it where that is faster.
        let native = bf16::native();
        assert_eq!(
            Precision::Bf16.check(&Device::flex()).is_ok(),
            native.is_some()
        );
        let auto = Precision::Auto.resolve(&Device::flex());
        assert_eq!(auto == Precision::Bf16, bf16::faster_than_f32().is_some());
        assert_eq!("auto".parse::<Precision>(), Ok(Precision::Auto));
    }
}
