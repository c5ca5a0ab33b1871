//! Train a classifier on a folder of class folders with the library alone — no CLI type — as the
//! README's "The library" section shows: settings with defaults, progress through a listener,
//! cancellation by a flag (type `q` and Enter: training ends after its batch, the run folder
//! keeps its last finished epoch), then a prediction and an export.
//!
//! `cargo run --example train_folder -- [DATA] [EPOCHS]` (DATA defaults to the bundled demo;
//! the run folder is `runs/example-<time>`, the export `runs/example-<time>.safetensors`).

use std::path::PathBuf;

use fastvision::infer::{Inference, Predictor, export_bundle};
use fastvision::learner::metrics::{Columns, table_header, table_row};
use fastvision::learner::{Cancel, EpochMetrics, FitState, Listen, Listener};
use fastvision::vision::{self, TrainConfig};

/// Prints fastai's metrics table and the run's notes (the library itself never prints).
#[derive(Default)]
struct Print {
    header: bool,
}

impl Listener for Print {
    fn after_epoch(&mut self, _state: &mut FitState, m: &EpochMetrics) {
        if !self.header {
            println!("{}", table_header(Columns::of(m)));
            self.header = true;
        }
        println!("{}", table_row(m));
    }

    fn note(&mut self, text: &str) {
        println!("{text}");
    }
}

fn main() -> fastvision::Result<()> {
    let mut args = std::env::args().skip(1);
    let data: Option<PathBuf> = args.next().map(Into::into);
    let epochs = args.next().and_then(|e| e.parse().ok()).unwrap_or(2);
    let config = TrainConfig {
        data,
        epochs,
        lr_auto: true,
        ..TrainConfig::default()
    };
    // Any thread may set the flag (a signal handler, a GUI's stop button): here, `q` + Enter.
    let cancel = Cancel::new();
    let flag = cancel.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.trim() == "q" {
                flag.cancel();
            }
            line.clear();
        }
    });
    let device = fastvision::device();
    let dir = fastvision::run_dir::run_path(Some(&format!(
        "example-{}",
        fastvision::run_dir::timestamp_name()
    )))?;
    let listen = Listen::new(Print::default()).cancelled_by(cancel);
    let summary = vision::train(&config, &dir, &device, listen)?;
    println!(
        "trained in {:.1}s: {}",
        summary.seconds,
        summary.dir.display()
    );

    let predictor = Predictor::load(&summary.dir, &device)?;
    let image = vision::load_data(&config)?.valid[0].path.clone();
    for p in predictor.predict(std::slice::from_ref(&image), 3, Inference::Plain)? {
        let top: Vec<String> = p
            .top
            .iter()
            .map(|c| format!("{} {:.3}", c.class, c.prob))
            .collect();
        println!("{}: {}", p.path.display(), top.join(", "));
    }

    let out = summary.dir.with_extension("safetensors");
    export_bundle(&summary.dir, &out, &device)?;
    println!("exported to {}", out.display());
    Ok(())
}
