//! The architectures fastvision builds, and one table of what each needs to be trained and fed:
//! its names, the smallest input it takes, the input statistics its pretrained weights expect,
//! and the memory its training takes per pixel.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
    /// torchvision Inception-v3.
    #[serde(rename = "inception_v3")]
    InceptionV3,
}

/// What fastvision knows of an architecture, in one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchSpec {
    /// The architecture.
    pub arch: Arch,
    /// Its name (settings, files, messages), then the other spellings accepted.
    pub names: &'static [&'static str],
    /// ResNet depth (0 for other families).
    pub depth: usize,
    /// The smallest input side it takes.
    pub min_size: u32,
    /// Per-channel mean and standard deviation of the 0..1 inputs its pretrained weights expect.
    pub stats: ([f32; 3], [f32; 3]),
    /// Training memory on the CPU per image pixel at torchvision's width, in bytes (activations
    /// and their gradients; ResNet-18 at 224 px, batch 32: about 3 GB measured).
    pub train_bytes_per_pixel: f64,
    /// The body's parameters at torchvision's width (they grow with the square of the width).
    pub params: f64,
}

/// ImageNet statistics, as fastai's `imagenet_stats`.
const IMAGENET: ([f32; 3], [f32; 3]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);

/// Every architecture's row.
pub const ARCHS: [ArchSpec; 5] = [
    ArchSpec {
        arch: Arch::Resnet18,
        names: &["resnet18"],
        depth: 18,
        min_size: 16,
        stats: IMAGENET,
        train_bytes_per_pixel: 2_000.0,
        params: 11.2e6,
    },
    ArchSpec {
        arch: Arch::Resnet34,
        names: &["resnet34"],
        depth: 34,
        min_size: 16,
        stats: IMAGENET,
        train_bytes_per_pixel: 2_000.0,
        params: 21.3e6,
    },
    ArchSpec {
        arch: Arch::Resnet50,
        names: &["resnet50"],
        depth: 50,
        min_size: 16,
        stats: IMAGENET,
        train_bytes_per_pixel: 6_000.0,
        params: 23.5e6,
    },
    // Its TF weights expect (x − 127) / 128 on 0..255 pixels.
    ArchSpec {
        arch: Arch::EfficientnetLite0,
        names: &["efficientnet_lite0", "efficientnet-lite0"],
        depth: 0,
        min_size: 16,
        stats: ([127.0 / 255.0; 3], [128.0 / 255.0; 3]),
        train_bytes_per_pixel: 4_000.0,
        params: 3.4e6,
    },
    // torchvision's weights expect [-1, 1] (its `transform_input`).
    ArchSpec {
        arch: Arch::InceptionV3,
        names: &["inception_v3", "inception-v3"],
        depth: 0,
        min_size: super::inception::MIN_SIZE,
        stats: ([0.5; 3], [0.5; 3]),
        train_bytes_per_pixel: 5_000.0,
        params: 21.8e6,
    },
];

impl Arch {
    /// A rough upper bound of the memory training takes on the CPU, in bytes: activations and
    /// their gradients grow with the batch and the image area (ResNet-18 at 224 px, batch 32:
    /// about 3 GB measured; wider bodies more), plus the weights, their gradients and Adam's two
    /// moments (the weights grow with the square of the width).
    pub fn training_memory(self, width: usize, bs: usize, size: u32) -> f64 {
        let scale = width as f64 / 64.0;
        let per_pixel = self.spec().train_bytes_per_pixel * scale;
        let weights = 4.0 * 4.0 * (self.spec().params * scale * scale + 1e6);
        bs as f64 * f64::from(size) * f64::from(size) * per_pixel + weights
    }

    /// This architecture's row of [`ARCHS`].
    pub fn spec(self) -> &'static ArchSpec {
        // Every variant has a row (checked by a test).
        ARCHS.iter().find(|s| s.arch == self).unwrap_or(&ARCHS[0])
    }

    /// ResNet depth of this architecture (0 for other families).
    pub fn depth(self) -> usize {
        self.spec().depth
    }

    /// The smallest input side the architecture takes.
    pub fn min_size(self) -> u32 {
        self.spec().min_size
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec().names[0])
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.to_ascii_lowercase();
        ARCHS
            .iter()
            .find(|a| a.names.contains(&s.as_str()))
            .map(|a| a.arch)
            .ok_or_else(|| {
                let names: Vec<&str> = ARCHS.iter().map(|a| a.names[0]).collect();
                Error::Config(format!("unknown architecture {s:?} ({})", names.join(", ")))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_has_its_own_row_and_round_trips_its_names() {
        for (i, spec) in ARCHS.iter().enumerate() {
            assert_eq!(spec.arch.spec(), spec, "row {i}");
            for name in spec.names {
                assert_eq!(name.parse::<Arch>().unwrap(), spec.arch);
            }
            assert_eq!(spec.arch.to_string(), spec.names[0]);
            let json = serde_json::to_string(&spec.arch).unwrap();
            assert_eq!(json, format!("\"{}\"", spec.names[0]));
        }
        assert!("resnet99".parse::<Arch>().is_err());
    }
}
