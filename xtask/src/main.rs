//! Developer commands, so the README has one way to do each thing.
//!
//! - `cargo xtask test`: format check, clippy with warnings denied, every test in the workspace.
//! - `cargo xtask bindings`: generate the Kotlin and Swift bindings into `target/bindings/`.
//!
//! Each step installs what it needs (rustup components) so a fresh machine needs nothing by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bindings") => bindings().map(|_| ()),
        _ => {
            eprintln!("usage: cargo xtask <test|bindings>");
            eprintln!("  test      fmt check, clippy -D warnings, every test");
            eprintln!("  bindings  generate Kotlin and Swift bindings into target/bindings/");
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

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs a command in the workspace root, echoing it, failing on a non-zero exit.
fn run(program: &str, args: &[&str]) -> Result {
    eprintln!("$ {program} {}", args.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    eprintln!("  ({:.0?})", started.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// rustfmt and clippy come with rustup's default profile, but not with every install.
fn ensure_components() -> Result {
    let cargo = cargo();
    for (component, probe) in [("rustfmt", "fmt"), ("clippy", "clippy")] {
        if !succeeds(&cargo, &[probe, "--version"]) {
            run("rustup", &["component", "add", component])?;
        }
    }
    Ok(())
}

fn test() -> Result {
    let cargo = cargo();
    ensure_components()?;
    run(&cargo, &["fmt", "--all", "--", "--check"])?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run(&cargo, &["test", "--workspace"])?;
    // Generating the bindings proves the UniFFI surface still generates for both platforms.
    bindings()?;
    Ok(())
}

/// Generates Kotlin and Swift bindings from the built library; returns the output folder.
fn bindings() -> Result<PathBuf> {
    let cargo = cargo();
    run(&cargo, &["build", "-p", "upn-ffi"])?;
    let lib = root().join("target").join("debug").join(format!(
        "{}upn_ffi.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    let lib = lib.to_string_lossy().into_owned();
    let out = root().join("target").join("bindings");
    for language in ["kotlin", "swift"] {
        let dir = out.join(language);
        let dir = dir.to_string_lossy().into_owned();
        run(
            &cargo,
            &[
                "run",
                "--quiet",
                "-p",
                "upn-ffi",
                "--bin",
                "uniffi-bindgen",
                "--",
                "generate",
                "--library",
                &lib,
                "--language",
                language,
                "--out-dir",
                &dir,
                "--config",
                "uniffi.toml",
                "--no-format",
            ],
        )?;
    }
    eprintln!("bindings written to {}", out.display());
    Ok(out)
}
