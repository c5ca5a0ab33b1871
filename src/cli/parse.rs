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

/// A whole number of at least `min` (`--bs`, `--epochs`, counts), with a message that says so.
pub fn at_least(min: usize) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync {
    move |s| match s.trim().parse::<usize>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(format!("expected a whole number of at least {min}")),
    }
}

/// An image side from `lo` to `hi` pixels (`--size`, `--sizes`).
pub fn between(lo: u32, hi: u32) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync {
    move |s| match s.trim().parse::<u32>() {
        Ok(v) if v < lo => Err(format!("image size {v} is too small (at least {lo})")),
        Ok(v) if v > hi => Err(format!("image size {v} is too large (at most {hi})")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!(
            "expected a whole number of pixels from {lo} to {hi}"
        )),
    }
}

/// A number strictly between 0 and 1 (`--valid-pct`).
pub fn open_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err("expected a number strictly between 0 and 1".into()),
    }
}

/// A number in (0, 1] (`--min-scale`).
pub fn fraction_upto_one(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err("expected a number above 0 and at most 1".into()),
    }
}

/// A probability in [0, 1) (dropout, thresholds).
pub fn probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err("expected a number from 0 up to (not including) 1".into()),
    }
}

/// A positive, finite number (`--lr`, `--extra-fraction`).
pub fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("expected a positive number".into()),
    }
}
