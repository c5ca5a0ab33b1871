//! Data-parallel training over MPI (`launch`, the `distributed` feature, Open MPI's mpirun on
//! PATH): two ranks equal one process, rank 0 alone writes, a killed rank stops the job and the
//! run resumes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, read_output, spawn_cli, wait_within};

fn penguins() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tabular/penguins.csv");
    p.to_str().unwrap().to_string()
}

/// `words` (split at spaces) with `path` in place of every `{}`.
fn args<'a>(words: &'a str, path: &'a str) -> Vec<&'a str> {
    words
        .split_whitespace()
        .map(|w| if w == "{}" { path } else { w })
        .collect()
}

/// Runs `fastvision ARGS` in `cwd` with one compute thread (as each rank has), within `secs`.
fn run(cwd: &Path, args: &[&str], secs: u64) -> (i32, String) {
    let (child, out) = spawn_cli(cwd, args, &[("RAYON_NUM_THREADS", "1")]);
    wait_within(child, out, args, secs)
}

const TWO_RANKS: &str = "launch --nproc 2 --threads 1";

/// The f32 values of two safetensors files, after checking that they hold the same tensors.
fn same_layout_values(a: &Path, b: &Path) -> (Vec<f32>, Vec<f32>) {
    let read = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        header.as_object_mut().unwrap().remove("__metadata__");
        let values: Vec<f32> = bytes[8 + n..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (header, values)
    };
    let ((ha, va), (hb, vb)) = (read(a), read(b));
    assert!(
        ha == hb,
        "the two models' tensors differ in names or shapes"
    );
    (va, vb)
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn two_ranks_train_the_same_weights_as_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let csv = penguins();
    let tabular = "tabular train {} --target species --epochs 3";
    let (code, out) = run(
        dir.path(),
        &args(&format!("{tabular} --bs 32 --name one"), &csv),
        120,
    );
    assert_eq!(code, 0, "{out}");
    let two = format!("{TWO_RANKS} --sync-bn -- {tabular} --bs 32 --name two");
    let (code, out) = run(dir.path(), &args(&two, &csv), 120);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("launch: 2 ranks"), "{out}");
    // Rank 0 alone reports: one summary, not two.
    assert_eq!(out.matches("final: accuracy").count(), 1, "{out}");
    let runs = dir.path().join("runs");
    let model = |name: &str| runs.join(name).join("model.safetensors");
    let (one, two) = same_layout_values(&model("one"), &model("two"));
    let scale = one.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = largest_difference(&one, &two);
    assert!(
        worst <= 1e-4 * scale.max(1.0),
        "largest difference {worst} (largest weight {scale})"
    );
    // Not equal by accident: another global batch trains other weights.
    let (code, out) = run(
        dir.path(),
        &args(&format!("{tabular} --bs 16 --name other"), &csv),
        120,
    );
    assert_eq!(code, 0, "{out}");
    let (_, other) = same_layout_values(&model("one"), &model("other"));
    let moved = largest_difference(&one, &other);
    assert!(moved > 100.0 * worst.max(1e-7), "{moved} vs {worst}");
    // Only rank 0 wrote: the two runs, the reference and nothing else.
    let mut names: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["one", "other", "two"]);
}

#[test]
fn images_train_on_two_ranks_and_rank_0_alone_writes() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("data"), 2, 16, 8);
    let command =
        format!("{TWO_RANKS} -- train data --epochs 2 --bs 8 --size 32 --width 8 --name r");
    let (code, out) = run(dir.path(), &args(&command, ""), 300);
    assert_eq!(code, 0, "{out}");
    let run_dir = dir.path().join("runs/r");
    assert!(run_dir.join("model.safetensors").is_file(), "{out}");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("log.json")).unwrap()).unwrap();
    let epochs = log["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2, "{log}");
    assert!(epochs[1]["train_loss"].as_f64().unwrap().is_finite());
    // The log says the ranks and the time they spent communicating.
    assert_eq!(epochs[1]["ranks"].as_u64(), Some(2), "{log}");
    assert!(epochs[1]["comm_seconds"].as_f64().unwrap() > 0.0, "{log}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("runs")).unwrap().count(),
        1
    );
}

#[test]
fn an_ensemble_trains_on_two_ranks_and_the_others_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(&dir.path().join("data"), 2, 16, 8);
    // The ranks' private folders go to this test's own temporary folder.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let command = format!(
        "{TWO_RANKS} -- ensemble train data --members resnet18 --seeds 2 --epochs 1 --bs 8 \
         --size 32 --width 8 --name e"
    );
    let command = args(&command, "");
    let env = [
        ("RAYON_NUM_THREADS", "1"),
        ("TMPDIR", tmp.to_str().unwrap()),
    ];
    let (child, out) = spawn_cli(dir.path(), &command, &env);
    let (code, out) = wait_within(child, out, &command, 300);
    assert_eq!(code, 0, "{out}");
    assert!(dir.path().join("runs/e/ensemble.json").is_file(), "{out}");
    assert_eq!(out.matches("best subset").count(), 1, "{out}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "{out}");
}

#[test]
fn an_unreachable_host_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let command = args("launch --hosts nosuchhost.invalid:2 -- train", "");
    let (code, out) = run(dir.path(), &command, 60);
    assert_eq!(code, 1, "{out}");
    assert!(
        common::last_line(&out).contains("host nosuchhost.invalid cannot be reached"),
        "{out}"
    );
}

/// The process ids of the ranks whose command line names `tag`, with their ranks.
fn rank_pids(tag: &str) -> Vec<(u32, usize)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(tag) {
            continue;
        }
        let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let rank = env
            .split(|&b| b == 0)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .find_map(|v| v.strip_prefix("OMPI_COMM_WORLD_RANK="))
            .and_then(|r| r.parse().ok());
        if let Some(rank) = rank {
            found.push((pid, rank));
        }
    }
    found
}

#[test]
fn a_killed_rank_stops_the_job_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let csv = penguins();
    let tag = "killed-rank-run";
    let command = format!(
        "{TWO_RANKS} -- tabular train {{}} --target species --epochs 400 --bs 16 --name {tag}"
    );
    let command = args(&command, &csv);
    // The job's temporary folders go here, to check that none outlives it.
    let tmp = tempfile::tempdir().unwrap();
    let tmp_var = [("TMPDIR", tmp.path().to_str().unwrap())];
    let (mut child, out) = spawn_cli(dir.path(), &command, &tmp_var);
    let run_dir: PathBuf = ["runs", tag].iter().collect();
    let ckpt = dir.path().join(&run_dir).join("checkpoint/checkpoint.json");
    let t0 = Instant::now();
    while !ckpt.exists() {
        assert!(child.try_wait().unwrap().is_none(), "{}", read_output(out));
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    let victim = rank_pids(tag).into_iter().find(|&(_, r)| r == 1);
    let (pid, _) = victim.unwrap_or_else(|| panic!("rank 1 not found"));
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let (code, text) = wait_within(child, out, &command, 60);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("the ranks stopped"), "{text}");
    // No rank is left behind.
    std::thread::sleep(Duration::from_millis(500));
    assert!(rank_pids(tag).is_empty(), "ranks still running");
    // Nor the killed rank's private copy of the run.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "temporary folders left: {left:?}");
    // The run folder kept its finished epochs, and all ranks resume it.
    let resume = format!("{TWO_RANKS} -- tabular train --resume {{}}");
    let (code, out) = run(dir.path(), &args(&resume, run_dir.to_str().unwrap()), 300);
    assert_eq!(code, 0, "{out}");
    assert!(
        dir.path()
            .join(&run_dir)
            .join("model.safetensors")
            .is_file()
    );
}
