//! Hyper-parameter trials: runs that differ from one base configuration by a few named
//! settings (`lr`, `epochs`, `arch`, `mixup`, …), planned as the members of an ensemble folder
//! so that they train, resume and report as members do (one at a time here, or one task each
//! on a cluster), compared on one validation split, and combinable afterwards.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::data::sample::Sampling;
use crate::error::{Error, Result};
use crate::vision::TrainConfig;

use super::train::PlannedMember;

/// One trial: the settings it changes from the base, by their [`TrainConfig`] names.
pub type Trial = Map<String, Value>;

/// Settings every trial shares with the base: they decide the validation split (or the data
/// itself), and trials are only comparable on one split.
pub const FIXED: [&str; 6] = [
    "data",
    "valid_pct",
    "split_seed",
    "sampling",
    "extra_data",
    "extra_fraction",
];

/// One planned member per trial: `base` with the trial's settings, trained on the whole
/// training split and judged on `base`'s validation split. An unknown setting, a value of the
/// wrong type or a setting that would change the split is an error naming the trial.
pub fn plan(base: &TrainConfig, trials: &[Trial]) -> Result<Vec<PlannedMember>> {
    if trials.is_empty() {
        return Err(Error::Config("`trials`: at least one trial".into()));
    }
    let Value::Object(fields) = to_value(base)? else {
        return Err(Error::Config(
            "a training configuration is an object".into(),
        ));
    };
    trials
        .iter()
        .enumerate()
        .map(|(i, trial)| {
            let mut merged = fields.clone();
            for (key, value) in trial {
                if FIXED.contains(&key.as_str()) {
                    return Err(Error::Config(format!(
                        "trial {}: `{key}` is the same for every trial (they are compared on one validation split)",
                        i + 1
                    )));
                }
                if !merged.contains_key(key) {
                    return Err(Error::Config(format!(
                        "trial {}: unknown setting `{key}`",
                        i + 1
                    )));
                }
                merged.insert(key.clone(), setting(key, value));
                // Read after each setting, so that a value of the wrong type is named.
                serde_json::from_value::<TrainConfig>(Value::Object(merged.clone()))
                    .map_err(|e| Error::Config(format!("trial {}: `{key}`: {e}", i + 1)))?;
            }
            let config: TrainConfig = serde_json::from_value(Value::Object(merged))
                .map_err(|e| Error::Config(format!("trial {}: {e}", i + 1)))?;
            config.validate().map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("trial {}: {m}", i + 1)),
                e => e,
            })?;
            Ok(PlannedMember {
                dir: PathBuf::from("members").join(name(i, trial)),
                config: TrainConfig {
                    split_seed: Some(base.split_seed.unwrap_or(base.seed)),
                    sampling: Some(Sampling::All),
                    ..config
                },
                sampling: Sampling::All,
            })
        })
        .collect()
}

/// A trial's value as the configuration stores it: a learning rate given as a number is one
/// rate for every group, a pair `[lo, hi]` a range over the groups (fastai's `slice(lo, hi)`).
fn setting(key: &str, value: &Value) -> Value {
    match (key, value) {
        ("lr", Value::Number(_)) => serde_json::json!({ "Single": value }),
        ("lr", Value::Array(pair)) if pair.len() == 2 => serde_json::json!({ "Range": pair }),
        _ => value.clone(),
    }
}

/// `base` as a JSON value.
fn to_value(base: &TrainConfig) -> Result<Value> {
    serde_json::to_value(base).map_err(|e| Error::Config(format!("training configuration: {e}")))
}

/// The folder name of trial `i` (from 0): its number and its settings, by name
/// (`03-trial-epochs-8-lr-0.003`), kept to letters, digits, dots and dashes.
fn name(i: usize, trial: &Trial) -> String {
    let mut name = format!("{i:02}-trial");
    for (key, value) in trial {
        let value = match value {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        name.push('-');
        name.push_str(key);
        name.push('-');
        name.push_str(&value);
    }
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(80)
        .collect();
    clean.trim_end_matches(['-', '.']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trial(v: Value) -> Trial {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn each_trial_changes_only_its_settings() {
        let base = TrainConfig::default();
        let planned = plan(
            &base,
            &[
                trial(json!({"lr": 0.003})),
                trial(json!({"epochs": 8, "arch": "resnet34"})),
                trial(json!({"lr": [1e-4, 1e-2], "mixup": 0.4})),
            ],
        )
        .unwrap();
        assert_eq!(planned.len(), 3);
        assert_eq!(planned[2].config.lr, crate::learner::Lrs::Range(1e-4, 1e-2));
        assert_eq!(planned[2].config.mixup, Some(0.4));
        assert_eq!(planned[0].config.lr, crate::learner::Lrs::Single(0.003));
        assert_eq!(planned[0].config.epochs, base.epochs);
        assert_eq!(planned[1].config.epochs, 8);
        assert_eq!(planned[1].config.arch, crate::models::Arch::Resnet34);
        assert_eq!(planned[1].config.lr, base.lr);
        assert_eq!(planned[0].dir, PathBuf::from("members/00-trial-lr-0.003"));
        assert_eq!(
            planned[1].dir,
            PathBuf::from("members/01-trial-arch-resnet34-epochs-8")
        );
        // Every trial is judged on the base's split.
        for m in &planned {
            assert_eq!(m.config.split_seed, Some(base.seed));
        }
    }

    #[test]
    fn unknown_fixed_or_mistyped_settings_name_their_trial() {
        let base = TrainConfig::default();
        let err = |t: Value| {
            plan(&base, &[trial(json!({})), trial(t)])
                .unwrap_err()
                .to_string()
        };
        let e = err(json!({"lrr": 0.1}));
        assert!(e.contains("trial 2") && e.contains("`lrr`"), "{e}");
        let e = err(json!({"valid_pct": 0.5}));
        assert!(e.contains("trial 2") && e.contains("`valid_pct`"), "{e}");
        let e = err(json!({"lr": 0.01, "epochs": "many"}));
        assert!(e.contains("trial 2") && e.contains("`epochs`"), "{e}");
        let e = err(json!({"epochs": 0}));
        assert!(e.contains("trial 2"), "{e}");
        assert!(plan(&base, &[]).is_err());
    }
}
