//! README's CLI examples, run as written: the block between `<!-- cli-example:start -->` and
//! `<!-- cli-example:end -->` is parsed line by line and every `$upn …` command runs against a
//! simulator with the README's seed, in a fresh folder (the endpoint is the test simulator's
//! own loopback port instead of 8080). Each must exit 0. Also: reads of the device's data need
//! no API key, and nothing on stderr is an ANSI escape when stderr is not a terminal.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};

use upn_sim::{SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_upn-driver");
const README: &str = include_str!("../../README.md");

/// The example block's lines.
fn example_block() -> Vec<&'static str> {
    let start = README
        .find("<!-- cli-example:start -->")
        .expect("README has the CLI example block");
    let end = README[start..]
        .find("<!-- cli-example:end -->")
        .expect("the block ends")
        + start;
    README[start..end].lines().collect()
}

/// Splits a command line as a POSIX shell would for these examples: words, double-quoted
/// words, and a trailing `# comment`.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '#' if !quoted && !in_word => break,
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// `export A=1 B=2` on one line, as the README sets the environment.
fn exports(lines: &[&str]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .flat_map(words)
        .filter_map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_readme_cli_examples_work_as_written() {
    let lines = example_block();
    let sim_line = lines
        .iter()
        .find(|l| l.contains("$upn sim ") && l.contains("--seed"))
        .expect("the block names the simulator's seed");
    let sim_words = words(sim_line);
    let seed: u64 = sim_words
        .iter()
        .position(|w| w == "--seed")
        .and_then(|i| sim_words.get(i + 1))
        .and_then(|s| s.parse().ok())
        .expect("the simulator line names its seed");
    assert!(
        README.contains(&format!("sim --listen 127.0.0.1:8080 --seed {seed}")),
        "the simulator the README starts has the seed its examples use"
    );
    let sim = Simulator::start_background(
        SimConfig {
            seed,
            ..SimConfig::default()
        },
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let env = exports(&lines);
    assert!(env.iter().any(|(k, _)| k == "UPN_DB"), "{env:?}");

    let mut ran = 0;
    for line in &lines {
        let Some(rest) = line.trim().strip_prefix("$upn ") else {
            continue;
        };
        let args = words(rest);
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .current_dir(dir.path())
            .env_remove("UPN_LOG");
        for (key, value) in &env {
            let value = if key == "UPN_ENDPOINT" {
                sim.endpoint()
            } else {
                value.clone()
            };
            cmd.env(key, value);
        }
        let out = cmd.output().expect("run upn-driver");
        assert_eq!(out.status.code(), Some(0), "`$upn {rest}`:\n{}", show(&out));
        assert!(
            !out.stderr.contains(&0x1b),
            "`$upn {rest}` wrote an ANSI escape to a pipe:\n{}",
            show(&out)
        );
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} example commands found");
}

#[test]
fn reads_of_the_device_need_no_api_key() {
    let sim = Simulator::start_background(
        SimConfig {
            seed: 3,
            consignments: 2,
            ..SimConfig::default()
        },
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("data");
    let run = |key: Option<&str>, args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("UPN_DB", &db)
            .env("UPN_ENDPOINT", sim.endpoint())
            .env("UPN_DEPOT", sim.depot())
            .env_remove("UPN_API_KEY");
        if let Some(key) = key {
            cmd.env("UPN_API_KEY", key);
        }
        cmd.output().expect("run")
    };
    let out = run(Some(&sim.api_key()), &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let barcode = sim.consignments()[0].barcode.clone();
    let sig = dir.path().join("sig.png");
    std::fs::write(&sig, upn_sim::samples::signature_png(1)).expect("write");
    let sig = sig.to_string_lossy().into_owned();
    let out = run(
        Some(&sim.api_key()),
        &["sign", &barcode, "--image", &sig, "--name", "No Key"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let pod_files = dir.path().join("pod-files");
    let receipt = dir.path().join("receipt.html");
    for args in [
        vec!["stops", "--json"],
        vec!["show", &barcode],
        vec!["outbox", "--json"],
        vec!["diagnose"],
        vec!["verify", &barcode],
        vec![
            "receipt",
            &barcode,
            "--out",
            receipt.to_str().expect("utf-8"),
        ],
        vec![
            "export",
            &barcode,
            "--out",
            pod_files.to_str().expect("utf-8"),
        ],
    ] {
        let out = run(None, &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} without a key:\n{}",
            show(&out)
        );
    }
    // Nothing was sent without a key: the POD is still queued.
    assert!(sim.received().pods.is_empty());
    // Sending still needs the key.
    let out = run(None, &["sync"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(Path::new(&receipt).exists());
}
