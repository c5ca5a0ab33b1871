//! `fastvision bench`: the throughput table; the measuring is `fastvision::bench`'s.

use std::path::PathBuf;

use anyhow::Result;
use fastvision::bench::{BenchConfig, gemm_peaks, measure};
use fastvision::burn::tensor::Device;
use fastvision::data::AugLevel;
use fastvision::learner::Precision;
use fastvision::models::Arch;

use super::parse::{arch, at_least, between, named};

/// `fastvision bench`'s flags.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Architecture to time.
    #[arg(long, default_value = "resnet18", value_parser = arch())]
    arch: Arch,
    /// Batch size, at least 2.
    #[arg(long, default_value_t = 32, value_parser = at_least(2))]
    bs: usize,
    /// Image side, 16 to 2048.
    #[arg(long, default_value_t = 64, value_parser = between(16, 2048))]
    size: u32,
    /// Timed training steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10, value_parser = at_least(1))]
    steps: usize,
    /// Images to decode for the loader figure (default: the demo's training set).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Augmentation in the loader figure (default: none, crop + flip only).
    #[arg(long, value_parser = named::<AugLevel>(&["none", "light", "default", "heavy"]))]
    aug: Option<AugLevel>,
    /// Time burn's own ops instead of fastvision's kernels (the "before" of the kernels).
    #[arg(long)]
    reference_ops: bool,
    /// Also time one N×N×N product of our GEMM in f32 and in each bf16 unit of this CPU
    /// (GFLOP/s on all cores: the ceiling of the convolutions).
    #[arg(long, value_name = "N", value_parser = between(64, 8192))]
    gemm: Option<u32>,
    /// Float precision of training and inference: auto (bf16 on AMX tiles or AMD's AVX-512
    /// BF16, else fp32), fp32, bf16, fp16 (GPU).
    #[arg(long, default_value = "auto", value_parser = named::<Precision>(&["auto", "fp32", "fp16", "bf16"]))]
    pub precision: Precision,
}

/// `fastvision bench`: measures and prints the table, then the figures as one JSON line.
pub fn bench(args: BenchArgs, device: &Device) -> Result<()> {
    let gemm = args.gemm;
    let config = BenchConfig {
        arch: args.arch,
        bs: args.bs,
        size: args.size,
        steps: args.steps,
        data: args.data,
        aug: args.aug,
        reference_ops: args.reference_ops,
        precision: args.precision,
    };
    let r = measure(&config, device)?;
    println!(
        "fastvision bench: {} bs {} size {} {} ({} cores; warm-up {:.1} s)",
        config.arch,
        config.bs,
        config.size,
        config.precision.explain(device),
        rayon::current_num_threads(),
        r.warmup_s
    );
    println!("| backend | loader img/s | train img/s | infer img/s | peak MiB |");
    println!("|---|---|---|---|---|");
    let ops = if config.reference_ops || r.backend != "flex" {
        "burn's ops"
    } else {
        "fastvision kernels"
    };
    println!(
        "| {} ({ops}) | {:.0} | {:.1} | {:.1} | {:.0} |",
        r.backend, r.loader_img_s, r.train_img_s, r.infer_img_s, r.peak_mib
    );
    let step: f64 = r.step_ms.iter().map(|(_, ms)| ms).sum();
    println!("\n| one training step | ms | share |");
    println!("|---|---|---|");
    for (label, ms) in &r.step_ms {
        println!(
            "| {label} | {ms:.1} | {:.0} % |",
            100.0 * ms / step.max(1e-9)
        );
    }
    println!("{}", serde_json::to_string(&r)?);
    if let Some(n) = gemm {
        println!("\n| GEMM {n}×{n}×{n} | GFLOP/s |");
        println!("|---|---|");
        let peaks = gemm_peaks(n as usize);
        for p in &peaks {
            println!("| {} | {:.0} |", p.mul, p.gflops);
        }
        println!("{}", serde_json::to_string(&peaks)?);
    }
    Ok(())
}
