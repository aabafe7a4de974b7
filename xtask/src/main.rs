//! Developer commands, so the README has one way to do each thing.
//!
//! - `cargo xtask test`: format check, clippy with warnings denied (for Android arm64, which is
//!   also the Android check), one build of every test target, every Rust test (nextest), the
//!   doc tests, the Kotlin/Swift binding generation and the Kotlin tests on the JVM against the
//!   simulator. Each step prints its time; the last line is `N passed, N failed` over every test
//!   that ran. This is what CI runs.
//! - `cargo xtask bindings`: generate the Kotlin and Swift bindings into `target/bindings/`.
//! - `cargo xtask kotlin-test`: only the bindings and the Kotlin tests.
//! - `cargo xtask android-check`: only clippy for `aarch64-linux-android`.
//! - `cargo xtask contract`: schemathesis (into `target/tools/`) against `upn-driver sim` with
//!   `docs/upn-api.openapi.yaml`, every check and phase; any failure fails (also a test step).
//! - `cargo xtask soak --seeds N [--steps M] [--seed S]`: the deterministic simulation harness
//!   (`tests/tests/soak/`); `cargo xtask test` plays 200 seeds.
//! - `cargo xtask fuzz --seconds N`: each cargo-fuzz target of `fuzz/` for N seconds, with its
//!   executions and findings (nightly; not part of `test` or CI).
//! - `cargo xtask bench [--rounds N] [--deliveries N] [--knobs] [--skip-aarch64]`: the benchmark
//!   table of issue 11 (release build, references with vips and libjpeg-turbo from apt) into
//!   `target/bench/bench.json` and `docs/benchmarks.md` (not part of `test` or CI).
//!
//! Each step installs what it needs when it is missing (rustup components and targets, Debian
//! packages named one by one and never through Recommends, the Kotlin compiler from npm into
//! `target/tools/`), so a fresh machine needs nothing by hand.
//!
//! One build per profile: every cargo invocation of the test run selects the whole workspace
//! with its test targets, so features unify the same way each time (the test-only `failpoints`
//! feature included) and upn-core is compiled once for the tests and once (checked) for Android.

mod bench;
mod bindings;
mod contract;
mod fuzz;
mod kotlin;
mod run;
mod soak;
mod test;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::test(),
        Some("bindings") => test::build_tests()
            .and_then(|_| bindings::generate())
            .map(|_| ()),
        Some("kotlin-test") => test::build_tests()
            .and_then(|_| bindings::generate())
            .and_then(|b| kotlin::run_tests(&b))
            .map(|_| ()),
        Some("android-check") => test::android_clippy(),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("soak") => soak::Options::parse(&args[1..]).and_then(|o| soak::soak(&o).map(|_| ())),
        Some("contract") => test::build_tests()
            .and_then(|_| contract::run_contract())
            .and_then(|c| match c.failed {
                0 => Ok(()),
                n => Err(format!("schemathesis found {n} unique failures")),
            }),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|bindings|kotlin-test|android-check|contract|soak|fuzz|bench>"
            );
            eprintln!("  test           fmt check, clippy -D warnings (Android arm64), every test (Rust and Kotlin)");
            eprintln!("  bindings       generate Kotlin and Swift bindings into target/bindings/");
            eprintln!("  kotlin-test    generate the bindings and run the Kotlin tests on the JVM");
            eprintln!(
                "  android-check  clippy -D warnings for aarch64-linux-android (the Android check)"
            );
            eprintln!(
                "  contract       schemathesis against the simulator with docs/upn-api.openapi.yaml"
            );
            eprintln!("  soak           --seeds N [--steps M] [--seed S] [--jobs J] [--release]: the deterministic simulation");
            eprintln!(
                "  fuzz [--seconds N]  every cargo-fuzz target N seconds (default 60); not in CI"
            );
            eprintln!("  bench [--rounds N] [--deliveries N] [--knobs] [--skip-aarch64]  the benchmark table into docs/benchmarks.md; not in CI");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Where the test build puts the host artifacts (the cdylib, `upn-driver`, `uniffi-bindgen`).
fn debug_dir() -> PathBuf {
    target_dir().join("debug")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
