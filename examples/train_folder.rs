//! Train a classifier on a folder of class folders with the library API, as the README shows:
//! `cargo run --example train_folder -- PATH [EPOCHS]` (PATH defaults to the bundled demo).

use fastvision::learner::FitState;
use fastvision::learner::metrics::{EpochMetrics, table_header, table_row};
use fastvision::prelude::*;

/// Prints fastai's metrics table, one row per epoch (the library itself never prints).
struct PrintEpochs;

impl Callback for PrintEpochs {
    fn before_fit(&mut self, _state: &mut FitState) {
        println!("{}", table_header(false));
    }

    fn after_epoch(&mut self, _state: &mut FitState, m: &EpochMetrics) {
        println!("{}", table_row(m));
    }
}

fn main() -> fastvision::Result<()> {
    let mut args = std::env::args().skip(1);
    let root = match args.next() {
        Some(p) => p.into(),
        None => fastvision::data::demo::demo_path()?,
    };
    let epochs = args.next().and_then(|e| e.parse().ok()).unwrap_or(1);
    let data = ImageFolder::from_folder(&root, SplitConfig::default())?;
    let size = data.min_side.min(64);
    let dls = DataLoaders::from_folder(&data, size, 64, 42);
    let config = ClassifierConfig::new(Arch::Resnet18, dls.n_classes());
    let mut learn = Learner::from_config(&config, dls, &fastvision::device(), 42)?;
    learn.callbacks.push(Box::new(PrintEpochs));
    let found = learn.lr_find(Default::default())?;
    println!(
        "LR finder suggests {:.1e} (valley)",
        found.suggestions.valley
    );
    learn.fit_one_cycle(epochs, found.suggestions.valley)?;
    if let Some(m) = learn.recorder.last() {
        println!("accuracy {:.3}", m.accuracy);
    }
    Ok(())
}
