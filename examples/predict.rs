//! Classifies image files, or the run's own test split, with a trained run.
//!
//! ```text
//! cargo run --release --example train -- --epochs 3 --out runs/x
//! cargo run --release --example predict -- --run runs/x shirt.png boot.jpg
//! cargo run --release --example predict -- --run runs/x --split test --limit 20 --json
//! ```
//!
//! Files are PNG or JPEG, grey or colour, of any size: they are converted to the run's
//! channels and size and prepared by the run's evaluation pipeline (`rescom::run::Predictor`).
//! `--split test` reads the test split the run records in its `run.json` (the `train` example
//! records it). Exit status 1 with `error: ...` on failure.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::{Parser, ValueEnum};
use rescom::run::{Prediction, Predictor};
use serde::Serialize;

rescom_support::use_mimalloc!();

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Pure-Rust CPU backend.
    Flex,
    /// burn-ndarray CPU backend (requires `--features ndarray`).
    Ndarray,
    /// GPU through wgpu/Vulkan (requires `--features vulkan`).
    Vulkan,
    /// NVIDIA GPU through CUDA (requires `--features cuda`).
    Cuda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitArg {
    /// The test split the run records.
    Test,
}

#[derive(Debug, Parser)]
#[command(about = "Classify images with a trained rescom run")]
struct Args {
    /// The run's output directory (its `--out`).
    #[arg(long)]
    run: PathBuf,
    /// Classes to show per image.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// Images per forward pass.
    #[arg(long, default_value_t = rescom::run::DEFAULT_PREDICT_BATCH)]
    batch_size: usize,
    /// Classify a split the run knows (its run.json records where it comes from).
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// With --split: only its first N images.
    #[arg(long, requires = "split")]
    limit: Option<usize>,
    /// Image files (PNG or JPEG).
    files: Vec<PathBuf>,
}

/// One classified input.
#[derive(Debug, Serialize)]
struct Classified {
    /// The file, or `test[i]` for image `i` of the split.
    input: String,
    /// The true label, for an image of the split.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<usize>,
    #[serde(flatten)]
    prediction: Prediction,
}

/// The JSON document.
#[derive(Debug, Serialize)]
struct Report {
    run: PathBuf,
    epoch: usize,
    top_k: usize,
    predictions: Vec<Classified>,
    /// Top-1 accuracy over the split's images, when a split was classified.
    #[serde(skip_serializing_if = "Option::is_none")]
    split_top1: Option<f64>,
}

fn device(backend: Backend) -> Result<Device, String> {
    let name = match backend {
        Backend::Flex => "flex",
        Backend::Ndarray => "ndarray",
        Backend::Vulkan => "vulkan",
        Backend::Cuda => "cuda",
    };
    rescom_support::device::open(name)
}

/// The first `limit` images of the run's test split, classified in chunks.
fn classify_split(
    predictor: &Predictor,
    args: &Args,
) -> Result<Vec<Classified>, Box<dyn std::error::Error>> {
    let spec = predictor.test_split().ok_or_else(|| {
        format!(
            "the run at {} records no test split (a run trained before run.json recorded one, \
             or through rescom::run::fit without RunOptions::test_split); classify files instead",
            args.run.display()
        )
    })?;
    let test = spec.open()?;
    let n = args.limit.unwrap_or(usize::MAX).min(test.len());
    let mut out = Vec::with_capacity(n);
    let chunk = args.batch_size.max(1) * 16;
    for start in (0..n).step_by(chunk) {
        let indices: Vec<usize> = (start..n.min(start + chunk)).collect();
        let images = indices
            .iter()
            .map(|&i| test.image(i))
            .collect::<rescom::Result<Vec<_>>>()?;
        let predictions = predictor.predict(&images, args.top_k)?;
        out.extend(
            indices
                .into_iter()
                .zip(predictions)
                .map(|(i, prediction)| Classified {
                    input: format!("test[{i}]"),
                    label: Some(test.label(i)),
                    prediction,
                }),
        );
    }
    Ok(out)
}

fn print_text(report: &Report, names: Option<&[String]>) {
    let name = |class: usize| {
        names
            .and_then(|n| n.get(class))
            .map_or(String::new(), |n| format!(" {n}"))
    };
    for item in &report.predictions {
        match item.label {
            Some(label) => println!("{} (label {label}{})", item.input, name(label)),
            None => println!("{}", item.input),
        }
        for (rank, score) in item.prediction.top.iter().enumerate() {
            println!(
                "  {}. class {:>3}{:<14} {:.4}",
                rank + 1,
                score.class,
                name(score.class),
                score.probability
            );
        }
    }
    if let Some(top1) = report.split_top1 {
        println!(
            "top-1 on these {} images: {:.2} %",
            report.predictions.len(),
            100.0 * top1
        );
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.files.is_empty() && args.split.is_none() {
        return Err("nothing to classify: give image files or --split test".into());
    }
    let device = device(args.backend)?;
    let predictor = Predictor::open(&args.run, &device)?.with_batch_size(args.batch_size)?;
    let mut predictions: Vec<Classified> = predictor
        .predict_files(&args.files, args.top_k)?
        .into_iter()
        .zip(&args.files)
        .map(|(prediction, file)| Classified {
            input: file.display().to_string(),
            label: None,
            prediction,
        })
        .collect();
    let mut split_top1 = None;
    if args.split.is_some() {
        let split = classify_split(&predictor, &args)?;
        let right = split
            .iter()
            .filter(|c| c.label == Some(c.prediction.class()))
            .count();
        split_top1 = Some(right as f64 / split.len().max(1) as f64);
        predictions.extend(split);
    }
    let report = Report {
        run: args.run.clone(),
        epoch: predictor.epoch(),
        top_k: args.top_k,
        predictions,
        split_top1,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report, predictor.class_names());
    }
    Ok(())
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
