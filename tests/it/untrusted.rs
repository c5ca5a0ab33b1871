//! What a run reads that the user (or anyone) can change under it: special files named like
//! images or weights, paths inside a run's own files, data relabelled between a run and its
//! resume, folder layouts, and two writers on one folder. Each is refused at once with one line,
//! or read as meant; nothing blocks, nothing outside the run is touched.

use crate::common;

use std::path::{Path, PathBuf};

use fastvision::data::{ImageFolder, SplitConfig, skipped_report};

/// A finished tiny run `runs/NAME` trained on `root/photos` (2 classes).
fn tiny_run(root: &Path, name: &str) -> PathBuf {
    let (code, out) = common::run_cli_within(
        root,
        &[
            "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
            "--name", name,
        ],
        300,
    );
    assert_eq!(code, 0, "{out}");
    root.join("runs").join(name)
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

#[test]
fn special_files_named_like_images_or_weights_never_block() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::tiny_dataset(&root.join("photos"), 2, 12, 4);
    let class = common::any_file(&root.join("photos/train"));
    mkfifo(&class.join("x.png"));
    std::os::unix::fs::symlink("/dev/zero", class.join("z.png")).unwrap();
    // 3 GB of nothing (a sparse file): refused by its size, never read.
    std::fs::File::create(class.join("big.png"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let run = tiny_run(root, "r");
    let skipped = std::fs::read_to_string(run.join("skipped.txt")).unwrap();
    assert!(
        skipped
            .lines()
            .any(|l| l.contains("x.png") && l.contains("FIFO")),
        "{skipped}"
    );
    assert!(
        skipped
            .lines()
            .any(|l| l.contains("z.png") && l.contains("device")),
        "{skipped}"
    );
    assert!(
        skipped
            .lines()
            .any(|l| l.contains("big.png") && l.contains("larger than any image")),
        "{skipped}"
    );

    let fifo = class.join("x.png");
    let (code, out) =
        common::run_cli_within(root, &["predict", "runs/r", fifo.to_str().unwrap()], 60);
    assert_eq!(code, 1, "{out}");
    assert!(
        common::last_line(&out).contains("x.png") && out.contains("FIFO"),
        "{out}"
    );

    // A checkpoint naming a FIFO in its own folder: refused, not waited on.
    let ckpt = run.join("checkpoint");
    mkfifo(&ckpt.join("model-e9.bpk"));
    let state = ckpt.join("checkpoint.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["model_file"] = "model-e9.bpk".into();
    std::fs::write(&state, json.to_string()).unwrap();
    let (code, out) = common::run_cli_within(root, &["train", "--resume", "runs/r"], 120);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("model-e9.bpk") && out.contains("FIFO"),
        "{out}"
    );
}

#[test]
fn paths_in_a_runs_own_files_stay_inside_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::tiny_dataset(&root.join("photos"), 2, 12, 4);
    let run = tiny_run(root, "r");
    let other = root.join("other.bpk");
    std::fs::write(&other, b"the user's").unwrap();
    let state = run.join("checkpoint/checkpoint.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["model_file"] = "../../../other.bpk".into();
    std::fs::write(&state, json.to_string()).unwrap();
    let (code, out) = common::run_cli_within(root, &["train", "--resume", "runs/r"], 120);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("checkpoint.json") && out.contains("not a file name in the checkpoint folder"),
        "{out}"
    );
    assert!(
        !out.contains("Io(") && !out.contains("Validation("),
        "no Debug text: {out}"
    );
    assert_eq!(std::fs::read(&other).unwrap(), b"the user's");
}

#[test]
fn a_resume_on_relabelled_data_is_refused_with_both_class_lists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("photos");
    common::tiny_dataset(&data, 2, 12, 4);
    tiny_run(root, "r");
    let first = common::any_file(&data.join("train"));
    let mut names: Vec<String> = std::fs::read_dir(data.join("train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Renamed so that it sorts last: every label would change meaning.
    let renamed = "zzz-renamed";
    for split in ["train", "valid"] {
        let from = data.join(split).join(first.file_name().unwrap());
        std::fs::rename(&from, data.join(split).join(renamed)).unwrap();
    }
    let log_before = std::fs::read(root.join("runs/r/log.json")).unwrap();
    let (code, out) = common::run_cli_within(root, &["train", "--resume", "runs/r"], 120);
    assert_eq!(code, 1, "{out}");
    let line = common::last_line(&out);
    assert!(
        line.contains(&names.join(", ")) && line.contains(renamed),
        "both class lists named: {out}"
    );
    assert_eq!(
        std::fs::read(root.join("runs/r/log.json")).unwrap(),
        log_before,
        "nothing written"
    );
}

#[test]
fn folder_layouts_are_read_as_meant_and_skipped_names_stay_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A flat `<class>/` folder with a held-out `test/`: not a class.
    let flat = dir.path().join("flat");
    common::tiny_dataset(&dir.path().join("tmp"), 2, 6, 0);
    std::fs::rename(dir.path().join("tmp/train"), &flat).unwrap();
    let some = common::any_file(&common::any_file(&flat));
    std::fs::create_dir(flat.join("test")).unwrap();
    std::fs::copy(&some, flat.join("test/unlabelled.png")).unwrap();
    let f = ImageFolder::from_folder(&flat, SplitConfig::default()).unwrap();
    assert_eq!(f.vocab.len(), 2, "{:?}", f.vocab);
    assert!(!f.vocab.contains(&"test".to_string()));
    assert!(
        f.skipped.iter().any(|s| s.path.ends_with("test")),
        "{:?}",
        f.skipped
    );

    // `valid/<class>/` with no `train/<class>/`: reported, not dropped in silence.
    let split = dir.path().join("split");
    common::tiny_dataset(&split, 2, 6, 2);
    std::fs::create_dir(split.join("valid/stray")).unwrap();
    std::fs::copy(&some, split.join("valid/stray/a.png")).unwrap();
    // A name with a newline in it cannot start a line of its own in skipped.txt.
    let class = common::any_file(&split.join("train"));
    std::fs::write(class.join("evil\nfake.png: injected"), b"not an image").unwrap();
    let f = ImageFolder::from_folder(&split, SplitConfig::default()).unwrap();
    assert!(
        f.skipped.iter().any(|s| s.path.ends_with("valid/stray")),
        "{:?}",
        f.skipped
    );
    let report = skipped_report(&f.skipped);
    assert_eq!(report.lines().count(), f.skipped.len(), "{report}");
    assert!(report.contains("evil\\nfake.png"), "{report}");
}

#[test]
fn one_writer_per_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs/r");
    let run = fastvision::run_dir::RunDir::create(&path).unwrap();
    let held = run.lock().unwrap();
    let again = fastvision::run_dir::RunDir::open(&path).unwrap();
    let err = again.lock().unwrap_err().to_string();
    assert!(err.contains("in use by another process"), "{err}");
    drop(held);
    again.lock().expect("free once the first writer is done");
    // Of two runs racing for one name, one gets the folder.
    let err = fastvision::run_dir::RunDir::create(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
}
