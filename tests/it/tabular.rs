//! The tabular learner: processing equal to fastai's, learning, regression range, prediction on
//! unseen levels and missing cells, bad CSV files, bundle round trip and embedding reuse.

use crate::common;
use fastvision::learner::Listen;

use std::path::{Path, PathBuf};

use fastvision::tabular::predict::predict_table;
use fastvision::tabular::process::{Processor, TargetSpec, emb_sz_rule};
use fastvision::tabular::run::{self as tab, TabularConfig, ValidSpec};
use fastvision::tabular::table::{Table, cont_cat_split};
use rand::{RngExt, SeedableRng};
use serde_json::Value;

fn penguins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tabular/penguins.csv")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| match r.as_array() {
            Some(row) => row.iter().map(|x| x.as_f64().unwrap()).collect(),
            None => vec![r.as_f64().unwrap()],
        })
        .collect()
}

#[test]
fn processing_equals_fastai_on_penguins() {
    let fx: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/tabular_penguins_fastai.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let table = Table::read(&penguins(), b',').unwrap();
    let (cont, cat) = cont_cat_split(&table, 20, &["species"]);
    let names = |k: &str| -> Vec<String> {
        fx[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(cont, names("cont_names"));
    assert_eq!(cat, names("cat_names_before"));
    let valid: Vec<usize> = (0..table.len()).filter(|i| i % 5 == 0).collect();
    let train: Vec<usize> = (0..table.len()).filter(|i| i % 5 != 0).collect();
    let (train, valid) = (table.select(&train), table.select(&valid));
    let spec = TargetSpec {
        name: "species".into(),
        regression: false,
        y_range: None,
    };
    let pr = Processor::fit(&train, &cat, &cont, &spec).unwrap();
    assert_eq!(pr.cat_inputs(), names("cat_names"));
    for (i, name) in pr.cat_inputs().iter().enumerate() {
        let want: Vec<String> = fx["classes"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(pr.classes[i], want, "levels of {name}");
    }
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{what}: {a} vs fastai {b}"
        );
    };
    for (k, name) in pr.cont_names.iter().enumerate() {
        close(pr.fill[k], fx["na_dict"][name].as_f64().unwrap(), "median");
        close(pr.means[k], fx["means"][name].as_f64().unwrap(), "mean");
        close(pr.stds[k], fx["stds"][name].as_f64().unwrap(), "std");
    }
    let emb: Vec<(usize, usize)> = fx["emb_szs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[0].as_u64().unwrap() as usize,
                e[1].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(pr.emb_szs(), emb);
    assert_eq!(
        pr.target,
        fastvision::tabular::Target::Classification {
            name: "species".into(),
            vocab: names("y_vocab")
        }
    );
    for (split, t) in [("train", &train), ("valid", &valid)] {
        let p = pr.transform(t, true).unwrap();
        let n_cat = pr.classes.len();
        let want_cats = floats(&fx[format!("{split}_cats")]);
        let got_cats: Vec<f64> = p.cats[..20 * n_cat].iter().map(|&c| c as f64).collect();
        assert_eq!(got_cats, want_cats, "{split} category codes");
        let want = floats(&fx[format!("{split}_conts")]);
        for (g, w) in p.conts[..want.len()].iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-4,
                "{split} normalised value {g} vs {w}"
            );
        }
    }
    let y = floats(&fx["train_y"]);
    let p = pr.transform(&train, true).unwrap();
    assert_eq!(
        p.y_class[..20]
            .iter()
            .map(|&c| c as f64)
            .collect::<Vec<_>>(),
        y
    );
    assert_eq!(emb_sz_rule(4), 3);
}

/// A CSV with a rule only an interaction explains: the sign of `x` matters in opposite ways for
/// groups a and b, and not at all for c (then `z` decides).
fn interaction_csv(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut s = String::from("group,x,z,label\n");
    for _ in 0..n {
        let g = ["a", "b", "c"][rng.random_range(0..3)];
        let x: f64 = rng.random_range(-1.0..1.0);
        let z: f64 = rng.random_range(-1.0..1.0);
        let pos = match g {
            "a" => x > 0.0,
            "b" => x < 0.0,
            _ => z > 0.3,
        };
        s.push_str(&format!(
            "{g},{x:.4},{z:.4},{}\n",
            if pos { "yes" } else { "no" }
        ));
    }
    let path = dir.join("interaction.csv");
    std::fs::write(&path, s).unwrap();
    path
}

fn quiet_config(csv: &Path, target: &str) -> TabularConfig {
    TabularConfig {
        epochs: 8,
        ..TabularConfig::new(csv, target)
    }
}

#[test]
fn learns_a_categorical_by_continuous_interaction() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let csv = interaction_csv(tmp.path(), 1200, 1);
    let run = tmp.path().join("run");
    let summary = tab::train(
        &quiet_config(&csv, "label"),
        &run,
        &fastvision::device(),
        Listen::none(),
    )
    .unwrap();
    let last = summary.recorder.last().unwrap();
    let accuracy = last.accuracy.unwrap();
    assert!(
        accuracy > 0.9,
        "accuracy {accuracy} on the interaction rule"
    );
    assert!(last.rmse.is_none(), "classification has no RMSE column");
    let first = &summary.recorder.epochs[0];
    assert!(last.valid_loss < first.valid_loss, "valid loss falls");
    for f in [
        "model.safetensors",
        "tabular.json",
        "log.json",
        "loss.png",
        "report.html",
        "confusion.png",
    ] {
        assert!(run.join(f).is_file(), "{f} written");
    }
}

#[test]
fn regression_output_stays_inside_y_range() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut s = String::from("kind,x,y\n");
    for i in 0..300 {
        let x = (i as f64) / 30.0;
        s.push_str(&format!(
            "{},{x},{}\n",
            ["u", "v"][i % 2],
            10.0 + 2.0 * x + (i % 2) as f64
        ));
    }
    let csv = tmp.path().join("reg.csv");
    std::fs::write(&csv, s).unwrap();
    let config = TabularConfig {
        epochs: 20,
        ..TabularConfig::new(&csv, "y")
    };
    let run = tmp.path().join("run");
    let summary = tab::train(&config, &run, &fastvision::device(), Listen::none()).unwrap();
    let rmse = summary
        .recorder
        .last()
        .unwrap()
        .rmse
        .expect("regression reports rmse");
    assert!(rmse < 2.0, "rmse {rmse} (targets span 10..31, std 6)");
    let (model, bundle) = tab::load_bundle(&run, &fastvision::device()).unwrap();
    let (lo, hi) = match bundle.processor.target {
        fastvision::tabular::Target::Regression { y_range, .. } => y_range,
        _ => panic!("a float target is regression"),
    };
    // 1.2x the training range (targets 10..30.93, some rows held out for validation).
    assert!(lo > 7.5 && lo < 8.5 && hi > 32.5 && hi < 33.5, "{lo}..{hi}");
    let extreme = tmp.path().join("extreme.csv");
    std::fs::write(&extreme, "kind,x,y\nu,-1000,0\nv,1000,0\nw,1e9,0\n").unwrap();
    let t = Table::read(&extreme, b',').unwrap();
    let (out, _) =
        predict_table(&model, &bundle.processor, &t, false, &fastvision::device()).unwrap();
    for v in out.iter().map(|r| f64::from(r[0])) {
        assert!(v >= lo - 1e-4 && v <= hi + 1e-4, "{v} outside {lo}..{hi}");
    }
}

#[test]
fn predicts_unseen_levels_and_missing_cells_and_round_trips_the_bundle() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let config = TabularConfig {
        epochs: 2,
        valid: ValidSpec::Pct(0.25),
        ..TabularConfig::new(penguins(), "species")
    };
    let run = tmp.path().join("run");
    let summary = tab::train(&config, &run, &fastvision::device(), Listen::none()).unwrap();
    let rows = tmp.path().join("rows.csv");
    std::fs::write(
        &rows,
        "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n\
         Atlantis,45,15,220,5000,male,2010\n\
         Dream,NA,,190,3700,,2008\n\
         Biscoe,\"50.1\",15.2,225,null,female,2009\n",
    )
    .unwrap();
    let mut out = Vec::new();
    let s = fastvision::tabular::predict::predict_csv(
        &run,
        &rows,
        b',',
        &mut out,
        &fastvision::device(),
    )
    .unwrap();
    assert_eq!(s.n, 3);
    assert_eq!(
        s.unseen,
        vec![("island".to_string(), 1), ("year".to_string(), 1)]
    );
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[0].ends_with("species_pred,p_Adelie,p_Chinstrap,p_Gentoo"),
        "{}",
        lines[0]
    );
    for l in &lines[1..] {
        let p: f64 = l
            .rsplit(',')
            .take(3)
            .map(|x| x.parse::<f64>().unwrap())
            .sum();
        assert!((p - 1.0).abs() < 1e-4, "probabilities sum to 1: {l}");
    }
    // The saved bundle scores the validation rows exactly as the in-memory model did in training.
    let p = tab::prepare(&config).unwrap();
    let (model, bundle) = tab::load_bundle(&run, &fastvision::device()).unwrap();
    assert_eq!(bundle.processor, p.processor);
    let e = fastvision::tabular::predict::score(
        &model,
        &bundle.processor,
        &p.dls.valid,
        &fastvision::device(),
    );
    let last = summary.recorder.last().unwrap();
    assert_eq!(e.accuracy, last.accuracy);
    assert!(
        (e.loss - last.valid_loss.unwrap()).abs() < 1e-5,
        "{} vs {:?}",
        e.loss,
        last.valid_loss
    );
    let eval =
        fastvision::tabular::predict::evaluate_csv(&run, &penguins(), b',', &fastvision::device())
            .unwrap();
    assert_eq!(eval.n, 344);
    assert!(
        eval.accuracy.unwrap() > 0.6,
        "above chance after 2 epochs: {eval:?}"
    );
}

#[test]
fn a_new_run_starts_from_an_earlier_runs_embeddings() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let config = TabularConfig {
        epochs: 2,
        ..TabularConfig::new(penguins(), "species")
    };
    tab::train(&config, &first, &fastvision::device(), Listen::none()).unwrap();
    let (old, old_bundle) = tab::load_bundle(&first, &fastvision::device()).unwrap();
    // Same columns, another target: the embeddings of island, sex, year carry over.
    let second = TabularConfig {
        init_embeddings: Some(first.clone()),
        seed: 7,
        ..TabularConfig::new(penguins(), "sex")
    };
    let p = tab::prepare(&second).unwrap();
    let device = fastvision::device();
    let mut model = tab::model_config(&second, &p.processor).init(&device);
    let copied =
        fastvision::tabular::embeddings::init_from(&mut model, &p.processor, &first, &device)
            .unwrap();
    let island_old = old_bundle
        .processor
        .cat_inputs()
        .iter()
        .position(|c| c == "island")
        .unwrap();
    let island_new = p
        .processor
        .cat_inputs()
        .iter()
        .position(|c| c == "island")
        .unwrap();
    let (a, _) = fastvision::tabular::embeddings::embedding_rows(&old, island_old);
    let (b, _) = fastvision::tabular::embeddings::embedding_rows(&model, island_new);
    assert_eq!(a, b, "island's learned rows are copied");
    assert!(copied >= 4 + 4, "island and year levels at least: {copied}");
}

fn read_err(name: &str, content: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(name);
    std::fs::write(&path, content).unwrap();
    let config = TabularConfig::new(&path, "y");
    match tab::prepare(&config) {
        Ok(_) => panic!("{name} was accepted"),
        Err(e) => e.to_string().replace(&tmp.path().display().to_string(), ""),
    }
}

#[test]
fn bad_csv_files_are_refused_with_file_line_and_column() {
    let e = read_err("ragged.csv", b"a,b,y\n1,2,x\n3,4\n5,6,z\n");
    assert_eq!(e, "/ragged.csv:3: this row has 2 fields, the header has 3");
    let mut rows = String::from("a,b,y\n");
    for i in 0..30 {
        rows.push_str(&format!("{i}.5,{},{}\n", i % 3, ["p", "q"][i % 2]));
    }
    let mut bad = rows.clone();
    bad.push_str("oops,1,p\n");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nonnum.csv");
    std::fs::write(&path, &bad).unwrap();
    let config = TabularConfig {
        cont: vec!["a".into()],
        ..TabularConfig::new(&path, "y")
    };
    let e = tab::prepare(&config)
        .err()
        .expect("a word in a continuous column")
        .to_string();
    assert!(e.ends_with("nonnum.csv:32, column \"a\": \"oops\" is not a number (the column is used as continuous)"), "{e}");
    let e = read_err("notarget.csv", b"a,b\n1,2\n");
    assert!(
        e.starts_with("/notarget.csv:1: no column named \"y\"; the columns are: a, b"),
        "{e}"
    );
    let e = read_err("empty.csv", b"");
    assert_eq!(e, "/empty.csv: empty file: no header row");
    let e = read_err("header.csv", b"a,y\n");
    assert_eq!(e, "/header.csv: no data rows after the header");
    let e = read_err("one.csv", b"a,y\n1,x\n2,x\n3,x\n");
    assert!(
        e.contains("column \"y\": the target has 1 class in the training rows (x)"),
        "{e}"
    );
    let e = read_err("latin1.csv", b"a,y\n1,caf\xe9\n2,x\n");
    assert!(e.starts_with("/latin1.csv:2") && e.contains("UTF-8"), "{e}");
}

#[test]
fn an_interrupted_tabular_run_resumes_from_its_checkpoint() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let config = TabularConfig {
        epochs: 2,
        ..TabularConfig::new(penguins(), "species")
    };
    tab::train(&config, &run, &fastvision::device(), Listen::none()).unwrap();
    assert!(fastvision::run::has_checkpoint(&run));
    // As if the run had been asked for 4 epochs and stopped after 2: resume trains 2 more.
    let json = std::fs::read_to_string(run.join("train.json")).unwrap();
    std::fs::write(
        run.join("train.json"),
        json.replace("\"epochs\": 2", "\"epochs\": 4"),
    )
    .unwrap();
    let before: fastvision::learner::Recorder =
        serde_json::from_slice(&std::fs::read(run.join("log.json")).unwrap()).unwrap();
    let summary = tab::resume(&run, &fastvision::device(), Listen::none()).unwrap();
    let epochs: Vec<usize> = summary.recorder.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, [0, 1, 2, 3]);
    assert_eq!(
        summary.recorder.epochs[..2],
        before.epochs[..],
        "the first two epochs are kept, not redone"
    );
}

/// A CSV of `rows` rows and `cols` input columns (alternately categorical words and numbers)
/// plus a two-class target `y`.
fn wide_csv(path: &Path, rows: usize, cols: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut s: Vec<String> = (0..cols).map(|c| format!("c{c}")).collect();
    s.push("y".into());
    let mut text = s.join(",") + "\n";
    for r in 0..rows {
        let mut row: Vec<String> = (0..cols)
            .map(|c| {
                if c % 2 == 0 {
                    ["a", "b", "c"][rng.random_range(0..3)].to_string()
                } else {
                    format!("{:.3}", rng.random_range(-1.0..1.0))
                }
            })
            .collect();
        row.push(["yes", "no"][r % 2].into());
        text.push_str(&(row.join(",") + "\n"));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_wide_table_trains_and_predicts_in_time_linear_in_its_columns() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("wide.csv");
    wide_csv(&csv, 40, 5000);
    let run = tmp.path().join("run");
    let config = TabularConfig {
        epochs: 1,
        bs: 16,
        ..TabularConfig::new(&csv, "y")
    };
    let t0 = std::time::Instant::now();
    let summary = tab::train(&config, &run, &fastvision::device(), Listen::none()).unwrap();
    let mut out = Vec::new();
    let s = fastvision::tabular::predict::predict_csv(
        &run,
        &csv,
        b',',
        &mut out,
        &fastvision::device(),
    )
    .unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    assert_eq!(summary.recorder.epochs.len(), 1);
    assert_eq!(s.n, 40);
    let (model, bundle) = tab::load_bundle(&run, &fastvision::device()).unwrap();
    let counted = burn::module::Module::num_params(&model);
    assert_eq!(
        bundle.model.n_params() as usize,
        counted,
        "the size estimate is exact"
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 41);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(",y,y_pred,p_no,p_yes"),
        "the input columns, then the prediction"
    );
    // 2 500 embeddings and 2 500 continuous inputs: under a second when every step is linear in
    // the columns; a minute when the weights' header was parsed again for every tensor (in both
    // loads here) and columns were looked up by name one by one.
    assert!(
        seconds < 20.0,
        "5 000 columns took {seconds:.1} s to train and predict"
    );
}

#[test]
fn a_table_wider_than_the_column_limit_is_refused_before_any_run_folder() {
    use fastvision::tabular::table::MAX_COLUMNS;
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("too-wide.csv");
    let header: Vec<String> = (0..=MAX_COLUMNS).map(|c| format!("c{c}")).collect();
    let row = vec!["1"; MAX_COLUMNS + 1].join(",");
    std::fs::write(&csv, format!("{}\n{row}\n{row}\n", header.join(","))).unwrap();
    let run = tmp.path().join("run");
    let t0 = std::time::Instant::now();
    let e = tab::train(
        &TabularConfig::new(&csv, "c0"),
        &run,
        &fastvision::device(),
        Listen::none(),
    )
    .expect_err("a header wider than the limit")
    .to_string();
    assert!(e.contains("too-wide.csv:1"), "{e}");
    assert!(
        e.contains(&format!(
            "{} columns; at most {MAX_COLUMNS}",
            MAX_COLUMNS + 1
        )),
        "{e}"
    );
    assert!(!e.contains("--"), "the library names no flag: {e}");
    assert!(!run.exists(), "no run folder is written");
    assert!(t0.elapsed().as_secs_f64() < 30.0, "refused from the header");
}
