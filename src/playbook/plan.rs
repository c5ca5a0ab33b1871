//! The playbook's plan: from the budget and the speeds measured on this machine, how many
//! epochs the main model gets, whether confusing images are judged out of fold, how many
//! ensemble members fit — each step with its time estimate, so the whole fits the budget.

use serde::{Deserialize, Serialize};

pub use super::thresholds::*;
use crate::models::Arch;
use crate::run::most_epochs;
pub use crate::run::plan::{length_text, split_length};

/// What this machine was measured to do on this data, for planning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Speeds {
    /// Seconds to train on one image at the final size (forward, backward, step).
    pub train_s_per_image: f64,
    /// Seconds to predict one image at the final size.
    pub infer_s_per_image: f64,
    /// Fixed seconds per epoch (loader start, checkpoint).
    pub epoch_overhead_s: f64,
    /// Fixed seconds per training run (building the model, the run folder's outputs).
    pub run_overhead_s: f64,
}

impl Speeds {
    /// The speeds at image side `size` from those measured at `measured` px, scaled by the area.
    pub fn at_size(&self, measured: u32, size: u32) -> Self {
        let scale = (f64::from(size) / f64::from(measured.max(1))).powi(2);
        Self {
            train_s_per_image: self.train_s_per_image * scale,
            infer_s_per_image: self.infer_s_per_image * scale,
            ..*self
        }
    }
}

/// The data the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DataSize {
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub valid: usize,
    /// Final image side.
    pub size: u32,
}

/// What the user asked for beyond the data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Wishes {
    /// The whole budget, seconds.
    pub budget_s: f64,
    /// Seconds already spent measuring (bench and LR range test).
    pub spent_s: f64,
    /// Retrain without the confusing images (journaled, undoable).
    pub drop_confusing: bool,
    /// Runs that can train at once (Ray workers): with more than one, ensemble members train
    /// beside the main model, one per further worker.
    #[serde(default = "one")]
    pub workers: usize,
}

/// One worker: the playbook's steps in turn.
fn one() -> usize {
    1
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// The main model: progressive resizing with one-cycle over `epochs` (`sizes` from small to
    /// final), MixUp when `mixup`.
    Train {
        /// Image sides, smallest first.
        sizes: Vec<u32>,
        /// Epochs in all.
        epochs: usize,
        /// MixUp on.
        mixup: bool,
        /// Share of the last epoch trained, when the budget ends the model part-way through it.
        #[serde(default)]
        last_epoch_pct: Option<f64>,
    },
    /// Confusing training images: out of fold with `folds` models of `epochs` each, or judged by
    /// the main model itself (`folds` 0).
    Confusing {
        /// Folds (0: in-sample).
        folds: usize,
        /// Epochs of each fold's model.
        epochs: usize,
    },
    /// The main recipe again without the confusing images.
    Retrain {
        /// Epochs.
        epochs: usize,
        /// Share of the last epoch trained, as the main model's.
        #[serde(default)]
        last_epoch_pct: Option<f64>,
    },
    /// Test-time augmentation on the validation images.
    Tta,
    /// An ensemble member: another architecture, seed or size.
    Member {
        /// Architecture.
        arch: Arch,
        /// Seed.
        seed: u64,
        /// Image side.
        size: u32,
        /// Epochs.
        epochs: usize,
    },
    /// Greedy selection of the ensemble and the final model.
    Ensemble,
}

/// A step with its estimated time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The step.
    pub step: Step,
    /// Estimated seconds.
    pub estimate_s: f64,
    /// Trains on another worker beside the main model's steps, so its time is not added to the
    /// plan's.
    #[serde(default)]
    pub beside: bool,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The data planned for.
    pub data: DataSize,
    /// The speeds planned with.
    pub speeds: Speeds,
    /// The budget and what measuring cost.
    pub wishes: Wishes,
    /// The main architecture.
    pub arch: Arch,
    /// Learning rate found by the range test.
    pub lr: f64,
    /// Whether the main model starts from pretrained weights.
    pub pretrained: Option<String>,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// The estimated seconds of the steps in turn (not those beside them) plus what measuring
    /// cost.
    pub fn estimate_s(&self) -> f64 {
        self.wishes.spent_s
            + self
                .steps
                .iter()
                .filter(|s| !s.beside)
                .map(|s| s.estimate_s)
                .sum::<f64>()
    }
}

/// Seconds of one training run of `epochs` over `sizes` (the progressive stages share the
/// epochs; a stage at side s costs (s/size)² of one at the final size).
pub fn train_estimate(d: &DataSize, sp: &Speeds, sizes: &[u32], epochs: usize) -> f64 {
    let per_stage = crate::run::split_epochs(epochs, sizes.len());
    let one = |s: u32| {
        let a = (f64::from(s) / f64::from(d.size.max(1))).powi(2);
        d.train as f64 * sp.train_s_per_image * a
            + d.valid as f64 * sp.infer_s_per_image * a
            + sp.epoch_overhead_s
    };
    let sizes: Vec<u32> = if sizes.is_empty() {
        vec![d.size]
    } else {
        sizes.to_vec()
    };
    sp.run_overhead_s
        + sizes
            .iter()
            .zip(per_stage)
            .map(|(&s, e)| e as f64 * one(s))
            .sum::<f64>()
}

/// Seconds of a main-recipe run `length` epochs long, the last of them possibly a part of one
/// (it trains that share of the images and validates all of them).
pub fn main_estimate(d: &DataSize, sp: &Speeds, length: f64) -> f64 {
    let (epochs, pct) = split_length(length);
    let untrained = 1.0 - pct.unwrap_or(1.0);
    train_estimate(d, sp, &sizes_for(d.size, epochs), epochs)
        - untrained * d.train as f64 * sp.train_s_per_image
}

/// The longest run up to `max` epochs whose `seconds(length)` fits `room` (at least one epoch):
/// the most whole epochs, then the share of one more that still fits, when it is
/// [`MIN_LAST_EPOCH_PCT`] or more. One-cycle anneals over whatever length it is given, so a
/// budget is filled rather than rounded down to whole epochs.
pub fn longest_fit(max: f64, room: f64, seconds: impl Fn(f64) -> f64) -> f64 {
    let max = max.max(1.0);
    let whole = most_epochs(1, max.floor() as usize, room, |e| seconds(e as f64)) as f64;
    let most = (max - whole).min(1.0);
    if most <= 0.0 || seconds(whole) > room {
        return whole;
    }
    if seconds(whole + most) <= room {
        return whole + most;
    }
    let (mut lo, mut hi) = (0.0, most);
    for _ in 0..30 {
        let mid = 0.5 * (lo + hi);
        if seconds(whole + mid) <= room {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // Whole hundredths of an epoch, rounded down: plans read simply and stay within `room`.
    let part = (lo * 100.0).floor() / 100.0;
    if part >= MIN_LAST_EPOCH_PCT {
        whole + part
    } else {
        whole
    }
}

/// The sizes of a main-recipe run of `epochs`: progressive toward `size` (a quarter of it, at
/// least 16 px, doubling) from [`PROGRESSIVE_FROM_EPOCHS`], else `size` alone.
pub fn sizes_for(size: u32, epochs: usize) -> Vec<u32> {
    if epochs >= PROGRESSIVE_FROM_EPOCHS {
        crate::run::EpochPlan::progressive(size, 3).sizes
    } else {
        vec![size]
    }
}

impl Step {
    /// The main model at `size` px, `length` epochs long (the last possibly a part of one):
    /// progressive sizes and MixUp where that many epochs earn them ([`PROGRESSIVE_FROM_EPOCHS`],
    /// [`MIXUP_FROM_EPOCHS`]).
    pub fn main(size: u32, length: f64) -> Self {
        let (epochs, last_epoch_pct) = split_length(length);
        Step::Train {
            sizes: sizes_for(size, epochs),
            epochs,
            mixup: epochs >= MIXUP_FROM_EPOCHS,
            last_epoch_pct,
        }
    }

    /// The epochs this step trains, a last partial one counted as its share (0 for steps that
    /// train no model).
    pub fn length(&self) -> f64 {
        match self {
            Step::Train {
                epochs,
                last_epoch_pct,
                ..
            }
            | Step::Retrain {
                epochs,
                last_epoch_pct,
            } => *epochs as f64 - 1.0 + last_epoch_pct.unwrap_or(1.0),
            Step::Confusing { epochs, .. } | Step::Member { epochs, .. } => *epochs as f64,
            Step::Tta | Step::Ensemble => 0.0,
        }
    }

    /// This step as it runs `length` epochs instead of its planned ones (to fit the budget): a
    /// shorter main model may also train at fewer sizes or without MixUp; the other models train
    /// whole epochs (`length` rounded down).
    pub fn with_length(&self, length: f64) -> Self {
        let epochs = length.floor().max(1.0) as usize;
        match self {
            Step::Train { sizes, .. } => {
                Step::main(sizes.iter().copied().max().unwrap_or_default(), length)
            }
            Step::Confusing { folds, .. } => Step::Confusing {
                folds: *folds,
                epochs,
            },
            Step::Retrain { .. } => {
                let (epochs, last_epoch_pct) = split_length(length);
                Step::Retrain {
                    epochs,
                    last_epoch_pct,
                }
            }
            Step::Member {
                arch, seed, size, ..
            } => Step::Member {
                arch: *arch,
                seed: *seed,
                size: *size,
                epochs,
            },
            Step::Tta | Step::Ensemble => self.clone(),
        }
    }
}

/// Plans the playbook so that its estimate fits `wishes.budget_s`, spending where it pays:
/// the main model first, with all the time there is up to [`MEMBERS_FROM_EPOCHS`] epochs (then
/// test-time augmentation, which costs seconds); ensemble members only when the time buys the
/// main model and at least one member that many epochs each (at most [`MAX_EPOCHS`] each,
/// [`MAX_MEMBERS`] members). Confusing
/// images are judged by the main model, or out of fold (3 folds, half the epochs) when they are
/// to be dropped and that costs under a fifth of the time left. Members are the main recipe
/// with other seeds at the same size, so the pace measured at that size holds for them. With
/// more than one worker, one member per further worker (at most [`MAX_MEMBERS`]) trains beside
/// the main model, as many epochs as it, for no time of the budget but the ensemble step's
/// (unless the confusing images are dropped: members then train on the cleaned data, in turn).
pub fn plan(
    d: DataSize,
    sp: Speeds,
    wishes: Wishes,
    arch: Arch,
    lr: f64,
    pretrained: Option<String>,
) -> Plan {
    let left = (wishes.budget_s - wishes.spent_s).max(0.0);
    let tta_s = 5.0 * d.valid as f64 * sp.infer_s_per_image + 2.0;
    // Judging the confusing images: in sample, or out of fold within a fifth of what is left.
    let judging_s = if wishes.drop_confusing {
        0.2 * left
    } else {
        d.train as f64 * sp.infer_s_per_image + 1.0
    };
    let ensemble_s =
        |models: usize| 2.0 * d.valid as f64 * sp.infer_s_per_image * models as f64 + 2.0;
    let runs = if wishes.drop_confusing { 2.0 } else { 1.0 };
    let cost = |e: usize| train_estimate(&d, &sp, &sizes_for(d.size, e), e);
    let member_cost = |e: usize| train_estimate(&d, &sp, &[d.size], e);
    // One model with all the room (a retrain without the confusing images runs it twice).
    let room = left - tta_s - judging_s - ensemble_s(1);
    let alone = most_epochs(1, MAX_EPOCHS, room, |e| runs * cost(e));
    // Members once the main model and each member get MEMBERS_FROM_EPOCHS epochs or more.
    let shared = (1..=MAX_MEMBERS).rev().find_map(|k| {
        let room = left - tta_s - judging_s - ensemble_s(k + 1);
        let e = most_epochs(1, MAX_EPOCHS, room, |e| {
            runs * cost(e) + k as f64 * member_cost(e)
        });
        let fits = runs * cost(e) + k as f64 * member_cost(e) <= room;
        (fits && e >= MEMBERS_FROM_EPOCHS && alone >= MEMBERS_FROM_EPOCHS).then_some((e, k))
    });
    // With more workers, members train beside the main model: as long as it, for no time. Not
    // when the confusing images are dropped: the members need the data as the retrain has it.
    let beside = if wishes.drop_confusing {
        0
    } else {
        wishes.workers.saturating_sub(1).min(MAX_MEMBERS)
    };
    let (epochs, n_members) = if beside > 0 {
        let room = left - tta_s - judging_s - ensemble_s(beside + 1);
        (most_epochs(1, MAX_EPOCHS, room, |e| runs * cost(e)), beside)
    } else {
        shared.unwrap_or((alone, 0))
    };
    // One model alone gets all its room, to a part of an epoch; members train whole epochs
    // beside or after it.
    let length = if n_members == 0 {
        longest_fit(MAX_EPOCHS as f64, room, |l| {
            runs * main_estimate(&d, &sp, l)
        })
    } else {
        epochs as f64
    };
    let mut steps = vec![PlannedStep {
        estimate_s: main_estimate(&d, &sp, length),
        step: Step::main(d.size, length),
        beside: false,
    }];
    steps.push(confusing_step(&d, &sp, epochs, left, wishes.drop_confusing));
    if wishes.drop_confusing {
        let (epochs, last_epoch_pct) = split_length(length);
        steps.push(PlannedStep {
            step: Step::Retrain {
                epochs,
                last_epoch_pct,
            },
            estimate_s: main_estimate(&d, &sp, length),
            beside: false,
        });
    }
    steps.push(PlannedStep {
        step: Step::Tta,
        estimate_s: tta_s,
        beside: false,
    });
    steps.extend((0..n_members).map(|i| PlannedStep {
        step: Step::Member {
            arch,
            seed: 100 + i as u64,
            size: d.size,
            epochs,
        },
        estimate_s: member_cost(epochs),
        beside: beside > 0,
    }));
    steps.push(PlannedStep {
        step: Step::Ensemble,
        estimate_s: ensemble_s(n_members + 1),
        beside: false,
    });
    Plan {
        data: d,
        speeds: sp,
        wishes,
        arch,
        lr,
        pretrained,
        steps,
    }
}

/// Confusing images: out of fold (3 folds, each on 2/3 of the images for half the main
/// model's `epochs`) when they are to be dropped (`drop`) and that costs under a fifth of
/// `left`, else judged by the main model (a list to review costs seconds, not models).
fn confusing_step(d: &DataSize, sp: &Speeds, epochs: usize, left: f64, drop: bool) -> PlannedStep {
    let fold_epochs = (epochs / 2).max(1);
    let fold_data = DataSize {
        train: d.train * 2 / 3,
        valid: d.train / 3,
        ..*d
    };
    let oof_s = 3.0 * train_estimate(&fold_data, sp, &sizes_for(d.size, fold_epochs), fold_epochs);
    if drop && oof_s <= 0.2 * left {
        PlannedStep {
            step: Step::Confusing {
                folds: 3,
                epochs: fold_epochs,
            },
            estimate_s: oof_s,
            beside: false,
        }
    } else {
        PlannedStep {
            step: Step::Confusing {
                folds: 0,
                epochs: 0,
            },
            estimate_s: d.train as f64 * sp.infer_s_per_image + 1.0,
            beside: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The main model's epochs in `p` (its first step).
    fn main_epochs(p: &Plan) -> usize {
        match p.steps.first().map(|s| &s.step) {
            Some(Step::Train { epochs, .. }) => *epochs,
            _ => 0,
        }
    }

    fn speeds() -> Speeds {
        Speeds {
            train_s_per_image: 0.003,
            infer_s_per_image: 0.001,
            epoch_overhead_s: 0.3,
            run_overhead_s: 1.0,
        }
    }

    #[test]
    fn the_plan_fits_the_budget_from_minutes_to_an_hour() {
        let d = DataSize {
            train: 2000,
            valid: 1000,
            size: 28,
        };
        for minutes in [2.0, 5.0, 10.0, 20.0, 60.0] {
            for drop in [false, true] {
                let w = Wishes {
                    budget_s: minutes * 60.0,
                    spent_s: 20.0,
                    drop_confusing: drop,
                    workers: 1,
                };
                let p = plan(d, speeds(), w, Arch::Resnet18, 1e-3, None);
                assert!(
                    p.estimate_s() <= w.budget_s,
                    "{minutes} min: {} s planned",
                    p.estimate_s()
                );
                assert!(
                    p.estimate_s() >= 0.5 * w.budget_s || minutes >= 60.0,
                    "{minutes} min: the budget is used ({} s)",
                    p.estimate_s()
                );
                assert!(matches!(
                    p.steps.first().map(|s| &s.step),
                    Some(Step::Train { .. })
                ));
                assert!(matches!(
                    p.steps.last().map(|s| &s.step),
                    Some(Step::Ensemble)
                ));
                let main = main_epochs(&p);
                for s in &p.steps {
                    if let Step::Member { epochs, .. } = s.step {
                        assert!(epochs * 4 >= main, "{minutes} min: a {epochs}-epoch member");
                    }
                }
            }
        }
    }

    #[test]
    fn more_budget_buys_more_epochs_members_and_out_of_fold_judging() {
        let d = DataSize {
            train: 2000,
            valid: 1000,
            size: 28,
        };
        let w = |m: f64| Wishes {
            budget_s: m * 60.0,
            spent_s: 20.0,
            drop_confusing: false,
            workers: 1,
        };
        let small = plan(d, speeds(), w(3.0), Arch::Resnet18, 1e-3, None);
        let big = plan(d, speeds(), w(30.0), Arch::Resnet18, 1e-3, None);
        let members = |p: &Plan| {
            p.steps
                .iter()
                .filter(|s| matches!(s.step, Step::Member { .. }))
                .count()
        };
        assert!(main_epochs(&big) > main_epochs(&small));
        for p in [&small, &big] {
            let Step::Train { sizes, epochs, .. } = &p.steps[0].step else {
                panic!("the plan starts with the main model");
            };
            assert_eq!(
                sizes.len() > 1,
                *epochs >= PROGRESSIVE_FROM_EPOCHS,
                "{epochs} epochs at {sizes:?}"
            );
        }
        assert!(members(&big) >= members(&small));
        assert!(matches!(
            big.steps[1].step,
            Step::Confusing { folds: 0, .. }
        ));
        let dropping = Wishes {
            drop_confusing: true,
            ..w(120.0)
        };
        let big = plan(d, speeds(), dropping, Arch::Resnet18, 1e-3, None);
        assert!(matches!(
            big.steps[1].step,
            Step::Confusing { folds: 3, .. }
        ));
    }

    #[test]
    fn with_more_workers_members_train_beside_the_main_model_for_no_time() {
        let d = DataSize {
            train: 8000,
            valid: 2000,
            size: 28,
        };
        let w = |workers: usize| Wishes {
            budget_s: 240.0,
            spent_s: 11.0,
            drop_confusing: false,
            workers,
        };
        let one = plan(d, speeds(), w(1), Arch::Resnet18, 1e-3, None);
        let main = |p: &Plan| match p.steps[0].step {
            Step::Train { epochs, .. } => epochs,
            _ => 0,
        };
        for (workers, members) in [(1, 0), (2, 1), (3, 2), (16, MAX_MEMBERS)] {
            let p = plan(d, speeds(), w(workers), Arch::Resnet18, 1e-3, None);
            let beside: Vec<&PlannedStep> = p.steps.iter().filter(|s| s.beside).collect();
            assert_eq!(beside.len(), members, "{workers} workers");
            for s in &beside {
                let Step::Member { epochs, .. } = s.step else {
                    panic!("only members train beside: {:?}", s.step);
                };
                assert_eq!(epochs, main(&p), "as long as the main model");
                assert!(s.estimate_s <= p.estimate_s());
            }
            // The main model loses only the ensemble step's seconds to them.
            assert!(main(&p) + 1 >= main(&one), "{} vs {}", main(&p), main(&one));
            assert!(p.estimate_s() <= 240.0, "{} s", p.estimate_s());
            assert!(matches!(p.steps.last().unwrap().step, Step::Ensemble));
        }
        let dropping = Wishes {
            drop_confusing: true,
            ..w(3)
        };
        let p = plan(d, speeds(), dropping, Arch::Resnet18, 1e-3, None);
        // Members wait for the cleaned data.
        assert!(p.steps.iter().all(|s| !s.beside));
    }

    #[test]
    fn a_length_splits_into_whole_epochs_and_a_part_and_fills_its_room() {
        assert_eq!(split_length(3.0), (3, None));
        assert_eq!(split_length(1.25), (2, Some(0.25)));
        assert_eq!(split_length(0.4), (1, Some(0.4)));
        assert_eq!(split_length(2.001), (2, None), "to hundredths");
        assert_eq!(split_length(2.29), (3, Some(0.29)));
        assert_eq!(split_length(0.0), (0, None));
        assert_eq!(split_length(f64::NAN), (0, None));
        assert_eq!(length_text(2.0), "2 epochs");
        assert_eq!(length_text(1.634), "1.63 epochs");
        // 10 s of run and 100 s an epoch, 90 of them training: 250 s hold 2 epochs (210 s) and
        // a third of a third (its 10 s of validation and 0.33 × 90 s of training).
        let secs = |l: f64| {
            let (e, p) = split_length(l);
            10.0 + e as f64 * 100.0 - (1.0 - p.unwrap_or(1.0)) * 90.0
        };
        let l = longest_fit(80.0, 250.0, secs);
        assert!((l - 2.33).abs() < 1e-9, "{l}");
        assert!(secs(l) <= 250.0);
        assert_eq!(
            longest_fit(80.0, 215.0, secs),
            2.0,
            "under a tenth: whole epochs"
        );
        assert_eq!(
            longest_fit(2.3, 1000.0, secs),
            2.3,
            "never past the planned length"
        );
        assert_eq!(longest_fit(80.0, 5.0, secs), 1.0, "at least one epoch");
    }

    #[test]
    fn a_budget_of_few_long_epochs_is_filled_to_a_part_of_one() {
        // Full Fashion-MNIST on 2 cores: an epoch about 95 s, a budget of 4 minutes.
        let d = DataSize {
            train: 60_000,
            valid: 10_000,
            size: 28,
        };
        let sp = Speeds {
            train_s_per_image: 0.0015,
            infer_s_per_image: 0.0004,
            epoch_overhead_s: 0.5,
            run_overhead_s: 3.0,
        };
        for budget_s in [240.0, 600.0] {
            let w = Wishes {
                budget_s,
                spent_s: 15.0,
                drop_confusing: false,
                workers: 1,
            };
            let p = plan(d, sp, w, Arch::Resnet18, 1e-3, None);
            let length = p.steps[0].step.length();
            assert!(
                p.estimate_s() <= budget_s && p.estimate_s() >= 0.97 * budget_s,
                "{budget_s} s: {} s planned for {length} epochs",
                p.estimate_s()
            );
            assert!(length.fract() > 0.0, "{length} epochs");
        }
    }

    #[test]
    fn the_main_model_comes_first_and_members_only_past_its_knee() {
        let d = DataSize {
            train: 8000,
            valid: 2000,
            size: 28,
        };
        let sp = Speeds {
            train_s_per_image: 0.0017,
            infer_s_per_image: 0.0003,
            epoch_overhead_s: 0.3,
            run_overhead_s: 2.0,
        };
        let at = |minutes: f64| {
            let w = Wishes {
                budget_s: minutes * 60.0,
                spent_s: 11.0,
                drop_confusing: false,
                workers: 1,
            };
            let p = plan(d, sp, w, Arch::Resnet18, 1e-3, None);
            let main = match &p.steps[0].step {
                Step::Train { epochs, .. } => *epochs,
                _ => 0,
            };
            let members: Vec<usize> = p
                .steps
                .iter()
                .filter_map(|s| match s.step {
                    Step::Member { epochs, size, .. } => {
                        assert_eq!(size, d.size, "members at the measured size");
                        Some(epochs)
                    }
                    _ => None,
                })
                .collect();
            (main, members, p.estimate_s(), w.budget_s)
        };
        // 4 minutes: one model with (almost) all of it, as one long `train` would.
        let (main, members, est, budget) = at(4.0);
        assert!(
            members.is_empty() && main >= 13,
            "{main} epochs, members {members:?}"
        );
        assert!(
            est <= budget && est >= 0.9 * budget,
            "{est} s of {budget} s"
        );
        // 20 minutes and an hour: members, each as long as the main model, past
        // MEMBERS_FROM_EPOCHS (at an hour, the caps on epochs and members leave time over).
        for minutes in [20.0, 60.0] {
            let (main, members, est, budget) = at(minutes);
            assert!(!members.is_empty(), "{minutes} min: {main} epochs alone");
            assert!(
                members
                    .iter()
                    .all(|&e| e == main && e >= MEMBERS_FROM_EPOCHS)
            );
            assert!(
                est <= budget && est >= 0.7 * budget,
                "{est} s of {budget} s"
            );
        }
    }
}
