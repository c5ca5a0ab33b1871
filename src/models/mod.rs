//! Models: torchvision-layout ResNets, fastai's head, and the classifier that joins them.

pub mod arch;
pub mod classifier;
pub mod efficientnet_lite;
pub mod gan;
pub mod head;
pub mod inception;
pub mod resnet;

pub use arch::{ARCHS, Arch, ArchSpec};
pub use classifier::{Body, ClassifierConfig, ImageClassifier};
pub use efficientnet_lite::EfficientNetLite;
pub use head::{Head, HeadConfig};
pub use resnet::{ResNet, ResNetConfig};
