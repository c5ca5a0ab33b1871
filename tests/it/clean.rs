//! Interpretation and method 1 from the command line: reports, flagged images, quarantine, undo.

use crate::common;

use std::path::Path;
use std::process::Command;

fn fastvision(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fastvision"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn interpret_writes_its_report_and_clean_quarantines_then_undoes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    common::tiny_dataset(&data, 3, 10, 4);
    let before = files_under(&data);
    let (ok, out, err) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--epochs", "2", "--bs", "8", "--width", "8", "--name", "r",
        ],
    );
    assert!(ok, "{out}{err}");

    let (ok, out, err) = fastvision(
        dir.path(),
        &["interpret", "runs/r", "--normalize", "--min", "1"],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("12 Valid images, accuracy") && out.contains("precision"),
        "{out}"
    );
    for f in [
        "interpret.json",
        "top_losses.png",
        "confusion.png",
        "report.html",
    ] {
        assert!(dir.path().join("runs/r").join(f).is_file(), "{f} written");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/r/interpret.json")).unwrap())
            .unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 12);
    assert_eq!(report["classes"].as_array().unwrap().len(), 3);
    let html = std::fs::read_to_string(dir.path().join("runs/r/report.html")).unwrap();
    assert!(
        html.contains("top_losses.png") && html.contains("precision"),
        "{html}"
    );

    // Threshold 0: every wrongly predicted training image is flagged.
    let (ok, csv, err) = fastvision(
        dir.path(),
        &[
            "clean",
            "runs/r",
            "photos",
            "--confident-wrong",
            "0",
            "--apply",
        ],
    );
    assert!(ok, "{csv}{err}");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(
        csv.starts_with("path,given,predicted,probability,loss\n"),
        "{csv}"
    );
    assert!(
        err.contains(&format!("{} of 30 training images", rows.len())),
        "{err}"
    );
    for row in &rows {
        let cols: Vec<&str> = row.split(',').collect();
        assert_ne!(
            cols[1], cols[2],
            "flagged images are predicted wrongly: {row}"
        );
    }
    let quarantine = data.join(".fastvision-quarantine");
    let journal = std::fs::read_to_string(quarantine.join("journal.jsonl")).unwrap_or_default();
    assert_eq!(journal.lines().count(), rows.len(), "every move journaled");
    assert_eq!(
        files_under(&data).len(),
        before.len() + usize::from(!rows.is_empty()),
        "files moved (plus the journal), none lost"
    );

    let (ok, out, err) = fastvision(dir.path(), &["clean", "--undo", "photos"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("{} files moved back", rows.len())),
        "{out}"
    );
    let after: Vec<String> = files_under(&data)
        .into_iter()
        .filter(|f| !f.starts_with(".fastvision-quarantine"))
        .collect();
    assert_eq!(after, before, "undo restores the dataset exactly");
}

#[test]
fn out_of_fold_judges_every_training_image_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    common::tiny_dataset(&data, 2, 8, 2);
    let (ok, out, err) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--epochs", "1", "--bs", "4", "--width", "8", "--name", "r",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = fastvision(
        dir.path(),
        &["clean", "runs/r", "--folds", "2", "--confident-wrong", "0"],
    );
    assert!(ok, "{out}{err}");
    assert!(err.contains("fold 2/2"), "{err}");
    assert!(
        out.starts_with("path,given,predicted,probability,loss\n"),
        "stdout is the CSV alone: {out}"
    );
    assert!(
        err.contains("of 16 training images") && err.contains("out-of-fold, 2 folds"),
        "{err}"
    );
    assert!(
        !data.join(".fastvision-quarantine").exists(),
        "listing moves nothing"
    );
}
