//! `cargo xtask test`: the steps, each timed, and one closing line counting every test that ran.

use std::time::{Duration, Instant};

use crate::run::{libtest_counts, nextest_counts, run, run_captured, run_with, Counts};
use crate::tools::{
    android_c_env, ensure_components, ensure_nextest, ensure_test_packages, install_kotlinc,
    ANDROID_TARGET,
};
use crate::{bindings, cargo, kotlin, soak, Result};

/// One finished step, for the summary.
struct Done {
    name: &'static str,
    took: Duration,
    outcome: std::result::Result<Option<Counts>, String>,
}

#[derive(Default)]
struct Report {
    steps: Vec<Done>,
}

impl Report {
    /// Runs a step and records it. A step that fails to run (no counts) stops the run; a test
    /// step whose tests failed is recorded and the run goes on, so one run shows every failure.
    fn step(
        &mut self,
        name: &'static str,
        work: impl FnOnce() -> Result<Option<Counts>>,
    ) -> Result {
        eprintln!("\n==> {name}");
        let started = Instant::now();
        let outcome = work();
        let took = started.elapsed();
        let stop = outcome.as_ref().err().cloned();
        match &outcome {
            Ok(Some(c)) => eprintln!(
                "<== {name}: {} passed, {} failed ({took:.1?})",
                c.passed, c.failed
            ),
            Ok(None) => eprintln!("<== {name}: ok ({took:.1?})"),
            Err(e) => eprintln!("<== {name}: FAILED ({took:.1?}): {e}"),
        }
        self.steps.push(Done {
            name,
            took,
            outcome,
        });
        match stop {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn totals(&self) -> Counts {
        let mut total = Counts::default();
        for step in &self.steps {
            if let Ok(Some(c)) = step.outcome {
                total += c;
            }
        }
        total
    }

    /// The per-step table, then `N passed, N failed` as the very last line.
    fn print(&self, started: Instant) {
        eprintln!("\nxtask test: steps");
        for step in &self.steps {
            let what = match &step.outcome {
                Ok(Some(c)) => format!("{} passed, {} failed", c.passed, c.failed),
                Ok(None) => "ok".to_string(),
                Err(_) => "FAILED".to_string(),
            };
            eprintln!(
                "  {:>7.1}s  {:<48} {what}",
                step.took.as_secs_f64(),
                step.name
            );
        }
        eprintln!("  {:>7.1}s  total", started.elapsed().as_secs_f64());
        let total = self.totals();
        println!("{} passed, {} failed", total.passed, total.failed);
    }
}

/// Tests that ran and failed are not a failure to run: they become counts.
fn counted(ok: bool, counts: Option<Counts>, what: &str) -> Result<Option<Counts>> {
    match counts {
        Some(c) => Ok(Some(c)),
        None if ok => Err(format!("{what} reported no counts")),
        None => Err(format!("{what} failed before reporting")),
    }
}

pub fn test() -> Result {
    let started = Instant::now();
    let mut report = Report::default();
    let result = steps(&mut report);
    report.print(started);
    result?;
    let total = report.totals();
    if total.failed > 0 {
        return Err(format!("{} tests failed", total.failed));
    }
    if total.passed == 0 {
        return Err("no test ran".into());
    }
    Ok(())
}

fn steps(report: &mut Report) -> Result {
    let cargo = cargo();
    report.step("tools (rustfmt, clippy, nextest, Debian packages)", || {
        ensure_components()?;
        ensure_nextest()?;
        ensure_test_packages()?;
        Ok(None)
    })?;
    // The Kotlin compiler is a download: fetch it while the Rust steps compile.
    let kotlinc = std::thread::spawn(install_kotlinc);
    report.step("fmt --check", || {
        run(&cargo, &["fmt", "--all", "--", "--check"]).map(|_| None)
    })?;
    report.step(
        "clippy -D warnings, every target, for Android arm64",
        || android_clippy().map(|_| None),
    )?;
    report.step("build every test target, the cdylib and the CLI", || {
        build_tests().map(|_| None)
    })?;
    report.step("rust tests (nextest)", || {
        let (ok, lines) = run_captured(
            &cargo,
            &["nextest", "run", "--workspace", "--no-fail-fast"],
            &[],
        )?;
        counted(ok, nextest_counts(&lines), "nextest")
    })?;
    report.step("contract (schemathesis against the simulator)", || {
        crate::contract::run_contract().map(Some)
    })?;
    report.step(
        "soak: 200 seeded delivery days (deterministic simulation)",
        || {
            let options = soak::Options::parse(&["--seeds".into(), "200".into()])?;
            let ok = soak::soak(&options).is_ok();
            Ok(Some(Counts {
                passed: u64::from(ok),
                failed: u64::from(!ok),
            }))
        },
    )?;
    report.step("doc tests", || {
        let (ok, lines) = run_captured(&cargo, &["test", "--workspace", "--doc"], &[])?;
        let counts = libtest_counts(&lines);
        // A doc test that fails to compile prints no result line for its crate.
        if !ok && counts.failed == 0 {
            return Err("the doc tests failed to build".into());
        }
        Ok(Some(counts))
    })?;
    let mut generated = None;
    report.step("bindings (Kotlin, Swift)", || {
        generated = Some(bindings::generate()?);
        Ok(None)
    })?;
    if let Some(dir) = generated {
        report.step("kotlin tests (JVM)", || {
            kotlinc
                .join()
                .map_err(|_| "installing kotlinc panicked".to_string())??;
            kotlin::run_tests(&dir).map(Some)
        })?;
    }
    Ok(())
}

/// One build of everything the tests use: every test target, plus the cdylib and the binaries
/// (`upn-driver` for the Kotlin tests, `uniffi-bindgen`). Selecting the whole workspace with its
/// test targets gives the same feature set as `cargo nextest run --workspace`, so that run
/// compiles nothing again.
pub fn build_tests() -> Result {
    run(
        &cargo(),
        &["build", "--workspace", "--lib", "--bins", "--tests"],
    )
}

/// clippy with warnings denied over every target of the workspace, checked for Android arm64:
/// one check pass that is both the lint and the proof that the FFI crate and everything below it
/// compile for the platform (the platform code is what ships; the host build is tested).
pub fn android_clippy() -> Result {
    let env = android_c_env()?;
    run_with(
        &cargo(),
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--target",
            ANDROID_TARGET,
            "--",
            "-D",
            "warnings",
        ],
        &env,
    )
}
