//! The CLI end to end on a tiny folder: train, predict, evaluate, resume errors, fine-tuning,
//! augmentation, export (tables, GANs and ensembles: `cli_apps`).

use crate::common;

use std::process::Command;

/// Runs the built `fastvision` in `cwd`: (whether it succeeded, its output).
pub(crate) fn fastvision(cwd: &std::path::Path, args: &[&str]) -> (bool, String) {
    let (code, text) = common::run_cli(cwd, args);
    (code == 0, text)
}

/// The JSON value stdout starts with (stderr, with the device line, follows it in `out`).
fn leading_json(out: &str) -> serde_json::Value {
    serde_json::Deserializer::from_str(out)
        .into_iter()
        .next()
        .expect("JSON on stdout")
        .expect("valid JSON")
}

#[test]
fn train_predict_evaluate_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    common::tiny_dataset(&data, 2, 12, 6);
    std::fs::write(data.join("train/bag/broken.jpg"), b"nope").unwrap();
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--epochs", "2", "--bs", "8", "--size", "32", "--width", "8",
            "--name", "r1",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("train_loss") && out.contains("accuracy"),
        "table printed: {out}"
    );
    assert!(out.contains("broken.jpg"), "skipped file named: {out}");
    let run = dir.path().join("runs/r1");
    for f in [
        "model.safetensors",
        "config.json",
        "log.json",
        "loss.png",
        "skipped.txt",
        "train.json",
        "checkpoint/checkpoint.json",
    ] {
        assert!(run.join(f).is_file(), "{f} written");
    }
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("log.json")).unwrap()).unwrap();
    assert_eq!(log["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(log["batches"].as_array().unwrap().len(), 2 * 3);

    let img = std::fs::read_dir(data.join("valid/bag"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "predict",
            "runs/r1",
            img.to_str().unwrap(),
            "--json",
            "-k",
            "2",
        ],
    );
    assert!(ok, "{out}");
    let preds: serde_json::Value = leading_json(&out);
    let top = preds[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    let total: f64 = top.iter().map(|c| c["prob"].as_f64().unwrap()).sum();
    assert!(
        (total - 1.0).abs() < 1e-4,
        "two classes: probabilities sum to 1"
    );

    // Forced fp32 predicts the same classes within bf16's rounding of auto's; fp16 is refused on
    // the CPU, naming the flag.
    let img_arg = img.to_str().unwrap();
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "predict",
            "runs/r1",
            img_arg,
            "--json",
            "-k",
            "2",
            "--precision",
            "fp32",
        ],
    );
    assert!(ok && out.contains("· fp32"), "{out}");
    let fp32: serde_json::Value = leading_json(&out);
    let prob = |v: &serde_json::Value| v[0]["top"][0]["prob"].as_f64().unwrap();
    assert!(
        (prob(&fp32) - prob(&preds)).abs() < 0.05,
        "{fp32} vs {preds}"
    );
    let (ok, out) = fastvision(
        dir.path(),
        &["predict", "runs/r1", img_arg, "--precision", "fp16"],
    );
    assert!(!ok && out.contains("--precision fp16"), "{out}");

    let (ok, out) = fastvision(dir.path(), &["evaluate", "runs/r1", "photos"]);
    assert!(ok, "{out}");
    assert!(out.contains("12 images, accuracy"), "{out}");
    assert!(run.join("confusion.png").is_file());

    let (ok, out) = fastvision(
        dir.path(),
        &["train", "photos", "--name", "r1", "--epochs", "1"],
    );
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = fastvision(dir.path(), &["predict", "runs/r1", "photos/missing.png"]);
    assert!(!ok && out.contains("missing.png"), "{out}");
}

#[test]
fn lr_find_lr_auto_sgdr_and_fine_tune_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("photos"), 2, 16, 4);
    let small = ["--bs", "8", "--size", "32", "--width", "8"];
    let args = |extra: &[&'static str]| -> Vec<&'static str> { [extra, &small[..]].concat() };

    let (ok, out) = fastvision(dir.path(), &args(&["lr-find", "photos", "--name", "f"]));
    assert!(ok, "{out}");
    assert!(
        out.contains("valley")
            && out.contains("steep")
            && out.contains("minimum")
            && out.contains("slide"),
        "{out}"
    );
    assert!(dir.path().join("runs/f/lr_find.png").is_file());

    let (ok, out) = fastvision(
        dir.path(),
        &args(&[
            "train",
            "photos",
            "--name",
            "s",
            "--lr",
            "auto",
            "--schedule",
            "sgdr",
            "--cycles",
            "2",
        ]),
    );
    assert!(ok, "{out}");
    assert!(out.contains("--lr auto: the LR finder suggests"), "{out}");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/s/log.json")).unwrap())
            .unwrap();
    assert_eq!(
        log["epochs"].as_array().unwrap().len(),
        3,
        "SGDR with 2 cycles of 1 and 2 epochs"
    );
    let lrs: Vec<f64> = log["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["lr"].as_f64().unwrap())
        .collect();
    assert!(
        lrs[4] > lrs[3],
        "the learning rate restarts at the second cycle: {lrs:?}"
    );
    assert!(
        dir.path().join("runs/s/lr.png").is_file()
            && dir.path().join("runs/s/lr_find.png").is_file()
    );

    let (ok, out) = fastvision(
        dir.path(),
        &args(&[
            "train",
            "photos",
            "--name",
            "ft",
            "--fine-tune",
            "--epochs",
            "1",
            "--lr",
            "2e-3",
        ]),
    );
    assert!(ok, "{out}");
    assert!(out.contains("body frozen"), "{out}");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/ft/log.json")).unwrap())
            .unwrap();
    let stages: Vec<u64> = log["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stage"].as_u64().unwrap())
        .collect();
    assert_eq!(stages, vec![0, 1], "one frozen epoch, then one unfrozen");
}

#[test]
fn training_from_pretrained_weights_fine_tunes_and_names_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("photos"), 2, 8, 4);
    let weights = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/resnet18_w8_places.pth.tar");
    let w = weights.to_str().unwrap();
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train",
            "photos",
            "--pretrained",
            w,
            "--epochs",
            "1",
            "--bs",
            "8",
            "--size",
            "32",
            "--width",
            "8",
            "--name",
            "p",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("pretrained: ") && out.contains("body frozen"),
        "pretrained implies fine_tune: {out}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_fastvision"))
        .args([
            "train",
            "photos",
            "--pretrained",
            "resnet50_places365",
            "--arch",
            "resnet50",
            "--bs",
            "8",
            "--name",
            "q",
        ])
        .env("FASTVISION_HOME", dir.path().join("cache"))
        // Offline: a test never reaches the internet (downloads are tested in tests/hub.rs).
        .env("FASTVISION_OFFLINE", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("resnet50_places365.pth.tar")
            && text.contains("(offline)")
            && text.contains("places2.csail.mit.edu"),
        "{text}"
    );
    assert!(
        !dir.path().join("runs/q").exists(),
        "a failed start leaves no run folder behind"
    );
}

#[test]
fn the_demo_is_found_from_any_working_directory_and_errors_leave_no_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = fastvision(dir.path(), &["train", "--bs", "100000", "--name", "d"]);
    assert!(!ok);
    assert!(
        out.contains("data/demo") && out.contains("3000 training images: fewer than one batch"),
        "{out}"
    );
    assert!(!dir.path().join("runs/d").exists());
}

#[test]
fn augmentation_progressive_mixup_and_tta_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    common::tiny_dataset(&data, 2, 12, 4);
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train",
            "photos",
            "--sizes",
            "16,24",
            "--epochs",
            "1,1",
            "--bs",
            "8",
            "--width",
            "8",
            "--mixup",
            "--label-smoothing",
            "--aug",
            "heavy",
            "--name",
            "p",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("stage 1: 1 epoch,") && out.contains("16 px"),
        "{out}"
    );
    assert!(
        out.contains("stage 2: 1 epoch,") && out.contains("24 px"),
        "{out}"
    );
    let train: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/p/train.json")).unwrap())
            .unwrap();
    assert_eq!(train["mixup"], 0.4);
    assert_eq!(train["label_smoothing"], 0.1);
    assert_eq!(train["aug"], "heavy");

    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train",
            "photos",
            "--size",
            "64",
            "--progressive",
            "--epochs",
            "2",
            "--bs",
            "8",
            "--width",
            "8",
            "--cutmix",
            "--name",
            "auto",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("sizes [32, 64], epochs [1, 1]"), "{out}");

    for (flag, name) in [
        ("", "plain"),
        ("--tta", "tta n=4"),
        ("--ten-crop", "10-crop"),
    ] {
        let mut args = vec!["evaluate", "runs/p", "photos"];
        if !flag.is_empty() {
            args.push(flag);
        }
        let (ok, out) = fastvision(dir.path(), &args);
        assert!(
            ok && out.contains("8 images, accuracy") && out.contains(name),
            "{out}"
        );
        assert!(!out.contains("trained without augmentation"), "{out}");
    }
    // Without augmentation TTA has nothing to replay: it says so.
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--epochs", "1", "--bs", "8", "--width", "8", "--aug", "none",
            "--name", "none",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = fastvision(dir.path(), &["evaluate", "runs/none", "photos", "--tta"]);
    assert!(
        ok && out.contains("trained without augmentation") && out.contains("tta n=4"),
        "{out}"
    );

    let (ok, out) = fastvision(
        dir.path(),
        &["show-batch", "photos", "--n", "6", "--name", "sb"],
    );
    assert!(ok, "{out}");
    let grid = image::open(dir.path().join("runs/sb/show_batch.png")).unwrap();
    assert!(grid.width() > 4 * 96 && grid.height() > 2 * 96);

    let (ok, out) = fastvision(dir.path(), &["train", "photos", "--epochs", "2,1"]);
    assert!(!ok && out.contains("--sizes"), "{out}");
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--sizes", "8,16", "--epochs", "1,1", "--name", "tiny",
        ],
    );
    assert!(!ok && out.contains("image size 8 is too small"), "{out}");
    assert!(!dir.path().join("runs/tiny").exists());
}

#[test]
fn twenty_images_per_class_train_with_a_fitted_batch_size() {
    // 2 classes × 20 training images and no --bs: the default 64 does not fit, so the batch
    // shrinks (to 16: the largest power of two up to half of 40) and says so; lr-find too.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    common::tiny_dataset(&data, 2, 20, 4);
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--epochs", "1", "--size", "32", "--width", "8", "--name", "small",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("batch size 16: 40 training images are fewer than 64"),
        "{out}"
    );
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/small/log.json")).unwrap())
            .unwrap();
    assert_eq!(
        log["batches"].as_array().unwrap().len(),
        40 / 16,
        "full batches only"
    );
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "lr-find", "photos", "--size", "32", "--width", "8", "--name", "lf",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("batch size 16"), "{out}");
    // A batch size the user chose is kept, and too large is still an error.
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--bs", "64", "--size", "32", "--name", "big",
        ],
    );
    assert!(
        !ok && out.contains("40 training images: fewer than one batch (--bs 64)"),
        "{out}"
    );
}

#[test]
fn an_exported_file_predicts_like_its_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    common::tiny_dataset(&data, 2, 12, 4);
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
            "--name", "r",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = fastvision(
        dir.path(),
        &["export", "runs/r", "--out", "shipped.safetensors"],
    );
    assert!(ok, "{out}");
    let shipped = dir.path().join("shipped.safetensors");
    let before = std::fs::read(&shipped).unwrap();
    // Never overwritten.
    let (ok, out) = fastvision(
        dir.path(),
        &["export", "runs/r", "--out", "shipped.safetensors"],
    );
    assert!(!ok && out.contains("already exists"), "{out}");
    assert_eq!(std::fs::read(&shipped).unwrap(), before);

    let mut images: Vec<String> = std::fs::read_dir(data.join("valid/bag"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    images.sort();
    let probs = |model: &str| -> Vec<f64> {
        let mut args = vec!["predict", model, "-k", "2", "--json"];
        args.extend(images.iter().map(String::as_str));
        let (ok, out) = fastvision(dir.path(), &args);
        assert!(ok, "{out}");
        let v: serde_json::Value = leading_json(&out);
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                p["top"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["prob"].as_f64().unwrap())
            })
            .collect()
    };
    let (from_run, from_file) = (probs("runs/r"), probs("shipped.safetensors"));
    assert_eq!(from_run.len(), 2 * images.len());
    for (a, b) in from_run.iter().zip(&from_file) {
        assert!((a - b).abs() <= 1e-5, "{from_run:?} vs {from_file:?}");
    }
    let (ok, out) = fastvision(dir.path(), &["evaluate", "shipped.safetensors", "photos"]);
    assert!(ok && out.contains("8 images, accuracy"), "{out}");
    assert!(dir.path().join("shipped.confusion.png").is_file());
    // ONNX from the command line (its numbers are checked in onnxruntime by python/tests/test_onnx.py).
    let (ok, out) = fastvision(
        dir.path(),
        &["export", "runs/r", "--format", "onnx", "--out", "m.onnx"],
    );
    assert!(ok, "{out}");
    assert!(std::fs::metadata(dir.path().join("m.onnx")).unwrap().len() > 10_000);
    let (ok, out) = fastvision(
        dir.path(),
        &["export", "runs/r", "--format", "onnx", "--out", "m.onnx"],
    );
    assert!(!ok && out.contains("already exists"), "{out}");
    // A safetensors file that is not a fastvision export is refused by name.
    let (ok, out) = fastvision(
        dir.path(),
        &["predict", "runs/r/model.safetensors", &images[0]],
    );
    assert!(
        !ok && out.contains("without fastvision's configuration"),
        "{out}"
    );
}

/// On one kernel thread (`RAYON_NUM_THREADS=1`, a one-core machine) training, validation and
/// evaluation end: their forward passes run on that thread while the loader makes the next
/// batches on it too. The loss and accuracy equal those of the run on two.
#[test]
fn training_and_evaluation_on_one_kernel_thread_end_with_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("photos"), 2, 12, 6);
    let mut finals = vec![];
    for (name, threads) in [("one", "1"), ("all", "2")] {
        let args = [
            "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
            "--name", name,
        ];
        let (child, out) = common::spawn_cli(dir.path(), &args, &[("RAYON_NUM_THREADS", threads)]);
        let (code, out) = common::wait_within(child, out, &args, 120);
        assert_eq!(code, 0, "{out}");
        let last = out
            .lines()
            .find(|l| l.starts_with("final:"))
            .map(str::to_owned);
        finals.push(last.unwrap_or_else(|| panic!("no final line: {out}")));
        let run = format!("runs/{name}");
        let args = ["evaluate", run.as_str(), "photos"];
        let (child, out) = common::spawn_cli(dir.path(), &args, &[("RAYON_NUM_THREADS", threads)]);
        let (code, out) = common::wait_within(child, out, &args, 120);
        assert!(code == 0 && out.contains("images, accuracy"), "{out}");
    }
    // "final: accuracy A, valid_loss L after …": one core sums in another order than two.
    let figures = |l: &str| -> Vec<f64> {
        l.split([' ', ','])
            .filter_map(|w| w.parse().ok())
            .take(2)
            .collect()
    };
    let (one, all) = (figures(&finals[0]), figures(&finals[1]));
    assert_eq!(one.len(), 2, "{finals:?}");
    assert!(
        one.iter().zip(&all).all(|(a, b)| (a - b).abs() < 1e-3),
        "{finals:?}"
    );
}
