//! Fuzzing of every reader of outside bytes, on stable Rust.
//!
//! Each reader (CIFAR binary batches, IDX files raw and gzipped, list files and the image paths
//! they name, PNG and JPEG images, a run's checkpoint directory with `run.json` and
//! `metrics.jsonl` as `--resume` and `--eval-only` read them) is called on inputs made by
//! mutating real seeds: the CIFAR fixtures, the headers and first records of the fetched
//! Fashion-MNIST and MNIST files (when `data/` holds them), small generated PNG and JPEG files,
//! the output of a small training run made here. Mutations: bit flips, byte changes, truncations, extensions, extreme header fields
//! (counts, dimensions, lengths near `u32::MAX`), splices, deletions, insertions and random
//! bytes. Every input must end in an accepted value or a clear `rescom::Error` (one that names
//! the file); a panic (counted by a panic hook, even one caught inside the reader), an abort, a
//! hang (an input slower than `--timeout`) or an allocation larger than the input justifies is
//! a failure, printed with the command that reproduces it, and the exit status is non-zero.
//!
//! ```text
//! cargo run --release --example fuzz -- --inputs 10000 --seed 1
//! cargo run --release --example fuzz -- --inputs 100000 --seed 1 --reader png
//! cargo run --release --example fuzz -- --seed 1 --reader png --index 4711 --dump /tmp/case
//! ```
//!
//! Input `i` of a reader is a pure function of `(seed, reader, i)`. The inputs run in worker
//! processes (this program with `--worker`) under a supervisor, so that an abort or a hang is
//! reported with its input instead of taking the harness down.

mod alloc;
mod mutate;
mod targets;

#[global_allocator]
static ALLOCATOR: alloc::Recording = alloc::Recording;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use rescom::{Error, Rng};

use targets::{Entry, TARGETS, Target};

#[derive(Parser, Debug)]
#[command(about = "Fuzzes every reader of outside bytes with mutated real seeds")]
struct Args {
    /// Inputs in total, shared evenly among the readers.
    #[arg(long, default_value_t = 10_000)]
    inputs: u64,
    /// Seed of the mutations.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fuzz only these readers (repeat the flag; `--list` names them).
    #[arg(long)]
    reader: Vec<String>,
    /// Time limit of one input, in seconds; a slower input is reported as a hang.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Worker processes run side by side.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Run only input INDEX of the one `--reader`, in this process, and say what happened.
    #[arg(long)]
    index: Option<u64>,
    /// With `--index`: write the input's files into this directory and read them there.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Print the readers and exit.
    #[arg(long)]
    list: bool,
    /// Internal: run inputs `from..to` of one reader in `work`, one line per input on stdout.
    #[arg(long, hide = true)]
    worker: bool,
    #[arg(long, hide = true, default_value_t = 0)]
    from: u64,
    #[arg(long, hide = true, default_value_t = 0)]
    to: u64,
    #[arg(long, hide = true)]
    work: Option<PathBuf>,
}

// ----- one input ----------------------------------------------------------------------------

/// Panics seen by the hook (in any thread), and the first message since the last reset.
static PANICS: AtomicUsize = AtomicUsize::new(0);
static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        let mut slot = PANIC_MESSAGE.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(info.to_string());
        }
    }));
}

/// How an input ended.
enum Outcome {
    Accepted,
    /// A `rescom::Error` naming the file it is about.
    Clear(String),
    /// Another `rescom::Error`.
    Vague(String),
    Panic(String),
}

/// An input's outcome, its largest allocation and the most its files justify.
struct Report {
    outcome: Outcome,
    largest: usize,
    budget: usize,
}

/// FNV-1a of a reader's name: its part of every input's key.
fn key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Generates input `index`, writes its files into `dir` and calls the reader on them.
fn run_one(
    target: &dyn Target,
    name: &str,
    dir: &Path,
    seed: u64,
    index: u64,
) -> std::io::Result<Report> {
    let mut rng = Rng::from_key(&[seed, key(name), index]);
    let files = target.generate(&mut rng);
    for (file, bytes) in &files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    let budget = target.budget(&files);
    drop(files);
    PANIC_MESSAGE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let panics = PANICS.load(Ordering::SeqCst);
    alloc::reset();
    let result = panic::catch_unwind(AssertUnwindSafe(|| target.read(dir)));
    let largest = alloc::largest();
    let message = PANIC_MESSAGE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let outcome = if PANICS.load(Ordering::SeqCst) != panics || result.is_err() {
        Outcome::Panic(message.unwrap_or_else(|| "a panic without a message".into()))
    } else {
        match result {
            Ok(Ok(())) => Outcome::Accepted,
            Ok(Err(e)) => {
                let names_file = matches!(
                    e,
                    Error::Io { .. }
                        | Error::DatasetMissing { .. }
                        | Error::CorruptData { .. }
                        | Error::Image { .. }
                        | Error::Checkpoint { .. }
                );
                if names_file {
                    Outcome::Clear(e.to_string())
                } else {
                    Outcome::Vague(e.to_string())
                }
            }
            Err(_) => unreachable!("handled above"),
        }
    };
    Ok(Report {
        outcome,
        largest,
        budget,
    })
}

fn entry(name: &str) -> Option<&'static Entry> {
    TARGETS.iter().find(|e| e.name == name)
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// `--worker`: runs inputs `from..to` of one reader and reports each on stdout as
/// `INDEX CODE LARGEST BUDGET [MESSAGE]` (codes `A` accepted, `E` clear error, `V` vague error,
/// `P` panic), after a `ready` line once the seeds are made.
fn worker(args: &Args) -> ExitCode {
    install_panic_hook();
    let (Some(entry), Some(work)) = (args.reader.first().and_then(|r| entry(r)), &args.work) else {
        eprintln!("--worker needs --reader and --work");
        return ExitCode::from(2);
    };
    let dir = work.join(format!("{}-{}", entry.name, args.from));
    let target = match std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| (entry.make)(&dir).map_err(|e| e.to_string()))
    {
        Ok(target) => target,
        Err(e) => {
            eprintln!("setting up {}: {e}", entry.name);
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {}", target.seeds()).and_then(|()| out.flush());
    for index in args.from..args.to {
        let line = match run_one(target.as_ref(), entry.name, &dir, args.seed, index) {
            Ok(r) => {
                let (code, message) = match &r.outcome {
                    Outcome::Accepted => ("A", String::new()),
                    Outcome::Clear(_) => ("E", String::new()),
                    Outcome::Vague(m) => ("V", one_line(m)),
                    Outcome::Panic(m) => ("P", one_line(m)),
                };
                format!("{index} {code} {} {} {message}", r.largest, r.budget)
            }
            Err(e) => {
                eprintln!("writing input {index} of {}: {e}", entry.name);
                return ExitCode::from(2);
            }
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return ExitCode::from(2);
        }
    }
    let _ = writeln!(out, "done").and_then(|()| out.flush());
    ExitCode::SUCCESS
}

// ----- supervision --------------------------------------------------------------------------

/// What a reader's inputs ended in.
#[derive(Default)]
struct Tally {
    inputs: u64,
    panics: u64,
    clear: u64,
    accepted: u64,
    vague: u64,
    over_budget: u64,
    hangs: u64,
    aborts: u64,
    not_run: u64,
    seeds: usize,
    largest: usize,
    seconds: f64,
    /// `(index, what happened)` of every failure.
    failures: Vec<(u64, String)>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.inputs += other.inputs;
        self.panics += other.panics;
        self.clear += other.clear;
        self.accepted += other.accepted;
        self.vague += other.vague;
        self.over_budget += other.over_budget;
        self.hangs += other.hangs;
        self.aborts += other.aborts;
        self.not_run += other.not_run;
        self.seeds = self.seeds.max(other.seeds);
        self.largest = self.largest.max(other.largest);
        self.seconds += other.seconds;
        self.failures.extend(other.failures);
    }

    fn failed(&self) -> bool {
        self.panics + self.vague + self.over_budget + self.hangs + self.aborts + self.not_run > 0
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name:<11} {} inputs, {} panics, {} clear errors, {} accepted ({} hangs, {} aborts, \
             {} vague errors, {} over budget, {} not run; {} seeds, largest allocation {}, \
             {:.1} s)",
            self.inputs,
            self.panics,
            self.clear,
            self.accepted,
            self.hangs,
            self.aborts,
            self.vague,
            self.over_budget,
            self.not_run,
            self.seeds,
            size(self.largest),
            self.seconds
        )
    }
}

fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// A worker restarted more often than this within one range gives the rest up.
const MAX_RESTARTS: usize = 20;

/// Runs inputs `from..to` of reader `name` in worker processes, restarting past an input that
/// aborted or hung.
fn supervise(args: &Args, name: &str, from: u64, to: u64, work: &Path) -> Tally {
    let mut tally = Tally::default();
    let start = Instant::now();
    let limit = Duration::from_secs_f64(args.timeout);
    let mut next = from;
    let mut restarts = 0;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("fuzz"));
    while next < to {
        if restarts > MAX_RESTARTS {
            tally.not_run += to - next;
            tally
                .failures
                .push((next, format!("gave up after {MAX_RESTARTS} restarts")));
            break;
        }
        restarts += 1;
        let spawned = Command::new(&exe)
            .args(["--worker", "--reader", name])
            .args(["--seed", &args.seed.to_string()])
            .args(["--from", &next.to_string(), "--to", &to.to_string()])
            .arg("--work")
            .arg(work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                tally.not_run += to - next;
                tally
                    .failures
                    .push((next, format!("cannot start a worker: {e}")));
                break;
            }
        };
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        // The seeds may take a while (a checkpoint is written through Burn).
        let mut wait = limit.max(Duration::from_secs(300));
        let mut ready = false;
        loop {
            match rx.recv_timeout(wait) {
                Ok(line) if line.starts_with("ready") => {
                    tally.seeds = line[5..].trim().parse().unwrap_or(0);
                    ready = true;
                    wait = limit;
                }
                Ok(line) if line == "done" => break,
                Ok(line) => {
                    let mut parts = line.splitn(5, ' ');
                    let fields = (
                        parts.next().and_then(|s| s.parse::<u64>().ok()),
                        parts.next(),
                        parts.next().and_then(|s| s.parse::<usize>().ok()),
                        parts.next().and_then(|s| s.parse::<usize>().ok()),
                    );
                    let (Some(index), Some(code), Some(largest), Some(budget)) = fields else {
                        tally
                            .failures
                            .push((next, format!("unreadable report `{line}`")));
                        break;
                    };
                    let message = parts.next().unwrap_or("").to_string();
                    tally.inputs += 1;
                    tally.largest = tally.largest.max(largest);
                    match code {
                        "A" => tally.accepted += 1,
                        "E" => tally.clear += 1,
                        "V" => {
                            tally.vague += 1;
                            tally
                                .failures
                                .push((index, format!("vague error: {message}")));
                        }
                        _ => {
                            tally.panics += 1;
                            tally.failures.push((index, format!("panic: {message}")));
                        }
                    }
                    if largest > budget {
                        tally.over_budget += 1;
                        tally.failures.push((
                            index,
                            format!(
                                "allocated {} at once where the input justifies {}",
                                size(largest),
                                size(budget)
                            ),
                        ));
                    }
                    next = index + 1;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if ready {
                        tally.inputs += 1;
                        tally.hangs += 1;
                        tally.failures.push((
                            next,
                            format!("hang: no result after {:.1} s", wait.as_secs_f64()),
                        ));
                        next += 1;
                    } else {
                        tally
                            .failures
                            .push((next, "the worker never got ready".into()));
                    }
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait().map_or("unknown".into(), |s| s.to_string());
                    if ready && next < to {
                        tally.inputs += 1;
                        tally.aborts += 1;
                        tally
                            .failures
                            .push((next, format!("abort: the worker died ({status})")));
                        next += 1;
                    } else if !ready {
                        tally
                            .failures
                            .push((next, format!("the worker failed to start ({status})")));
                        restarts = MAX_RESTARTS + 1;
                    }
                    break;
                }
            }
        }
        let _ = child.wait();
    }
    tally.seconds = start.elapsed().as_secs_f64();
    tally
}

/// Splits `total` inputs among `readers`, then each reader's range into `jobs` pieces.
fn chunks(total: u64, readers: &[&'static str], jobs: usize) -> Vec<(usize, u64, u64)> {
    let k = readers.len() as u64;
    let mut out = Vec::new();
    for r in 0..readers.len() {
        let n = total / k + u64::from((r as u64) < total % k);
        let pieces = (jobs as u64).clamp(1, n.max(1));
        for p in 0..pieces {
            let (from, to) = (n * p / pieces, n * (p + 1) / pieces);
            if to > from {
                out.push((r, from, to));
            }
        }
    }
    out
}

fn supervise_all(args: &Args, readers: &[&'static str]) -> ExitCode {
    let work = match tempfile::Builder::new().prefix("rescom-fuzz").tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("cannot make a work directory: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "fuzzing {} readers with {} inputs (seed {}, {} jobs, {} s per input at most)",
        readers.len(),
        args.inputs,
        args.seed,
        args.jobs,
        args.timeout
    );
    let start = Instant::now();
    let queue = Arc::new(Mutex::new(chunks(args.inputs, readers, args.jobs)));
    let tallies: Arc<Mutex<BTreeMap<usize, Tally>>> = Arc::default();
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            let (queue, tallies, work) = (queue.clone(), tallies.clone(), work.path());
            scope.spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    let Some((r, from, to)) = next else { break };
                    let tally = supervise(args, readers[r], from, to, work);
                    eprintln!(
                        "  {} inputs {from}..{to}: {:.1} s{}",
                        readers[r],
                        tally.seconds,
                        if tally.failed() {
                            ", with failures"
                        } else {
                            ""
                        }
                    );
                    tallies
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(r)
                        .or_default()
                        .add(tally);
                }
            });
        }
    });
    let tallies = std::mem::take(&mut *tallies.lock().unwrap_or_else(|e| e.into_inner()));
    let mut total = Tally::default();
    let mut seeds = 0;
    let mut failures = Vec::new();
    for (r, mut tally) in tallies {
        seeds += tally.seeds;
        println!("{}", tally.line(readers[r]));
        failures.extend(
            tally
                .failures
                .drain(..)
                .map(|(i, what)| (readers[r], i, what)),
        );
        total.add(tally);
    }
    total.seeds = seeds;
    println!("{}", total.line("total"));
    println!("wall time {:.1} s", start.elapsed().as_secs_f64());
    if !total.failed() {
        return ExitCode::SUCCESS;
    }
    failures.sort_by_key(|&(name, index, _)| (name, index));
    println!(
        "{} failures; the first ones, each with the command that reproduces it:",
        failures.len()
    );
    for (name, index, what) in failures.iter().take(20) {
        println!("  {name} input {index}: {what}");
        println!(
            "    cargo run --release --example fuzz -- --seed {} --reader {name} --index {index}",
            args.seed
        );
    }
    ExitCode::FAILURE
}

/// `--index`: one input, in this process, with everything said.
fn reproduce(args: &Args, name: &str, index: u64) -> ExitCode {
    install_panic_hook();
    let Some(entry) = entry(name) else {
        eprintln!("unknown reader `{name}` (see --list)");
        return ExitCode::from(2);
    };
    let temp = tempfile::tempdir();
    let dir = match (&args.dump, &temp) {
        (Some(dump), _) => dump.clone(),
        (None, Ok(temp)) => temp.path().to_path_buf(),
        (None, Err(e)) => {
            eprintln!("cannot make a work directory: {e}");
            return ExitCode::from(2);
        }
    };
    let result = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| (entry.make)(&dir).map_err(|e| e.to_string()))
        .and_then(|target| {
            run_one(target.as_ref(), name, &dir, args.seed, index).map_err(|e| e.to_string())
        });
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (verdict, ok) = match &report.outcome {
        Outcome::Accepted => ("accepted".to_string(), true),
        Outcome::Clear(m) => (format!("clear error: {m}"), true),
        Outcome::Vague(m) => (format!("vague error: {m}"), false),
        Outcome::Panic(m) => (format!("panic: {m}"), false),
    };
    println!("{name} input {index} (seed {}): {verdict}", args.seed);
    println!(
        "largest allocation {} (the input justifies {})",
        size(report.largest),
        size(report.budget)
    );
    if args.dump.is_some() {
        println!("the input's files are in {}", dir.display());
    }
    if ok && report.largest <= report.budget {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for e in TARGETS {
            println!("{:<11} {}", e.name, e.about);
        }
        return ExitCode::SUCCESS;
    }
    if args.worker {
        return worker(&args);
    }
    let readers: Vec<&'static str> = if args.reader.is_empty() {
        TARGETS.iter().map(|e| e.name).collect()
    } else {
        let mut names = Vec::new();
        for r in &args.reader {
            match entry(r) {
                Some(e) => names.push(e.name),
                None => {
                    eprintln!("unknown reader `{r}` (see --list)");
                    return ExitCode::from(2);
                }
            }
        }
        names
    };
    if let Some(index) = args.index {
        let [name] = readers[..] else {
            eprintln!("--index needs exactly one --reader");
            return ExitCode::from(2);
        };
        return reproduce(&args, name, index);
    }
    supervise_all(&args, &readers)
}
