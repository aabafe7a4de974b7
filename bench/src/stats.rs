//! Timing, percentiles and the child-process wrapper that reads peak memory.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{report, Result};

/// `measure CMD ARGS..`: runs CMD (stdout and stderr passed through), then prints
/// `{"wall_ms", "max_rss_kb", "ok"}`. This process has exactly one child, so
/// `getrusage(RUSAGE_CHILDREN)` is that child's own peak resident set (Linux: kilobytes).
pub fn measure(args: &[String]) -> Result {
    let (program, rest) = args
        .split_first()
        .ok_or("measure: give the command to run")?;
    let started = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .status()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    let wall = started.elapsed();
    report(serde_json::json!({
        "wall_ms": ms(wall),
        "max_rss_kb": children_max_rss_kb(),
        "ok": status.success(),
    }));
    Ok(())
}

fn children_max_rss_kb() -> i64 {
    // SAFETY: getrusage only writes the struct we hand it; zeroed is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc == 0 {
        usage.ru_maxrss
    } else {
        -1
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `f` and returns how long it took.
pub fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let started = Instant::now();
    let value = f()?;
    Ok((started.elapsed(), value))
}

/// The `p`-th percentile (0..=100) by nearest rank, in milliseconds.
pub fn percentile(samples: &[Duration], p: f64) -> f64 {
    let mut sorted: Vec<Duration> = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    ms(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub fn median(samples: &[Duration]) -> f64 {
    percentile(samples, 50.0)
}
