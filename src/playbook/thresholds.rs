//! Where each of the playbook's techniques pays, as measured: the epochs from which MixUp,
//! progressive resizing and ensemble members are planned, the caps on epochs and members, and
//! the lowest learning rate; each with the figures behind it.

/// Epochs from which MixUp pays: fastai's advice is long training (80 epochs and more), past
/// any run the playbook makes. Short runs lose to augmentation (full Fashion-MNIST, 2 epochs:
/// flips alone cost 0.5–0.8 point); on the demo a 40-epoch main model with MixUp and
/// progressive resizing reached 86.0 %, a plain 41-epoch `train` 87.2 %.
pub const MIXUP_FROM_EPOCHS: usize = MAX_EPOCHS + 1;
/// Epochs from which the main model trains with progressive resizing; below, it trains as
/// `train` does. Its small-size epochs cost more accuracy than they save time in the runs
/// measured (full Fashion-MNIST, 5 epochs: 90.2 % with 3 at 16 px, 91.2 % at 28 px throughout;
/// the demo's 40-epoch figure above), so no run within the playbook's cap uses it.
pub const PROGRESSIVE_FROM_EPOCHS: usize = MAX_EPOCHS + 1;
/// Epochs the main model and each member get before an ensemble is planned: one-cycle wants all
/// its epochs in one run, and a model short of its learning curve's knee gains more from epochs
/// than from a partner. On the demo at 4 minutes, a 20-epoch main model and a 20-epoch member
/// (85.9 % with TTA) lost 1.3 points to one 41-epoch `train` (87.2 %); on an unseen 8 000-image
/// set, 8 → 14 epochs gained 0.6 point.
pub const MEMBERS_FROM_EPOCHS: usize = 40;
/// Most epochs one model is given, however large the budget: room for twice
/// [`MEMBERS_FROM_EPOCHS`] before a second model pays, short of where the demo overfits (one
/// 180-epoch `train`: 86.7 %, one 44-epoch: 87.8 %).
pub const MAX_EPOCHS: usize = 80;
/// The lowest learning rate the playbook trains with: the LR finder's valley, but never below
/// fastai's default 1e-3 — from scratch the valley is cautious (4.8e-4 on the demo, 5.75e-4 on
/// an unseen 8 000-image set, where 6 epochs reached 86.25 % at the valley and 86.90 % at 1e-3).
pub const MIN_LR: f64 = 1e-3;
/// The least share of an epoch a plan adds to a model's whole epochs to fill its budget: less
/// is within the error of the pace it plans with (the 4-minute rows ran 217–248 s of 240).
/// Whole epochs had left full Fashion-MNIST's 4 minutes at 175 s; with a part, 1.96 epochs ran
/// 242 s and gained 0.44 point over one 2-epoch `train`.
pub const MIN_LAST_EPOCH_PCT: f64 = 0.1;
/// Most ensemble members besides the main model.
pub const MAX_MEMBERS: usize = 4;
