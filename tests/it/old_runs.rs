//! Run folders written by earlier versions keep working: their JSON files (train.json,
//! config.json, log.json, checkpoint/checkpoint.json, committed in tests/fixtures/old_run as the
//! previous layout wrote them for a 1-of-2-epoch run) resume, predict and evaluate.

use crate::common;

use std::path::Path;

fn fastvision(cwd: &Path, args: &[&str]) -> String {
    let (code, text) = common::run_cli(cwd, args);
    assert!(code == 0, "fastvision {args:?}: {text}");
    text
}

#[test]
fn a_run_folder_of_the_previous_layout_resumes_predicts_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("photos"), 2, 8, 4);
    // The weights and optimizer state come from this build (burn's formats); every file of
    // fastvision's own layout is replaced by the old one.
    fastvision(
        dir.path(),
        &[
            "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
            "--seed", "3", "--name", "old",
        ],
    );
    let run = dir.path().join("runs/old");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old_run");
    for f in [
        "train.json",
        "config.json",
        "log.json",
        "checkpoint/checkpoint.json",
    ] {
        std::fs::copy(fixture.join(f), run.join(f)).unwrap();
    }
    let out = fastvision(dir.path(), &["train", "--resume", "runs/old"]);
    assert!(out.contains("final:"), "{out}");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("log.json")).unwrap()).unwrap();
    assert_eq!(
        log["epochs"].as_array().unwrap().len(),
        2,
        "the second of two epochs was trained on resume"
    );
    let image = common::any_file(&dir.path().join("photos/valid/bag"));
    let out = fastvision(
        dir.path(),
        &["predict", "runs/old", image.to_str().unwrap(), "-k", "2"],
    );
    assert!(out.contains("bag") && out.contains("ankle-boot"), "{out}");
    let out = fastvision(dir.path(), &["evaluate", "runs/old", "photos"]);
    assert!(out.contains("8 images, accuracy"), "{out}");
}
