//! Bad flags, odd folders, broken values and a silent network: every case is refused with a
//! clear message and exit code 1, nothing the user owns is touched, nothing is left behind.

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs the CLI in `cwd`; returns (exit code, stdout + stderr).
fn fastvision(cwd: &Path, args: &[&str]) -> (i32, String) {
    common::run_cli(cwd, args)
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir_like(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_path_buf())
        .collect();
    out.sort();
    out
}

fn walkdir_like(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                out.extend(walkdir_like(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A tiny dataset (2 classes, 12 + 4 images each) in `root/photos`; returns its path.
fn photos(root: &Path) -> PathBuf {
    let data = root.join("photos");
    common::tiny_dataset(&data, 2, 12, 4);
    data
}

/// A finished tiny run `runs/NAME` trained on `root/photos`.
fn tiny_run(root: &Path, name: &str) -> PathBuf {
    let (code, out) = fastvision(
        root,
        &[
            "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
            "--name", name,
        ],
    );
    assert_eq!(code, 0, "{out}");
    root.join("runs").join(name)
}

#[test]
fn every_bad_numeric_flag_is_one_line_exit_1_and_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    let base = ["--size", "32", "--width", "8", "--name", "r"];
    let cases: &[(&[&str], &str)] = &[
        (&["train", "photos", "--bs", "0"], "--bs"),
        (&["train", "photos", "--bs", "1"], "--bs"),
        (&["train", "photos", "--valid-pct", "0"], "--valid-pct"),
        (&["train", "photos", "--valid-pct", "1"], "--valid-pct"),
        (&["train", "photos", "--valid-pct", "NaN"], "--valid-pct"),
        (&["train", "photos", "--valid-pct", "1.5"], "--valid-pct"),
        (&["train", "photos", "--epochs", "0"], "--epochs"),
        (&["train", "photos", "--size", "100000"], "--size"),
        (&["train", "photos", "--min-scale", "0"], "--min-scale"),
        (&["lr-find", "photos", "--bs", "1"], "--bs"),
        (&["show-batch", "photos", "--n", "0"], "--n"),
        (&["bench", "--bs", "0"], "--bs"),
        (&["gan", "train", "photos", "--bs", "0"], "--bs"),
        (
            &[
                "ensemble",
                "train",
                "photos",
                "--members",
                "resnet18",
                "--seeds",
                "0",
            ],
            "--seeds",
        ),
    ];
    for (args, flag) in cases {
        let mut all: Vec<&str> = args.to_vec();
        if !matches!(args[0], "bench" | "gan" | "ensemble") {
            all.extend(base);
        }
        let (code, out) = fastvision(dir.path(), &all);
        assert_eq!(code, 1, "{all:?} exits 1: {out}");
        assert!(out.contains(flag), "{all:?} names {flag}: {out}");
        assert!(
            out.trim().lines().count() <= 3,
            "{all:?}: a short message, no panic or backtrace: {out}"
        );
        assert!(!out.contains("panicked"), "{all:?}: {out}");
    }
    // Memory: a size whose training cannot fit is refused before anything is written.
    let (code, out) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--size", "2048", "--bs", "16", "--name", "huge",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--size 2048") && out.contains("GB"), "{out}");
    assert!(
        !dir.path().join("runs").exists(),
        "no run folder left behind"
    );
}

#[test]
fn bad_table_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let mut text = String::from("a,b,y\n");
    for i in 0..40 {
        text.push_str(&format!("{},{},{}\n", i % 7, i as f64 * 0.5, i % 2));
    }
    std::fs::write(&csv, text).unwrap();
    for (args, flag) in [
        (vec!["--layers", "0"], "--layers"),
        (vec!["--y-range", "5,1", "--regression"], "--y-range"),
        (vec!["--valid-pct", "0"], "--valid-pct"),
        (vec!["--bs", "1"], "--bs"),
    ] {
        let mut all = vec!["tabular", "train", "t.csv", "--target", "y", "--name", "t"];
        all.extend(args);
        let (code, out) = fastvision(dir.path(), &all);
        assert_eq!(code, 1, "{all:?}: {out}");
        assert!(out.contains(flag), "{all:?} names {flag}: {out}");
        assert!(!out.contains("panicked"), "{all:?}: {out}");
    }
    assert!(
        !dir.path().join("runs").exists(),
        "no run folder left behind"
    );
}

#[test]
fn run_names_stay_under_runs() {
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    let outside = dir.path().join("outside");
    let abs = outside.to_string_lossy().into_owned();
    for name in ["../../x", "a/b", abs.as_str(), ".."] {
        for cmd in [
            vec![
                "train", "photos", "--epochs", "1", "--size", "32", "--width", "8",
            ],
            vec!["show-batch", "photos", "--size", "32"],
            vec!["lr-find", "photos", "--size", "32", "--width", "8"],
            vec!["gan", "train", "photos", "--epochs", "1"],
        ] {
            let mut all = cmd.clone();
            all.extend(["--name", name]);
            let (code, out) = fastvision(dir.path(), &all);
            assert_eq!(code, 1, "{all:?}: {out}");
            assert!(out.contains("--name"), "{all:?}: {out}");
        }
    }
    assert!(!outside.exists() && !dir.path().join("x").exists());
    assert!(!dir.path().join("runs").exists(), "nothing written");
}

#[test]
fn a_symlink_loop_is_counted_once_and_never_relabels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    common::tiny_dataset(&data, 2, 10, 0);
    let data = data.join("train");
    let classes: Vec<String> = fastvision::data::source::class_names(&data).unwrap().0;
    let coat = data.join(&classes[1]);
    std::os::unix::fs::symlink("..", coat.join("up")).unwrap();
    let first = std::fs::read_dir(data.join(&classes[0]))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::os::unix::fs::symlink(&first, coat.join("again.png")).unwrap();
    let folder =
        fastvision::data::ImageFolder::from_folder(&data, fastvision::data::SplitConfig::default())
            .unwrap();
    assert_eq!(
        folder.train.len() + folder.valid.len(),
        20,
        "each image once: {:?}",
        folder.skipped
    );
    let reasons: Vec<String> = folder.skipped.iter().map(|s| s.reason.clone()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("link to a folder")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("the same file")),
        "{reasons:?}"
    );
    // No image is in both splits, and none of the first class is labelled as the second.
    let real = |p: &Path| std::fs::canonicalize(p).unwrap();
    let train: std::collections::HashSet<PathBuf> =
        folder.train.iter().map(|i| real(&i.path)).collect();
    assert!(folder.valid.iter().all(|i| !train.contains(&real(&i.path))));
    for item in folder.train.iter().chain(&folder.valid) {
        let class = real(&item.path)
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(class, folder.vocab[item.label], "{:?}", item.path);
    }
}

#[test]
fn user_files_are_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    let run = tiny_run(dir.path(), "r");
    // Files named like a temporary file beside each target.
    for f in ["model.tmp", "model.onnx.tmp", "out.tmp", "report.tmp"] {
        std::fs::write(dir.path().join(f), b"mine").unwrap();
    }
    std::fs::write(dir.path().join("taken.onnx"), b"mine").unwrap();
    let (code, out) = fastvision(
        dir.path(),
        &["export", "runs/r", "--out", "model.safetensors"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = fastvision(
        dir.path(),
        &[
            "export",
            "runs/r",
            "--format",
            "onnx",
            "--out",
            "taken.onnx",
        ],
    );
    assert_eq!(code, 1, "an existing --out is refused: {out}");
    let (code, out) = fastvision(
        dir.path(),
        &["export", "runs/r", "--out", "missing/model.safetensors"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("missing") && out.contains("does not exist") && !out.contains(".tmp"),
        "the missing folder is named, not a temporary file: {out}"
    );
    for f in [
        "model.tmp",
        "model.onnx.tmp",
        "out.tmp",
        "report.tmp",
        "taken.onnx",
    ] {
        assert_eq!(std::fs::read(dir.path().join(f)).unwrap(), b"mine", "{f}");
    }
    // evaluate beside an exported file never replaces a file there either.
    std::fs::write(dir.path().join("model.confusion.png"), b"mine").unwrap();
    let (code, out) = fastvision(dir.path(), &["evaluate", "model.safetensors", "photos"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read(dir.path().join("model.confusion.png")).unwrap(),
        b"mine"
    );
    assert!(dir.path().join("model.confusion-1.png").is_file(), "{out}");
    // No temporary file is left anywhere.
    let left: Vec<PathBuf> = files(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".fastvision-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(run.join("model.safetensors").is_file());
}

#[test]
fn run_folders_record_absolute_data_paths_and_resume_from_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    tiny_run(dir.path(), "r");
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/r/train.json")).unwrap())
            .unwrap();
    let data = PathBuf::from(settings["data"].as_str().unwrap());
    assert!(data.is_absolute(), "{data:?}");
    assert_eq!(
        data,
        std::fs::canonicalize(dir.path().join("photos")).unwrap()
    );
    // The same runs from another working directory, as an ensemble of two.
    tiny_run(dir.path(), "s");
    let elsewhere = tempfile::tempdir().unwrap();
    let a = dir.path().join("runs/r");
    let b = dir.path().join("runs/s");
    let (code, out) = fastvision(
        elsewhere.path(),
        &[
            "ensemble",
            "from",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--name",
            "e",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = fastvision(
        elsewhere.path(),
        &[
            "ensemble",
            "from",
            a.to_str().unwrap(),
            a.to_str().unwrap(),
            "--name",
            "f",
        ],
    );
    assert_eq!(code, 1, "the same run twice is refused: {out}");
    assert!(out.contains("twice"), "{out}");
}

#[test]
fn messages_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    let (code, out) = fastvision(dir.path(), &["train", "nowhere", "--name", "x"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("nowhere") && out.contains("does not exist"),
        "{out}"
    );
    let (code, out) = fastvision(dir.path(), &["train", "--resume", "runs/none"]);
    assert_eq!(code, 1);
    assert!(out.contains("does not exist"), "{out}");
    let run = tiny_run(dir.path(), "r");
    std::fs::write(run.join("checkpoint/checkpoint.json"), b"{ broken").unwrap();
    let (code, out) = fastvision(dir.path(), &["train", "--resume", "runs/r"]);
    assert_eq!(code, 1);
    assert!(out.contains("corrupt"), "{out}");
    let (code, out) = fastvision(dir.path(), &["ensemble", "report", "runs/r"]);
    assert_eq!(code, 1);
    assert!(out.contains("not an ensemble"), "{out}");
    let one = dir.path().join("one");
    common::tiny_dataset(&one, 1, 8, 2);
    let (code, out) = fastvision(dir.path(), &["train", "one", "--size", "32", "--name", "o"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("one") && out.contains("at least two"),
        "names the folder it looked in: {out}"
    );
    let (code, out) = fastvision(dir.path(), &["train", "--help"]);
    assert_eq!(code, 0);
    for arch in [
        "resnet18",
        "resnet34",
        "resnet50",
        "efficientnet_lite0",
        "inception_v3",
    ] {
        assert!(out.contains(arch), "train --help lists {arch}");
    }
}

#[test]
fn an_impossible_config_json_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    let run = tiny_run(dir.path(), "r");
    let config = run.join("config.json");
    let original = std::fs::read_to_string(&config).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    let image = common::any_file(&dir.path().join("photos/valid/bag"));
    let image = image.to_str().unwrap();
    v["size"] = 0.into();
    std::fs::write(&config, v.to_string()).unwrap();
    let (code, out) = fastvision(dir.path(), &["predict", "runs/r", image]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("config.json") && out.contains("size"), "{out}");
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    v["vocab"] = serde_json::json!(["a", "b", "c"]);
    std::fs::write(&config, v.to_string()).unwrap();
    let (code, out) = fastvision(dir.path(), &["predict", "runs/r", image]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("config.json") && out.contains("vocab"),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn infinities_in_a_table_are_missing_values_and_never_reach_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("x,z,y\n");
    for i in 0..60 {
        let x = if i % 9 == 0 {
            "inf".to_string()
        } else if i % 11 == 0 {
            "-inf".into()
        } else {
            format!("{}", i as f64 * 0.1)
        };
        text.push_str(&format!("{x},{},{}\n", (i * 7) % 5, i % 2));
    }
    std::fs::write(dir.path().join("t.csv"), &text).unwrap();
    std::fs::write(dir.path().join("new.csv"), "x,z\ninf,1\n0.5,2\n").unwrap();
    let (code, out) = fastvision(
        dir.path(),
        &[
            "tabular", "train", "t.csv", "--target", "y", "--cont", "x", "--epochs", "2", "--bs",
            "16", "--name", "t",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let log = std::fs::read_to_string(dir.path().join("runs/t/log.json")).unwrap();
    assert!(
        !log.contains("null") && !log.contains("NaN"),
        "finite losses: {log}"
    );
    let bundle = std::fs::read_to_string(dir.path().join("runs/t/tabular.json")).unwrap();
    // JSON writes NaN as null: the only null allowed is the classifier's absent y_range.
    assert_eq!(
        bundle.matches("null").count(),
        bundle.matches("\"y_range\": null").count(),
        "no NaN in tabular.json: {bundle}"
    );
    let v: serde_json::Value = serde_json::from_str(&bundle).unwrap();
    assert_eq!(
        v["processor"]["na_flags"][0],
        serde_json::Value::Bool(true),
        "infinities are flagged like missing values (x_na): {bundle}"
    );
    let (code, out) = fastvision(dir.path(), &["tabular", "predict", "runs/t", "new.csv"]);
    assert_eq!(code, 0, "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("inf,") || l.starts_with("0.5,"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    for r in rows {
        assert!(
            !r.contains("NaN") && !r.ends_with(','),
            "a finite prediction: {r}"
        );
    }
}

#[test]
fn a_silent_server_times_out_and_a_stalled_transfer_keeps_its_part() {
    use fastvision::weights::hub::{self, Checkpoint};
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    // Sends the headers and half the body, then stalls.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_addr = stall.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in stall.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            let _ = s.write_all(&[7u8; 500]);
            let _ = s.flush();
            held.push(s);
        }
    });
    hub::set_timeout(Duration::from_secs(1));
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let checkpoint = |url: String| Checkpoint {
        name: "t",
        arch: "resnet18",
        file: "t.pth",
        urls: Box::leak(vec![leak(url)].into_boxed_slice()),
        sha256: None,
        license: "",
        trained_on: "",
        manual: "",
    };
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let url = format!("http://{addr}/t.pth");
    let err = hub::download(&url, &dir.path().join("t.pth"), &checkpoint(url.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "timed out: {:?}",
        t0.elapsed()
    );
    assert!(err.contains("FASTVISION_NET_TIMEOUT"), "{err}");
    let url = format!("http://{stall_addr}/t.pth");
    let t0 = Instant::now();
    let err = hub::download(&url, &dir.path().join("t.pth"), &checkpoint(url.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "timed out: {:?}",
        t0.elapsed()
    );
    assert!(err.contains("kept"), "{err}");
    let part = std::fs::read(dir.path().join("t.pth.part")).unwrap();
    assert_eq!(part.len(), 500, "the partial file is kept for resume");
}
