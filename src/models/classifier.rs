//! An image classifier: a pretrained-style body cut before its pooling, plus fastai's head.

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::efficientnet_lite::{EfficientNetLite, LITE0_FEATURES};
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
    /// EfficientNet-Lite0.
    #[serde(rename = "efficientnet_lite0")]
    EfficientnetLite0,
}

impl Arch {
    /// ResNet depth of this architecture (0 for other families).
    pub fn depth(self) -> usize {
        match self {
            Arch::Resnet18 => 18,
            Arch::Resnet34 => 34,
            Arch::Resnet50 => 50,
            Arch::EfficientnetLite0 => 0,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arch::EfficientnetLite0 => write!(f, "efficientnet_lite0"),
            _ => write!(f, "resnet{}", self.depth()),
        }
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "resnet18" => Ok(Arch::Resnet18),
            "resnet34" => Ok(Arch::Resnet34),
            "resnet50" => Ok(Arch::Resnet50),
            "efficientnet_lite0" | "efficientnet-lite0" => Ok(Arch::EfficientnetLite0),
            other => Err(Error::Config(format!(
                "unknown architecture {other:?} (resnet18, resnet34, resnet50, efficientnet_lite0)"
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

/// The feature extractor: a torchvision ResNet or EfficientNet-Lite0 (its parameter paths carry the
/// variant name: `body.ResNet.layer1.0.conv1.weight`, `body.EfficientNetLite.blocks.3.bn1.gamma`).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Body {
    /// torchvision-layout ResNet.
    ResNet(ResNet),
    /// EfficientNet-Lite0.
    EfficientNetLite(EfficientNetLite),
}

impl Body {
    /// The feature map of a normalised batch.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Body::ResNet(m) => m.forward(x),
            Body::EfficientNetLite(m) => m.forward(x),
        }
    }
}

/// Body + head.
#[derive(Module, Debug)]
pub struct ImageClassifier {
    /// Feature extractor.
    pub body: Body,
    /// fastai head.
    pub head: Head,
}

impl ClassifierConfig {
    /// Builds the model with Kaiming initialisation.
    pub fn init(&self, device: &Device) -> Result<ImageClassifier> {
        if self.n_classes < 2 {
            return Err(Error::Config(format!(
                "need at least 2 classes, got {}",
                self.n_classes
            )));
        }
        let (body, n_features) = match self.arch {
            Arch::EfficientnetLite0 => (
                Body::EfficientNetLite(EfficientNetLite::lite0(device)),
                LITE0_FEATURES,
            ),
            _ => {
                let cfg = ResNetConfig::new(self.arch.depth()).with_width(self.width);
                (Body::ResNet(cfg.init(device)?), cfg.out_channels())
            }
        };
        Ok(ImageClassifier {
            body,
            head: HeadConfig::new(n_features, self.n_classes)
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

    /// fastai-style parameter groups as path prefixes, first (stem) to last (head).
    pub fn param_groups(&self) -> Vec<Vec<String>> {
        let own = |v: Vec<String>| v;
        match &self.body {
            Body::ResNet(_) => vec![
                own(["conv1", "bn1", "layer1", "layer2"]
                    .iter()
                    .map(|n| format!("body.ResNet.{n}."))
                    .collect()),
                own(["layer3", "layer4"]
                    .iter()
                    .map(|n| format!("body.ResNet.{n}."))
                    .collect()),
                vec!["head.".into()],
            ],
            Body::EfficientNetLite(m) => {
                let n = m.blocks.len();
                let block = |i: usize| format!("body.EfficientNetLite.blocks.{i}.");
                let mut first: Vec<String> = vec![
                    "body.EfficientNetLite.conv_stem.".into(),
                    "body.EfficientNetLite.bn0.".into(),
                ];
                first.extend((0..n / 2).map(block));
                let mut second: Vec<String> = (n / 2..n).map(block).collect();
                second.extend([
                    "body.EfficientNetLite.conv_head.".into(),
                    "body.EfficientNetLite.bn1.".into(),
                ]);
                vec![first, second, vec!["head.".into()]]
            }
        }
    }
}
