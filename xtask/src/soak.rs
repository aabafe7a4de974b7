//! `cargo xtask soak --seeds N [--steps M] [--seed S] [--jobs J] [--release]`: the deterministic
//! simulation (`tests/tests/soak/`). Seeds S..S+N are split over J processes (default 2: the
//! harness's hooks are process-wide, so one process plays its days one after another); the
//! closing line sums them: seeds, steps, crashes, faults per kind, violations, wall time.
//! `--release` builds the optimised `soak` profile, for runs of thousands of seeds.
//! A failing seed prints the line that replays it (`cargo xtask soak --seed S --steps M`).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::run::{command, run};
use crate::{cargo, Result};

#[derive(Debug, Clone)]
pub struct Options {
    pub seeds: u64,
    pub first: u64,
    pub steps: Option<u64>,
    pub jobs: u64,
    pub release: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options {
            seeds: 0,
            first: 0,
            steps: None,
            jobs: 2,
            release: false,
        };
        let mut seeds = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--release" {
                o.release = true;
                continue;
            }
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let n: u64 = value
                .parse()
                .map_err(|_| format!("{flag} {value}: not a number"))?;
            match flag.as_str() {
                "--seeds" => seeds = Some(n),
                "--seed" => o.first = n,
                "--steps" => o.steps = Some(n),
                "--jobs" => o.jobs = n.max(1),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        // `--seed S` alone replays that one seed.
        o.seeds = seeds.unwrap_or(if args.iter().any(|a| a == "--seed") {
            1
        } else {
            200
        });
        Ok(o)
    }
}

/// Runs the seeds; the summed totals as a `soak: …` line, or an error naming the failures.
pub fn soak(o: &Options) -> Result<String> {
    let cargo = cargo();
    let mut args = vec!["test", "--workspace", "--test", "soak"];
    if o.release {
        // Optimised, with debug assertions and overflow checks still on (Cargo.toml
        // `[profile.soak]`): for long runs, without the release profile's fat-LTO build.
        args.extend(["--profile", "soak"]);
    }
    run(&cargo, &[&args[..], &["--no-run"]].concat())?;
    let started = Instant::now();
    let jobs = o.jobs.min(o.seeds.max(1));
    let per = o.seeds.div_ceil(jobs);
    let mut children = Vec::new();
    for j in 0..jobs {
        let first = o.first + j * per;
        let count = per.min((o.first + o.seeds).saturating_sub(first));
        if count == 0 {
            continue;
        }
        let mut spec = format!("--seeds {count} --seed {first}");
        if let Some(steps) = o.steps {
            spec.push_str(&format!(" --steps {steps}"));
        }
        let mut child = command(&cargo)
            .args(&args)
            .args([
                "-q",
                "--",
                "--ignored",
                "--exact",
                "soak_from_xtask",
                "--nocapture",
            ])
            .env("UPN_SOAK", spec)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run {cargo}: {e}"))?;
        // Read each child's output as it comes, so no pipe fills while another is waited on.
        let lines = child.stdout.take().map(|s| crate::run::tee(s, false));
        children.push((child, lines));
    }
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut ok = true;
    for (mut child, lines) in children {
        let lines = lines.and_then(|h| h.join().ok()).unwrap_or_default();
        ok &= child.wait().map(|s| s.success()).unwrap_or(false);
        for line in lines {
            let Some(words) = line.strip_prefix("soak-totals ") else {
                continue;
            };
            for word in words.split_whitespace() {
                if let Some((k, v)) = word.split_once('=') {
                    *totals.entry(k.to_string()).or_default() += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    let get = |k: &str| totals.get(k).copied().unwrap_or(0);
    let faults: BTreeMap<&str, u64> = totals
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("fault:").map(|k| (k, *v)))
        .collect();
    let line = format!(
        "soak: {} seeds, {} steps, {} crashes ({} inside a transaction), {} reopens, {} disk-full, {} database-busy (lock taken in {}, {} busy errors), {} inbox disk-full ({} spilled, {} whole folder), {} clock jumps ({} backwards), {} connectivity flaps, {} UPN faults {:?}, {} violations, {:.1}s",
        get("seeds"),
        get("steps"),
        get("crashes"),
        get("crashes_in_tx"),
        get("reopens"),
        get("disk_full"),
        get("busy"),
        get("busy_held"),
        get("busy_errors"),
        get("inbox_full"),
        get("inbox_spilled"),
        get("inbox_full_everywhere"),
        get("clock_jumps"),
        get("clock_back"),
        get("flaps"),
        faults.values().sum::<u64>(),
        faults,
        get("violations"),
        started.elapsed().as_secs_f64()
    );
    println!("{line}");
    if !ok || get("violations") > 0 || get("seeds") != o.seeds {
        return Err(format!(
            "soak failed: {} violations in {} of {} seeds (replay lines above)",
            get("violations"),
            get("seeds"),
            o.seeds
        ));
    }
    Ok(line)
}
