//! Models: torchvision-layout ResNets, fastai's head, and the classifier that joins them.

pub mod classifier;
pub mod efficientnet_lite;
pub mod gan;
pub mod head;
pub mod inception;
pub mod resnet;

pub use classifier::{Arch, Body, ClassifierConfig, ImageClassifier};
pub use efficientnet_lite::EfficientNetLite;
pub use head::{Head, HeadConfig};
pub use resnet::{ResNet, ResNetConfig};
