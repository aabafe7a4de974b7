//! `cargo xtask fuzz --seconds N [--target NAME]`: every cargo-fuzz target in `fuzz/` (or one)
//! for N seconds each, seeded with the bad-input corpus (`tests/corpus/`), then one line per
//! target with its executions and findings. Not part of `cargo xtask test` or CI: it needs nightly and minutes of CPU.
//!
//! cargo-fuzz is installed into `target/tools/` when missing, and nightly through rustup. Builds
//! go to `target/fuzz/`; the corpus each run grows is kept in `target/fuzz/corpus/<target>/`, and
//! what libFuzzer finds (crash-, oom-, timeout-, leak- files) in `target/fuzz/artifacts/<target>/`:
//! each finding becomes a case of `tests/corpus/` with its fix.

use std::path::{Path, PathBuf};

use crate::run::{output, run, run_captured, run_with};
use crate::{cargo, path_str, root, target_dir, Result};

/// Each target and the corpus folders that seed it.
const TARGETS: &[(&str, &[&str])] = &[
    ("feed", &["tests/corpus/upn"]),
    ("tracking_batch", &["tests/corpus/upn"]),
    ("upload_answer", &["tests/corpus/upn"]),
    ("image_ingest", &["tests/corpus/images"]),
];

/// What one target's run came to.
struct Outcome {
    target: &'static str,
    executions: Option<u64>,
    findings: Vec<PathBuf>,
}

pub fn fuzz(args: &[String]) -> Result {
    let (seconds, only) = parse_args(args)?;
    if let Some(name) = &only {
        if !TARGETS.iter().any(|(t, _)| t == name) {
            let names: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
            return Err(format!(
                "no fuzz target {name:?}; the targets are {names:?}"
            ));
        }
    }
    ensure_nightly()?;
    let cargo_fuzz = ensure_cargo_fuzz()?;
    let fuzz_target = target_dir().join("fuzz");
    let env = [("RUSTUP_TOOLCHAIN", "nightly".to_string())];
    let dirs = [
        "--fuzz-dir",
        "fuzz",
        "--target-dir",
        &path_str(&fuzz_target),
    ];
    let fuzz = path_str(&cargo_fuzz);
    let mut build = vec!["fuzz", "build"];
    build.extend(dirs);
    run_with(&fuzz, &build, &env)?;
    let mut outcomes = Vec::new();
    for &(target, seeds) in TARGETS {
        if only.as_deref().is_some_and(|o| o != target) {
            continue;
        }
        outcomes.push(run_target(
            &fuzz,
            &dirs,
            &env,
            &fuzz_target,
            target,
            seeds,
            seconds,
        )?);
    }
    eprintln!();
    let mut total = 0;
    for o in &outcomes {
        let execs = o.executions.map_or("?".to_string(), |n| n.to_string());
        eprintln!(
            "fuzz {:<16} {seconds:>5} s  {execs:>12} executions  {} finding(s)",
            o.target,
            o.findings.len()
        );
        for f in &o.findings {
            eprintln!("    {}", f.display());
        }
        total += o.findings.len();
    }
    if total == 0 {
        Ok(())
    } else {
        Err(format!(
            "{total} finding(s): turn each into a tests/corpus case and fix it"
        ))
    }
}

/// `[--seconds N] [--target NAME]`: N seconds per target (default 60), every target or one.
fn parse_args(args: &[String]) -> Result<(u64, Option<String>)> {
    let usage = || "usage: cargo xtask fuzz [--seconds N] [--target NAME]".to_string();
    let (mut seconds, mut only) = (60, None);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(usage)?;
        match flag.as_str() {
            "--seconds" => {
                seconds = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("--seconds takes a whole number above 0, not {value:?}")
                })?
            }
            "--target" => only = Some(value.clone()),
            _ => return Err(usage()),
        }
    }
    Ok((seconds, only))
}

fn run_target(
    fuzz: &str,
    dirs: &[&str],
    env: &[(&str, String)],
    fuzz_target: &Path,
    target: &'static str,
    seeds: &[&str],
    seconds: u64,
) -> Result<Outcome> {
    let corpus = fuzz_target.join("corpus").join(target);
    let artifacts = fuzz_target.join("artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let before = findings(&artifacts);
    let corpus = path_str(&corpus);
    let seeds: Vec<String> = seeds.iter().map(|s| path_str(&root().join(s))).collect();
    let max_time = format!("-max_total_time={seconds}");
    let prefix = format!("-artifact_prefix={}/", path_str(&artifacts));
    let mut args = vec!["fuzz", "run"];
    args.extend(dirs);
    args.extend([target, corpus.as_str()]);
    args.extend(seeds.iter().map(String::as_str));
    // A finding stops libFuzzer; the next target still runs, and the finding is reported.
    args.extend([
        "--",
        max_time.as_str(),
        prefix.as_str(),
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        // jpeg-decoder decodes on worker threads whose thread-locals outlive the call, which
        // LeakSanitizer reports as a leak (the first 1500 s run's only finding, now a corpus
        // case). AddressSanitizer's memory-error checks stay on.
        "-detect_leaks=0",
    ]);
    let (_, lines) = run_captured(fuzz, &args, env)?;
    let findings = findings(&artifacts)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    Ok(Outcome {
        target,
        executions: executions(&lines),
        findings,
    })
}

/// libFuzzer's `stat::number_of_executed_units: N` line.
fn executions(lines: &[String]) -> Option<u64> {
    lines.iter().rev().find_map(|l| {
        l.trim()
            .strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
    })
}

fn findings(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn ensure_nightly() -> Result {
    let toolchains = output("rustup", &["toolchain", "list"]).unwrap_or_default();
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        run(
            "rustup",
            &["toolchain", "install", "nightly", "--profile", "minimal"],
        )?;
    }
    Ok(())
}

/// cargo-fuzz from crates.io into `target/tools/`, built once.
fn ensure_cargo_fuzz() -> Result<PathBuf> {
    let tools = target_dir().join("tools");
    let bin = tools.join("bin").join("cargo-fuzz");
    if !bin.is_file() {
        run(
            &cargo(),
            &[
                "install",
                "cargo-fuzz",
                "--locked",
                "--root",
                &path_str(&tools),
            ],
        )?;
    }
    Ok(bin)
}
