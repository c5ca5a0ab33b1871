//! Stratified, seeded train/validation split.

use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};

use super::Item;

/// Splits `items` into (train, valid) so that every class keeps `valid_pct` of its items for
/// validation (rounded, at least one when the class has two or more), reproducibly for a seed.
pub fn stratified_split(items: Vec<Item>, valid_pct: f64, seed: u64) -> (Vec<Item>, Vec<Item>) {
    let n_classes = items.iter().map(|i| i.label + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<Item>> = vec![Vec::new(); n_classes];
    for item in items {
        by_class[item.label].push(item);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for mut class_items in by_class {
        class_items.sort_by(|a, b| a.path.cmp(&b.path));
        class_items.shuffle(&mut rng);
        let n = class_items.len();
        let mut n_valid = (n as f64 * valid_pct).round() as usize;
        if n_valid == 0 && n >= 2 && valid_pct > 0.0 {
            n_valid = 1;
        }
        let rest = class_items.split_off(n_valid.min(n));
        valid.extend(class_items);
        train.extend(rest);
    }
    (train, valid)
}
