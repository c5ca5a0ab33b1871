//! The CLI's other applications end to end on tiny data: tables (train, predict, evaluate,
//! importance), GANs (train, sample, score, extra data) and ensembles.

use crate::cli::fastvision;
use crate::common;

#[test]
fn tabular_train_predict_evaluate_importance_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tabular/penguins.csv");
    let csv = csv.to_str().unwrap();
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "tabular", "train", csv, "--target", "species", "--epochs", "3", "--name", "t1",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("categorical: island, sex, year, bill_length_mm_na")
            && out.contains("continuous:  bill_length_mm, bill_depth_mm"),
        "the column split is printed: {out}"
    );
    assert!(
        out.contains("valid_loss") && out.contains("final: accuracy"),
        "{out}"
    );
    let run = dir.path().join("runs/t1");
    let taken = dir.path().join("preds.csv");
    std::fs::write(&taken, "mine").unwrap();
    let (ok, out) = fastvision(
        dir.path(),
        &["tabular", "predict", "runs/t1", csv, "--out", "preds.csv"],
    );
    assert!(
        !ok && out.contains("preds.csv"),
        "an existing output file is refused: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(&taken).unwrap(),
        "mine",
        "and left untouched"
    );
    let (ok, out) = fastvision(
        dir.path(),
        &["tabular", "predict", "runs/t1", csv, "--out", "new.csv"],
    );
    assert!(ok, "{out}");
    let preds = std::fs::read_to_string(dir.path().join("new.csv")).unwrap();
    assert_eq!(preds.lines().count(), 345, "header + every row");
    assert!(
        preds
            .lines()
            .nth(4)
            .unwrap()
            .starts_with("Adelie,Torgersen,NA,NA,NA,NA,NA,2007,"),
        "input cells kept as written"
    );
    let (ok, out) = fastvision(dir.path(), &["tabular", "evaluate", "runs/t1", csv]);
    assert!(ok && out.contains("344 rows: accuracy"), "{out}");
    let (ok, out) = fastvision(
        dir.path(),
        &["tabular", "importance", "runs/t1", "--repeats", "1"],
    );
    assert!(ok && out.contains("bill_length_mm"), "{out}");
    let (ok, out) = fastvision(dir.path(), &["tabular", "embeddings", "runs/t1"]);
    assert!(ok && run.join("embeddings/island.csv").is_file(), "{out}");
    let island = std::fs::read_to_string(run.join("embeddings/island.csv")).unwrap();
    assert!(island.starts_with("level,e0,e1,e2\n#na#,"), "{island}");
    assert!(run.join("importance.png").is_file() && run.join("report.html").is_file());
}

#[test]
fn gan_train_sample_score_and_extra_data_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("photos"), 2, 16, 6);
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "gan",
            "train",
            "photos",
            "--epochs",
            "2",
            "--bs",
            "8",
            "--n-features",
            "8",
            "--name",
            "g",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("wasserstein") && out.contains("trained 2 generators"),
        "{out}"
    );
    let (ok, out) = fastvision(
        dir.path(),
        &["gan", "sample", "runs/g", "--n", "4", "--out", "synth"],
    );
    assert!(ok && out.contains("wrote 8 synthetic images"), "{out}");
    assert!(dir.path().join("synth/bag/gan-bag-0-00003.png").is_file());
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train",
            "photos",
            "--epochs",
            "1",
            "--bs",
            "8",
            "--size",
            "32",
            "--width",
            "8",
            "--extra-data",
            "synth",
            "--name",
            "with-synth",
        ],
    );
    assert!(
        ok && out.contains("training split: 32 real + 8 synthetic images"),
        "{out}"
    );
    let log = std::fs::read_to_string(dir.path().join("runs/with-synth/log.json")).unwrap();
    assert!(
        log.contains("\"synthetic\": 8") || log.contains("\"synthetic\":8"),
        "{log}"
    );
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "gan",
            "score",
            "runs/g",
            "--classifier",
            "runs/with-synth",
            "--n",
            "8",
        ],
    );
    assert!(
        ok && out.contains("GAN-test") && out.contains("GAN-train"),
        "{out}"
    );
    std::fs::create_dir_all(dir.path().join("wrong/zebra")).unwrap();
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "train",
            "photos",
            "--epochs",
            "1",
            "--extra-data",
            "wrong",
            "--name",
            "w",
        ],
    );
    assert!(
        !ok && out.contains("synthetic [zebra], dataset [ankle-boot, bag]"),
        "{out}"
    );
}

#[test]
fn ensembles_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("photos"), 2, 12, 6);
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "ensemble",
            "train",
            "photos",
            "--members",
            "resnet18,efficientnet_lite0",
            "--bagging",
            "--epochs",
            "1",
            "--bs",
            "8",
            "--size",
            "32",
            "--width",
            "8",
            "--name",
            "e",
            "--combine",
            "mean",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("ensemble (mean)") && out.contains("greedy selection"),
        "{out}"
    );
    assert!(
        dir.path()
            .join("runs/e/members/01-efficientnet_lite0-s42-bag/model.safetensors")
            .is_file()
    );
    let (ok, out) = fastvision(dir.path(), &["evaluate", "runs/e", "photos"]);
    assert!(
        ok && out.contains("ensemble of 2 members (mean combination)"),
        "{out}"
    );
    let img = common::any_file(&dir.path().join("photos/valid/bag"));
    let (ok, out) = fastvision(
        dir.path(),
        &["predict", "runs/e", img.to_str().unwrap(), "--tta"],
    );
    assert!(ok && out.contains("bag"), "{out}");
    let (ok, out) = fastvision(dir.path(), &["ensemble", "fit-weights", "runs/e"]);
    assert!(
        ok && out.contains("weights fitted on 6 validation images"),
        "{out}"
    );
    let (ok, out) = fastvision(dir.path(), &["evaluate", "runs/e", "photos"]);
    assert!(
        ok && out.contains("6 images left out") && out.contains("6 images, accuracy"),
        "{out}"
    );
    let (ok, out) = fastvision(dir.path(), &["interpret", "runs/e"]);
    assert!(ok && out.contains("6 Valid images"), "{out}");
    // Two ordinary runs made into an ensemble; a run on other data is refused.
    for name in ["a", "b"] {
        let (ok, out) = fastvision(
            dir.path(),
            &[
                "train", "photos", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
                "--name", name,
            ],
        );
        assert!(ok, "{out}");
    }
    let (ok, out) = fastvision(
        dir.path(),
        &["ensemble", "from", "runs/a", "runs/b", "--name", "ab"],
    );
    assert!(ok && out.contains("ensemble of 2 runs"), "{out}");
    common::tiny_dataset(&dir.path().join("other"), 2, 12, 6);
    let (ok, _) = fastvision(
        dir.path(),
        &[
            "train", "other", "--epochs", "1", "--bs", "8", "--size", "32", "--width", "8",
            "--name", "c",
        ],
    );
    assert!(ok);
    let (ok, out) = fastvision(
        dir.path(),
        &["ensemble", "from", "runs/a", "runs/c", "--name", "ac"],
    );
    assert!(
        !ok && out.contains("did not train on the same data"),
        "{out}"
    );
    assert!(!dir.path().join("runs/ac").exists());
}
