//! The deterministic simulation harness (`cargo xtask soak --seeds N [--steps M] [--seed S]`).
//!
//! Each seed plays a delivery day (`plan`) against the core opened on an in-process UPN over the
//! simulator's state (`upn`), with a manual clock, seeded capture ids and seeded UPN faults, so a
//! day runs in milliseconds and replays exactly. After every step, and after a long healthy
//! spell at the end of the day, the invariants (`check`) must hold. A failing seed prints the
//! one line that replays it, and the run is shrunk to the fewest steps that still fail.
//!
//! The hooks it registers are process-wide: this binary holds only these tests, each run by
//! nextest in a process of its own, and the days of one run play one after another.

mod check;
mod day;
mod plan;
mod upn;

use std::collections::BTreeMap;
use std::time::Instant;

use day::{Counts, Day};
use plan::{plan, Step};

const DEFAULT_STEPS: usize = 120;

/// The first broken invariant of a run.
#[derive(Debug, Clone)]
struct Violation {
    /// Index of the step after which it was seen (`steps.len()`: at the end of the day).
    step: usize,
    what: String,
}

/// Plays `steps` as seed `seed`'s day; the counts, and the first violation if any.
fn play(seed: u64, steps: &[Step]) -> (Counts, Option<Violation>) {
    let mut day = match Day::new(seed) {
        Ok(day) => day,
        Err(what) => return (Counts::default(), Some(Violation { step: 0, what })),
    };
    for (i, step) in steps.iter().enumerate() {
        let result = day.run(i, step).and_then(|_| check::all(&day, false));
        if let Err(what) = result {
            return (
                day.counts,
                Some(Violation {
                    step: i,
                    what: format!("{what} (after {step:?})"),
                }),
            );
        }
    }
    let end = steps.len();
    let settled = day.settle();
    let result = settled.and_then(|_| check::all(&day, true));
    let counts = day.counts.clone();
    if std::env::var("UPN_SOAK_VERBOSE").is_ok() {
        let r = day.upn.received();
        let stats = day.driver().ok().and_then(|d| d.outbox_stats().ok());
        eprintln!(
            "seed {seed}: captured {} gone {} | UPN pods {} images {} rejected {} batches {} | {stats:?}",
            day.model.captured.len(),
            day.model.gone.len(),
            r.pods.len(),
            r.images.len(),
            r.rejected.len(),
            r.event_batches_handed_out
        );
    }
    (
        counts,
        result.err().map(|what| Violation { step: end, what }),
    )
}

/// Delta debugging over the step list: drops chunks, then single steps, while it still fails.
fn shrink(seed: u64, mut steps: Vec<Step>) -> Vec<Step> {
    let mut chunk = steps.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        while start < steps.len() {
            let end = (start + chunk).min(steps.len());
            let mut candidate = steps.clone();
            candidate.drain(start..end);
            if !candidate.is_empty() && play(seed, &candidate).1.is_some() {
                steps = candidate;
            } else {
                start += chunk;
            }
        }
        chunk /= 2;
    }
    steps
}

#[derive(Debug, Default)]
struct Totals {
    seeds: u64,
    counts: Counts,
    failures: Vec<(u64, usize, Violation)>,
}

impl Totals {
    fn add(&mut self, c: &Counts) {
        let t = &mut self.counts;
        t.steps += c.steps;
        t.crashes += c.crashes;
        t.crashes_in_tx += c.crashes_in_tx;
        t.reopens += c.reopens;
        t.disk_full += c.disk_full;
        t.busy += c.busy;
        t.busy_held += c.busy_held;
        t.busy_errors += c.busy_errors;
        t.inbox_full += c.inbox_full;
        t.inbox_spilled += c.inbox_spilled;
        t.inbox_full_everywhere += c.inbox_full_everywhere;
        t.clock_jumps += c.clock_jumps;
        t.clock_back += c.clock_back;
        t.flaps += c.flaps;
        for (k, v) in &c.upn_faults {
            *t.upn_faults.entry(k).or_default() += v;
        }
    }
}

fn run(seeds: impl Iterator<Item = u64>, steps: usize, shrink_failures: bool) -> Totals {
    let mut totals = Totals::default();
    for seed in seeds {
        let planned = plan(seed, steps);
        let (counts, violation) = play(seed, &planned);
        totals.seeds += 1;
        totals.add(&counts);
        if let Some(v) = violation {
            let upto = (v.step + 1).min(planned.len());
            println!(
                "soak: seed {seed} FAILED at step {}: {}\n  replay: cargo xtask soak --seed {seed} --steps {upto}",
                v.step, v.what
            );
            if shrink_failures {
                let shrunk = shrink(seed, planned[..upto].to_vec());
                let again = play(seed, &shrunk).1;
                println!("  shrunk to {} steps: {shrunk:?}", shrunk.len());
                if let Some(again) = again {
                    println!("  shrunk run fails with: {}", again.what);
                }
            }
            totals.failures.push((seed, upto, v));
        }
    }
    totals
}

fn report(t: &Totals, started: Instant) -> String {
    let c = &t.counts;
    let faults: u64 = c.upn_faults.values().sum();
    let per_kind: BTreeMap<_, _> = c.upn_faults.iter().collect();
    format!(
        "soak: {} seeds, {} steps, {} crashes ({} inside a transaction), {} reopens, {} disk-full, {} database-busy (lock taken in {}, {} busy errors), {} inbox disk-full ({} spilled, {} whole folder), {} clock jumps ({} backwards), {} connectivity flaps, {} UPN faults {:?}, {} violations, {:.1}s",
        t.seeds,
        c.steps,
        c.crashes,
        c.crashes_in_tx,
        c.reopens,
        c.disk_full,
        c.busy,
        c.busy_held,
        c.busy_errors,
        c.inbox_full,
        c.inbox_spilled,
        c.inbox_full_everywhere,
        c.clock_jumps,
        c.clock_back,
        c.flaps,
        faults,
        per_kind,
        t.failures.len(),
        started.elapsed().as_secs_f64()
    )
}

/// The totals as `key=value` words, which `cargo xtask soak` sums over its parallel runs.
fn machine_line(t: &Totals) -> String {
    let c = &t.counts;
    let mut line = format!(
        "soak-totals seeds={} steps={} crashes={} crashes_in_tx={} reopens={} disk_full={} busy={} busy_held={} busy_errors={} inbox_full={} inbox_spilled={} inbox_full_everywhere={} clock_jumps={} clock_back={} flaps={} violations={}",
        t.seeds, c.steps, c.crashes, c.crashes_in_tx, c.reopens, c.disk_full, c.busy,
        c.busy_held, c.busy_errors, c.inbox_full, c.inbox_spilled, c.inbox_full_everywhere,
        c.clock_jumps, c.clock_back, c.flaps, t.failures.len()
    );
    for (kind, n) in &c.upn_faults {
        line.push_str(&format!(" fault:{kind}={n}"));
    }
    line
}

/// `--seeds N [--steps M] [--seed S]`: N seeds from S (default 0), or just seed S.
fn parse(args: &str) -> Result<(u64, u64, usize), String> {
    let mut seeds = None;
    let mut steps = DEFAULT_STEPS;
    let mut first = None;
    let mut words = args.split_whitespace();
    while let Some(flag) = words.next() {
        let value = words.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        match flag {
            "--seeds" => seeds = Some(n),
            "--steps" => steps = n as usize,
            "--seed" => first = Some(n),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let count = seeds.unwrap_or(if first.is_some() { 1 } else { 200 });
    Ok((first.unwrap_or(0), count, steps))
}

/// A few days on every `cargo test`; `cargo xtask test` plays 200 (`cargo xtask soak`).
#[test]
fn a_few_seeded_days_keep_every_invariant() {
    let started = Instant::now();
    let totals = run(0..8, DEFAULT_STEPS, false);
    println!("{}", report(&totals, started));
    assert!(
        totals.failures.is_empty(),
        "{} seeds failed; replay each with the line printed above",
        totals.failures.len()
    );
}

/// `cargo xtask soak` runs this one with `UPN_SOAK="--seeds N --steps M --seed S"`.
#[test]
#[ignore = "run by `cargo xtask soak`"]
fn soak_from_xtask() {
    let args = std::env::var("UPN_SOAK").unwrap_or_default();
    let (first, count, steps) = match parse(&args) {
        Ok(p) => p,
        Err(e) => panic!("UPN_SOAK: {e}"),
    };
    let started = Instant::now();
    let totals = run(first..first.saturating_add(count), steps, true);
    println!("{}", report(&totals, started));
    println!("{}", machine_line(&totals));
    assert!(
        totals.failures.is_empty(),
        "{} seeds failed",
        totals.failures.len()
    );
}
