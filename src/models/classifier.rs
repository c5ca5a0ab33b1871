//! An image classifier: a pretrained-style body cut before its pooling, plus fastai's head.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

pub use super::arch::Arch;

use super::efficientnet_lite::{EfficientNetLite, LITE0_FEATURES};
use super::head::{Head, HeadConfig};
use super::inception::{InceptionV3, InceptionV3Config};
use super::resnet::{ResNet, ResNetConfig};
use crate::error::{Error, Result};

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
    /// torchvision-layout Inception-v3.
    Inception(InceptionV3),
}

impl Body {
    /// The feature map of a normalised batch.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Body::ResNet(m) => m.forward(x),
            Body::EfficientNetLite(m) => m.forward(x),
            Body::Inception(m) => m.forward(x),
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

/// The widest body built (torchvision's is 64; ResNet-18 at 1024 already has 3 billion weights).
pub const MAX_WIDTH: usize = 1024;
/// The most hidden units of the head (fastai's is 512).
pub const MAX_HIDDEN: usize = 1 << 16;
/// The most classes a head has.
pub const MAX_CLASSES: usize = 1 << 20;

impl ClassifierConfig {
    /// Checks the sizes before anything is built: each within its bound.
    pub fn check(&self) -> Result<()> {
        if self.n_classes < 2 {
            return Err(Error::Config(format!(
                "need at least 2 classes, got {}",
                self.n_classes
            )));
        }
        for (name, v, max) in [
            ("n_classes", self.n_classes, MAX_CLASSES),
            ("width", self.width, MAX_WIDTH),
            ("hidden", self.hidden, MAX_HIDDEN),
        ] {
            if v == 0 || v > max {
                return Err(Error::Config(format!("`{name}` {v}: between 1 and {max}")));
            }
        }
        Ok(())
    }

    /// Builds the model with Kaiming initialisation; refuses, before its weights are allocated,
    /// sizes out of bounds or weights that would not fit in memory.
    pub fn init(&self, device: &Device) -> Result<ImageClassifier> {
        self.check()?;
        let (body, n_features) = match self.arch {
            Arch::EfficientnetLite0 => (
                Body::EfficientNetLite(EfficientNetLite::lite0(device)),
                LITE0_FEATURES,
            ),
            Arch::InceptionV3 => {
                // `width` 64 is torchvision's; narrower widths divide every channel count.
                let cfg = InceptionV3Config::new().with_width_div((64 / self.width.max(8)).max(1));
                (Body::Inception(cfg.init(device)?), cfg.out_channels())
            }
            _ => {
                let cfg = ResNetConfig::new(self.arch.depth()).with_width(self.width);
                (Body::ResNet(cfg.init(device)?), cfg.out_channels())
            }
        };
        let model = ImageClassifier {
            body,
            head: HeadConfig::new(n_features, self.n_classes)
                .with_ps(self.ps)
                .with_hidden(self.hidden)
                .init(device),
        };
        // burn allocates parameters lazily: counting them allocates nothing.
        let params = model.num_params();
        crate::backend::check_fits(
            device,
            4.0 * params as f64,
            &format!(
                "{} with `width` {} ({params} weights)",
                self.arch, self.width
            ),
            "`width` or `hidden`",
        )?;
        Ok(model)
    }
}

impl ImageClassifier {
    /// Logits `[n, n_classes]` for a normalised batch `[n, 3, h, w]` (any h, w ≥ 32).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.body.forward(images))
    }

    /// fastai-style parameter groups as path prefixes, first (stem) to last (head).
    pub fn param_groups(&self) -> Vec<Vec<String>> {
        let under = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("body.ResNet.{n}."))
                .collect::<Vec<_>>()
        };
        match &self.body {
            Body::ResNet(_) => vec![
                under(&["conv1", "bn1", "layer1", "layer2"]),
                under(&["layer3", "layer4"]),
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
            Body::Inception(_) => {
                let under = |names: &[&str]| -> Vec<String> {
                    names
                        .iter()
                        .map(|n| format!("body.Inception.{n}."))
                        .collect()
                };
                vec![
                    under(&[
                        "Conv2d_1a_3x3",
                        "Conv2d_2a_3x3",
                        "Conv2d_2b_3x3",
                        "Conv2d_3b_1x1",
                        "Conv2d_4a_3x3",
                        "Mixed_5b",
                        "Mixed_5c",
                        "Mixed_5d",
                    ]),
                    under(&[
                        "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a",
                        "Mixed_7b", "Mixed_7c",
                    ]),
                    vec!["head.".into()],
                ]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_parse_and_print_back() {
        for name in [
            "resnet18",
            "resnet34",
            "resnet50",
            "efficientnet_lite0",
            "inception_v3",
        ] {
            assert_eq!(name.parse::<Arch>().unwrap().to_string(), name);
        }
        assert!("vgg16".parse::<Arch>().is_err());
    }

    #[test]
    fn every_parameter_falls_in_exactly_one_group() {
        use burn::module::{ModuleVisitor, Param};
        #[derive(Default)]
        struct Paths(Vec<String>, Vec<String>);
        impl ModuleVisitor for Paths {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.0.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.0.pop();
            }
            fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
                self.1.push(format!("{}.", self.0.join(".")));
            }
        }
        let device = burn::tensor::Device::flex();
        for arch in [
            Arch::Resnet18,
            Arch::Resnet50,
            Arch::EfficientnetLite0,
            Arch::InceptionV3,
        ] {
            let m = ClassifierConfig::new(arch, 3)
                .with_width(8)
                .init(&device)
                .unwrap();
            let groups = m.param_groups();
            let mut paths = Paths::default();
            m.visit(&mut paths);
            for p in paths.1 {
                let n = groups
                    .iter()
                    .filter(|g| g.iter().any(|prefix| p.starts_with(prefix.as_str())))
                    .count();
                assert_eq!(n, 1, "{arch}: {p} is in {n} groups");
            }
        }
    }
}
