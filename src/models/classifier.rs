//! An image classifier: a pretrained-style body cut before its pooling, plus fastai's head.

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::head::{Head, HeadConfig};
use super::resnet::{ResNet, ResNetConfig};
use crate::error::{Error, Result};

/// The body architectures fastvision builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// torchvision ResNet-18.
    Resnet18,
    /// torchvision ResNet-34.
    Resnet34,
    /// torchvision ResNet-50.
    Resnet50,
}

impl Arch {
    /// ResNet depth of this architecture.
    pub fn depth(self) -> usize {
        match self {
            Arch::Resnet18 => 18,
            Arch::Resnet34 => 34,
            Arch::Resnet50 => 50,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resnet{}", self.depth())
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "resnet18" => Ok(Arch::Resnet18),
            "resnet34" => Ok(Arch::Resnet34),
            "resnet50" => Ok(Arch::Resnet50),
            other => Err(Error::Config(format!(
                "unknown architecture {other:?} (resnet18, resnet34, resnet50)"
            ))),
        }
    }
}

/// Everything needed to rebuild a classifier: architecture, body width, classes and head.
#[derive(Config, Debug, PartialEq)]
pub struct ClassifierConfig {
    /// Body architecture.
    pub arch: Arch,
    /// Number of classes.
    pub n_classes: usize,
    /// Body stem width (64 = torchvision's; smaller only for tests).
    #[config(default = 64)]
    pub width: usize,
    /// Head dropout (fastai's `ps`, 0.5).
    #[config(default = 0.5)]
    pub ps: f64,
    /// Head hidden units (fastai: 512).
    #[config(default = 512)]
    pub hidden: usize,
}

/// Body + head; parameter names are `body.<torchvision name>` and `head.*`.
#[derive(Module, Debug)]
pub struct ImageClassifier {
    /// Feature extractor (torchvision layout).
    pub body: ResNet,
    /// fastai head.
    pub head: Head,
}

impl ClassifierConfig {
    /// The body's configuration.
    pub fn body(&self) -> ResNetConfig {
        ResNetConfig::new(self.arch.depth()).with_width(self.width)
    }

    /// Builds the model with Kaiming initialisation.
    pub fn init(&self, device: &Device) -> Result<ImageClassifier> {
        if self.n_classes < 2 {
            return Err(Error::Config(format!(
                "need at least 2 classes, got {}",
                self.n_classes
            )));
        }
        let body = self.body();
        Ok(ImageClassifier {
            body: body.init(device)?,
            head: HeadConfig::new(body.out_channels(), self.n_classes)
                .with_ps(self.ps)
                .with_hidden(self.hidden)
                .init(device),
        })
    }
}

impl ImageClassifier {
    /// Logits `[n, n_classes]` for a normalised batch `[n, 3, h, w]` (any h, w ≥ 32).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.body.forward(images))
    }
}
