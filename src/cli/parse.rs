//! Value parsers shared by the subcommands: library enums by their serde names (so the library
//! needs no clap), with the names listed in `--help`.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use serde::de::DeserializeOwned;

/// A parser for the library enum `T` whose serde names are `names` (listed in `--help`).
pub fn named<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names)
        .try_map(|s| serde_json::from_value::<T>(serde_json::Value::String(s)))
}

/// The architectures `--arch` takes.
pub const ARCHS: &[&str] = &[
    "resnet18",
    "resnet34",
    "resnet50",
    "efficientnet_lite0",
    "inception_v3",
];

/// A parser for `--arch`, listing every architecture in `--help`.
pub fn arch() -> impl TypedValueParser<Value = fastvision::models::Arch> {
    PossibleValuesParser::new(ARCHS).try_map(|s| s.parse::<fastvision::models::Arch>())
}
