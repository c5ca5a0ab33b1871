//! Sizes, counts and numbers with no natural bound: each is bounded before anything is allocated
//! or written (a clear line and exit 1, never an abort), and a loss that stops being finite stops
//! training instead of saving a NaN model.

use crate::common;

use std::path::Path;

fn fastvision(cwd: &Path, args: &[&str]) -> (i32, String) {
    common::run_cli_within(cwd, args, 300)
}

#[test]
fn sizes_and_counts_are_bounded_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::tiny_dataset(&root.join("photos"), 2, 12, 4);
    let base = [
        "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--name", "r",
    ];
    let cases: &[(&[&str], &str)] = &[
        (&["--width", "3000"], "--width"),
        (
            &[
                "--width",
                "8",
                "--schedule",
                "sgdr",
                "--cycles",
                "2",
                "--cycle-len",
                "4611686018427387904",
                "--cycle-mult",
                "3",
            ],
            "epochs",
        ),
        (
            &["--width", "8", "--schedule", "sgdr", "--cycles", "64"],
            "epochs",
        ),
        (
            &[
                "--width",
                "8",
                "--schedule",
                "sgdr",
                "--cycles",
                "40",
                "--cycle-mult",
                "10",
            ],
            "epochs",
        ),
    ];
    for (extra, expect) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let (code, out) = fastvision(root, &args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(common::last_line(&out).contains(expect), "{args:?}: {out}");
        assert!(!out.contains("panicked"), "{args:?}: {out}");
        assert!(
            !root.join("runs/r").exists(),
            "{args:?}: no run folder left"
        );
    }
    let (code, out) = fastvision(root, &["bench", "--bs", "100000", "--size", "2048"]);
    assert_eq!(code, 1, "{out}");
    assert!(common::last_line(&out).contains("GB"), "{out}");

    // A run's `config.json` asking for a head of 10^12 units: refused naming the file and field.
    let (code, out) = fastvision(
        root,
        &[
            "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
            "--name", "ok",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let config = root.join("runs/ok/config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["model"]["hidden"] = 1_000_000_000_000u64.into();
    std::fs::write(&config, json.to_string()).unwrap();
    let image = common::any_file(&common::any_file(&root.join("photos/valid")));
    let (code, out) = fastvision(root, &["predict", "runs/ok", image.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let line = common::last_line(&out);
    assert!(
        line.contains("config.json") && line.contains("hidden"),
        "{out}"
    );
}

#[test]
fn a_loss_that_is_not_finite_stops_training_and_nothing_nan_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::tiny_dataset(&root.join("photos"), 2, 12, 4);
    let base = [
        "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8", "--name",
        "r",
    ];
    for extra in [&["--lr", "1e30"][..], &["--mixup", "1e308"][..]] {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let (code, out) = fastvision(root, &args);
        assert_eq!(code, 1, "{args:?}: {out}");
        let line = common::last_line(&out);
        assert!(
            line.contains("diverged") || line.contains("--mixup"),
            "{args:?}: {out}"
        );
        assert!(!root.join("runs/r").exists(), "{args:?}: nothing kept");
    }

    // A model whose weights are NaN is refused, not asked for NaN probabilities.
    let (code, out) = fastvision(
        root,
        &[
            "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
            "--name", "ok",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let weights = root.join("runs/ok/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for b in &mut bytes[header..] {
        *b = 0xff;
    }
    std::fs::write(&weights, bytes).unwrap();
    let image = common::any_file(&common::any_file(&root.join("photos/valid")));
    for args in [
        &["predict", "runs/ok", image.to_str().unwrap()][..],
        &["evaluate", "runs/ok", "photos"][..],
    ] {
        let (code, out) = fastvision(root, args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(
            common::last_line(&out).contains("not finite"),
            "{args:?}: {out}"
        );
        assert!(!out.contains("NaN"), "{args:?}: {out}");
    }

    // One image per class: no validation split, said as such.
    let flat = root.join("one_each");
    for class in ["a", "b"] {
        std::fs::create_dir_all(flat.join(class)).unwrap();
        std::fs::copy(&image, flat.join(class).join("only.png")).unwrap();
    }
    let (code, out) = fastvision(
        root,
        &["train", "one_each", "--epochs", "1", "--width", "8"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        common::last_line(&out).contains("no validation images"),
        "{out}"
    );
}

#[test]
fn a_write_failing_before_the_first_checkpoint_leaves_nothing_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::tiny_dataset(&root.join("photos"), 2, 12, 4);
    // Files beyond 300 KB cannot be written (EFBIG, the signal ignored): the first checkpoint's
    // weights fail as on a full disk.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 300; exec {} train photos --epochs 2 --bs 8 --size 32 --width 8 --name r",
            env!("CARGO_BIN_EXE_fastvision")
        ))
        .current_dir(root)
        .env_remove("FASTVISION_DEVICE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("--resume"), "nothing to resume: {text}");
    assert!(!root.join("runs/r").exists(), "the name is free: {text}");
}

#[test]
fn a_tabular_runs_file_asking_for_a_huge_model_is_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut text = String::from("x,z,y\n");
    for i in 0..40 {
        text.push_str(&format!("{},{},{}\n", i as f64 * 0.1, (i * 7) % 5, i % 2));
    }
    std::fs::write(root.join("t.csv"), &text).unwrap();
    let (code, out) = fastvision(
        root,
        &[
            "tabular", "train", "t.csv", "--target", "y", "--epochs", "1", "--bs", "16", "--name",
            "t",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let file = root.join("runs/t/tabular.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    json["model"]["layers"] = serde_json::json!([1_000_000_000_000u64, 1_000_000_000_000u64]);
    std::fs::write(&file, json.to_string()).unwrap();
    let (code, out) = fastvision(root, &["tabular", "predict", "runs/t", "t.csv"]);
    assert_eq!(code, 1, "{out}");
    let line = common::last_line(&out);
    assert!(
        line.contains("tabular.json") && line.contains("GB"),
        "{out}"
    );
    assert!(
        !out.contains("panicked") && !out.contains("memory allocation"),
        "{out}"
    );
}
