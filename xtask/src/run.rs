//! Running commands: echoed, timed, failing on a non-zero exit; optionally with their output
//! captured (while still shown) so a test step can count what passed and failed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{root, Result};

/// A command in the workspace root, without the variables `cargo run` set for the xtask itself:
/// a build script that watches one (ring watches `CARGO_MANIFEST_DIR`) would otherwise be
/// rebuilt, with everything above it, whenever `cargo xtask test` and a plain `cargo test` take
/// turns in one target folder.
pub fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_cargo_run = key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_PKG_")
            || matches!(
                key.as_ref(),
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.current_dir(root()).stdin(Stdio::null());
    cmd
}

/// Runs a command in the workspace root, echoing it, failing on a non-zero exit.
pub fn run(program: &str, args: &[&str]) -> Result {
    run_with(program, args, &[])
}

pub fn run_with(program: &str, args: &[&str], env: &[(&str, String)]) -> Result {
    eprintln!("$ {program} {}", args.join(" "));
    let started = Instant::now();
    let status = command(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    eprintln!("  ({:.1?})", started.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Like [`run_with`], but also returns every line the command printed (stdout and stderr), which
/// are shown as they come. The exit status is returned, not turned into an error: a test run
/// that failed still has counts to report.
pub fn run_captured(
    program: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> Result<(bool, Vec<String>)> {
    eprintln!("$ {program} {}", args.join(" "));
    let mut child = command(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    let stdout = child.stdout.take().map(|s| tee(s, false));
    let stderr = child.stderr.take().map(|s| tee(s, true));
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {program}: {e}"))?;
    let mut lines = Vec::new();
    for reader in [stdout, stderr].into_iter().flatten() {
        lines.extend(reader.join().unwrap_or_default());
    }
    Ok((status.success(), lines))
}

/// Copies a child's stream to ours line by line, keeping the lines.
pub fn tee(
    stream: impl Read + Send + 'static,
    to_stderr: bool,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if to_stderr {
                let _ = writeln!(std::io::stderr(), "{line}");
            } else {
                let _ = writeln!(std::io::stdout(), "{line}");
            }
            kept.push(line);
        }
        kept
    })
}

pub fn succeeds(program: &str, args: &[&str]) -> bool {
    command(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = command(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Tests that passed and failed in one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// The leading number of `text` (after spaces).
fn leading_number(text: &str) -> Option<u64> {
    let text = text.trim_start();
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// nextest's closing line: `Summary [ 12.3s] 212 tests run: 210 passed, 1 failed, 1 timed out, 3 skipped`.
/// Everything after `tests run:` that is neither passed nor skipped counts as failed.
pub fn nextest_counts(lines: &[String]) -> Option<Counts> {
    let line = lines.iter().rev().find(|l| l.contains("tests run:"))?;
    let (_, tail) = line.split_once("tests run:")?;
    let mut counts = Counts::default();
    for part in tail.split(',') {
        let Some(n) = leading_number(part) else {
            continue;
        };
        let word = part
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit());
        let word = word.trim_start();
        if word.starts_with("passed") {
            counts.passed += n;
        } else if !word.starts_with("skipped") {
            counts.failed += n;
        }
    }
    Some(counts)
}

/// libtest's lines, summed: `test result: ok. 12 passed; 0 failed; 0 ignored; ...`.
pub fn libtest_counts(lines: &[String]) -> Counts {
    let mut counts = Counts::default();
    for line in lines {
        let Some((_, tail)) = line.split_once("test result:") else {
            continue;
        };
        for part in tail.split(';') {
            let part = part.trim_start_matches([' ', 'o', 'k', 'F', 'A', 'I', 'L', 'E', 'D', '.']);
            if let Some(n) = leading_number(part) {
                if part.contains("passed") {
                    counts.passed += n;
                } else if part.contains("failed") {
                    counts.failed += n;
                }
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn nextest_summary_is_counted() {
        let ok = lines(
            "  PASS [ 0.1s] a\n     Summary [  20.650s] 212 tests run: 212 passed, 3 skipped",
        );
        assert_eq!(
            nextest_counts(&ok),
            Some(Counts {
                passed: 212,
                failed: 0
            })
        );
        let bad = lines(
            "Summary [ 9s] 10 tests run: 7 passed (1 slow), 2 failed, 1 timed out, 0 skipped",
        );
        assert_eq!(
            nextest_counts(&bad),
            Some(Counts {
                passed: 7,
                failed: 3
            })
        );
        assert_eq!(nextest_counts(&lines("error: build failed")), None);
    }

    #[test]
    fn libtest_results_are_summed() {
        let out = lines(
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
             test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        assert_eq!(
            libtest_counts(&out),
            Counts {
                passed: 15,
                failed: 2
            }
        );
    }
}
