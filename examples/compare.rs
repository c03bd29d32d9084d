//! Compares runs over seeds: prints the tables as Markdown and writes a self-contained page.
//!
//! ```text
//! cargo run --release --example compare -- [--out PAGE.html] [--baseline NAME] DIR...
//! ```
//!
//! Each DIR is a run directory (with `run.json`, `summary.json` and `metrics.jsonl`) or a
//! directory of runs at any depth. Runs with the same configuration but the seed form a
//! group; the tables give each group's mean ± sample standard deviation over seeds, and the
//! differences between groups on the seeds they share (each group minus the closest group of
//! `--baseline`, a group or method name; without it, each group minus those before it with
//! the same dataset and epochs).

use std::path::PathBuf;

use clap::Parser;
use rescom::report::Comparison;

#[derive(Debug, Parser)]
#[command(about = "Compare training runs over seeds: Markdown tables and an HTML page")]
struct Args {
    /// Write the comparison page (self-contained HTML) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The group (or method) the paired differences are taken against.
    #[arg(long)]
    baseline: Option<String>,
    /// Run directories, or directories holding runs.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
}

fn run(args: Args) -> rescom::Result<()> {
    let comparison = Comparison::read(&args.dirs)?;
    print!("{}", comparison.markdown(args.baseline.as_deref())?);
    if let Some(out) = &args.out {
        comparison.write_page(out, args.baseline.as_deref())?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
