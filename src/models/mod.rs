//! Models: torchvision-layout ResNets, fastai's head, and the classifier that joins them.

pub mod classifier;
pub mod head;
pub mod resnet;

pub use classifier::{Arch, ClassifierConfig, ImageClassifier};
pub use head::{Head, HeadConfig};
pub use resnet::{ResNet, ResNetConfig};
