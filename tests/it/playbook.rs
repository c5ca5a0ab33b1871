//! The playbook end to end on a tiny folder: the dry run writes nothing, a playbook killed
//! after its first step resumes without redoing it, and its folder is a model that predict,
//! evaluate and export accept, with predictions for the unlabelled test/ images.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fastvision(cwd: &Path, args: &[&str]) -> (bool, String) {
    let (code, text) = common::run_cli(cwd, args);
    (code == 0, text)
}

/// Two classes of 16 training and 6 validation images, and 3 unlabelled test images.
fn photos(root: &Path) {
    let data = root.join("photos");
    common::tiny_dataset(&data, 2, 16, 6);
    let test = data.join("test");
    std::fs::create_dir_all(&test).unwrap();
    for f in std::fs::read_dir(data.join("valid/bag")).unwrap().take(3) {
        let f = f.unwrap().path();
        std::fs::copy(&f, test.join(f.file_name().unwrap())).unwrap();
    }
}

#[test]
fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    let (ok, out) = fastvision(
        dir.path(),
        &[
            "--offline",
            "playbook",
            "photos",
            "--budget",
            "2m",
            "--dry-run",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("plan for 32 training") && out.contains("total"),
        "{out}"
    );
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn a_killed_playbook_resumes_without_redoing_its_finished_steps() {
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastvision"))
        .args([
            "--offline",
            "playbook",
            "photos",
            "--budget",
            "60s",
            "--name",
            "p",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = dir.path().join("runs/p/playbook.json");
    let t0 = Instant::now();
    // Kill it once the main model is trained (two results: measuring and training).
    loop {
        let done = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map_or(0, |v| v["results"].as_array().map_or(0, Vec::len));
        if done >= 2 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the playbook ended before it could be interrupted"
        );
        assert!(t0.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let main = dir.path().join("runs/p/steps/01-train/model.safetensors");
    let before = std::fs::metadata(&main).unwrap().modified().unwrap();
    let (ok, out) = fastvision(dir.path(), &["--offline", "playbook", "--resume", "runs/p"]);
    assert!(ok, "{out}");
    assert!(out.contains("resuming runs/p"), "{out}");
    assert_eq!(
        std::fs::metadata(&main).unwrap().modified().unwrap(),
        before,
        "the finished main model was kept, not trained again"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/p/plan.json")).unwrap())
            .unwrap();
    assert_eq!(
        v["results"].as_array().unwrap().len(),
        plan["steps"].as_array().unwrap().len() + 1,
        "every planned step done once: {out}"
    );
    assert!(
        out.contains("ensemble") && out.contains("total"),
        "the table: {out}"
    );
    // The playbook folder is a model.
    let csv = std::fs::read_to_string(dir.path().join("runs/p/predictions.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        4,
        "a header and the 3 test images: {csv}"
    );
    let image = dir.path().join("photos/test");
    let image = std::fs::read_dir(image)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (ok, out) = fastvision(dir.path(), &["predict", "runs/p", image.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = fastvision(dir.path(), &["evaluate", "runs/p", "photos"]);
    assert!(ok && out.contains("accuracy"), "{out}");
    assert!(dir.path().join("runs/p/playbook.html").is_file());
}

#[test]
fn a_playbook_for_two_workers_trains_its_member_beside_the_main_model() {
    use fastvision::learner::Listen;
    use fastvision::playbook::{self, PlaybookConfig, Step};
    let _g = common::rng_lock();
    fastvision::weights::hub::set_offline(true);
    let dir = tempfile::tempdir().unwrap();
    photos(dir.path());
    let device = fastvision::device();
    let mut config = PlaybookConfig::new(dir.path().join("photos"), 20.0);
    config.workers = 2;
    let p = dir.path().join("p");
    let planned = playbook::start(&config, &p, &device, &mut Listen::none()).unwrap();
    let beside = playbook::beside_steps(&p).unwrap();
    assert_eq!(beside.len(), 1, "{:?}", planned.plan.steps);
    let member = &planned.plan.steps[beside[0]];
    let main_epochs = planned.plan.steps.iter().find_map(|s| match s.step {
        Step::Train { epochs, .. } => Some(epochs),
        _ => None,
    });
    assert!(
        matches!(member.step, Step::Member { epochs, .. } if Some(epochs) == main_epochs),
        "a member as long as the main model: {:?}",
        planned.plan.steps
    );
    // One worker runs the main model's steps: they stop at the member, nothing is finished.
    let main = playbook::run_main(&p, &device, Listen::none()).unwrap();
    assert_eq!(main.steps_done(), beside[0], "{:?}", main.results);
    assert!(!p.join("playbook.html").exists());
    // Another runs the member; run again (a retried task), it keeps what it did.
    let done = playbook::run_beside(&p, beside[0], &device, Listen::none()).unwrap();
    assert!(done.beside && done.accuracy.is_some(), "{done:?}");
    let weights = p.join(done.run.as_ref().unwrap()).join("model.safetensors");
    let before = std::fs::metadata(&weights).unwrap().modified().unwrap();
    let again = playbook::run_beside(&p, beside[0], &device, Listen::none()).unwrap();
    assert_eq!(again, done);
    assert_eq!(
        std::fs::metadata(&weights).unwrap().modified().unwrap(),
        before
    );
    let err = playbook::run_beside(&p, 0, &device, Listen::none()).unwrap_err();
    assert!(err.to_string().contains("beside"), "{err}");
    // The end collects it: two final models, an ensemble step, the page, and the member's
    // time counted only as long as the main model's steps waited for it.
    let end = playbook::resume(&p, &device, Listen::none()).unwrap();
    assert_eq!(end.results.len(), end.plan.steps.len() + 1);
    assert_eq!(end.models.len(), 2, "{:?}", end.models);
    assert!(p.join("playbook.html").is_file());
    // It ran after the main model's steps here, so they waited for all of it.
    assert!(
        (end.waited_s - done.seconds).abs() < 1e-6,
        "{} vs {}",
        end.waited_s,
        done.seconds
    );
    let table = playbook::table(&end).join("\n");
    assert!(
        table.contains("beside the main model") && table.contains("ensemble"),
        "{table}"
    );
}
