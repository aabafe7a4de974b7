//! `cargo xtask contract`: schemathesis (from PyPI, pinned, into a venv in `target/tools/`) runs
//! every check and every phase (examples, coverage, fuzzing, stateful: POD then image, by the
//! spec's links) against `upn-driver sim` with `docs/upn-api.openapi.yaml`. Any failure fails.
//!
//! The spec is the contract; the simulator is one of its two implementations. Configuration and
//! the one hook (the body's sha256 in `X-Content-SHA256`) are in `xtask/contract/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};

use crate::run::{command, output, run, run_captured, Counts};
use crate::tools::ensure_packages;
use crate::{debug_dir, path_str, root, target_dir, Result};

/// Pinned, so a new release cannot turn the build red (or green) by itself.
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// Fixed: a failure found in CI replays the same on a laptop.
const SEED: &str = "1";

/// Installs schemathesis, starts the simulator, runs it; the counts are 1 passed (no failure)
/// or the unique failures it reported.
pub fn run_contract() -> Result<Counts> {
    let schemathesis = ensure_schemathesis()?;
    let sim = Sim::start()?;
    let dir = root().join("xtask").join("contract");
    let spec = root().join("docs").join("upn-api.openapi.yaml");
    let env = [
        ("PYTHONPATH", path_str(&dir)),
        ("SCHEMATHESIS_HOOKS", "upn_hooks".to_string()),
        // Read by schemathesis.toml, so the key is not on the echoed command line.
        ("UPN_API_KEY", sim.api_key.clone()),
    ];
    let (ok, lines) = run_captured(
        &path_str(&schemathesis),
        &[
            "--config-file",
            &path_str(&dir.join("schemathesis.toml")),
            "run",
            &path_str(&spec),
            "--url",
            &sim.endpoint,
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--seed",
            SEED,
            "--generation-database",
            "none",
            "--no-color",
        ],
        &env,
    )?;
    drop(sim);
    let failures = unique_failures(&lines);
    eprintln!("contract (schemathesis): {failures} unique failures");
    match (ok, failures) {
        (true, 0) => Ok(Counts {
            passed: 1,
            failed: 0,
        }),
        // A non-zero exit without a failure count is an error of the run itself (bad spec, ...).
        (false, 0) => Err("schemathesis failed before reporting failures".into()),
        (_, n) => Ok(Counts {
            passed: 0,
            failed: n,
        }),
    }
}

/// The `N unique failures` of schemathesis' summary (`2 found 2 unique failures`), else 0.
fn unique_failures(lines: &[String]) -> u64 {
    lines
        .iter()
        .rev()
        .find_map(|line| {
            let (head, _) = line.split_once(" unique failure")?;
            head.rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// `target/tools/schemathesis/bin/schemathesis` at the pinned version, installed when missing.
fn ensure_schemathesis() -> Result<PathBuf> {
    let venv = target_dir().join("tools").join("schemathesis");
    let bin = venv.join("bin").join("schemathesis");
    let installed = output(&path_str(&bin), &["--version"])
        .is_some_and(|v| v.trim().ends_with(SCHEMATHESIS_VERSION));
    if installed {
        return Ok(bin);
    }
    // Debian splits `venv` (and its pip) out of python3.
    ensure_packages(&["python3", "python3-venv"])?;
    run("python3", &["-m", "venv", "--clear", &path_str(&venv)])?;
    let pip = venv.join("bin").join("pip");
    run(
        &path_str(&pip),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("schemathesis=={SCHEMATHESIS_VERSION}"),
        ],
    )?;
    Ok(bin)
}

/// `upn-driver sim` on a free loopback port, stopped (by its own pid) when dropped.
struct Sim {
    child: Child,
    /// Kept open: the simulator prints more, and a closed pipe would fail its writes.
    _stdout: Option<BufReader<ChildStdout>>,
    endpoint: String,
    api_key: String,
}

impl Sim {
    fn start() -> Result<Sim> {
        let exe = debug_dir().join("upn-driver");
        if !Path::new(&exe).exists() {
            return Err(format!("{} is missing: build it first", exe.display()));
        }
        let mut child = command(&path_str(&exe))
            .args(["sim", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not start the simulator: {e}"))?;
        let mut first = String::new();
        let mut stdout = child.stdout.take().map(BufReader::new);
        if let Some(reader) = stdout.as_mut() {
            let _ = reader.read_line(&mut first);
        }
        // "UPN simulator: --endpoint URL --depot D  UPN_API_KEY=KEY"
        let word_after = |marker: &str| {
            first
                .split_once(marker)
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .map(str::to_string)
        };
        let (endpoint, api_key) = (word_after("--endpoint "), word_after("UPN_API_KEY="));
        let mut sim = Sim {
            child,
            _stdout: stdout,
            endpoint: String::new(),
            api_key: String::new(),
        };
        match (endpoint, api_key) {
            (Some(endpoint), Some(api_key)) => {
                sim.endpoint = endpoint;
                sim.api_key = api_key;
                Ok(sim)
            }
            _ => Err("the simulator did not print its endpoint and key".into()),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_failures_are_read_from_the_summary() {
        let lines = |t: &str| t.lines().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            unique_failures(&lines(
                "Test cases:\n  576 generated, 2 found 2 unique failures, 6 skipped"
            )),
            2
        );
        assert_eq!(
            unique_failures(&lines("  10 generated, 1 found 1 unique failure")),
            1
        );
        assert_eq!(
            unique_failures(&lines("  1315 generated, 1315 passed, 8 skipped")),
            0
        );
    }
}
