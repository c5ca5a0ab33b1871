//! Helpers shared by the integration tests: small datasets made from the bundled demo.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository's demo dataset.
pub fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo")
}

/// Copies `n_train`/`n_valid` images of each of the first `n_classes` demo classes into
/// `dst/train/<class>/` and `dst/valid/<class>/`.
pub fn tiny_dataset(dst: &Path, n_classes: usize, n_train: usize, n_valid: usize) {
    for (split, n) in [("train", n_train), ("valid", n_valid)] {
        let mut classes: Vec<_> = std::fs::read_dir(demo().join(split))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        classes.sort();
        for class in classes.into_iter().take(n_classes) {
            let out = dst.join(split).join(class.file_name().unwrap());
            std::fs::create_dir_all(&out).unwrap();
            let mut files: Vec<_> = std::fs::read_dir(&class)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files.into_iter().take(n) {
                std::fs::copy(&f, out.join(f.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// Asserts `got` equals PyTorch's `want` within `rel` of the largest reference magnitude.
pub fn assert_matches_pytorch(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: output sizes differ");
    let scale = want.iter().fold(0.0f32, |a, b| a.max(b.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= rel * scale,
        "{what}: max difference {worst} vs scale {scale}"
    );
}
