//! `cargo xtask bench [--rounds N] [--deliveries N] [--knobs] [--skip-aarch64] [--only 1,8]`:
//! the benchmark table of issue 11. Not part of `cargo xtask test` or CI. `--only` measures just
//! the rows listed (numbers 1-8) and builds only what they need; a partial table is printed and
//! written to `target/bench/bench.json`, never to `docs/benchmarks.md`.
//!
//! Builds `upn-bench` and `upn-ffi` in release (the shipped profile), generates the seeded
//! inputs into `target/bench/inputs`, and runs every measured operation as a child process of
//! `upn-bench measure`, which reads the child's own peak RSS (getrusage RUSAGE_CHILDREN with one
//! child). Each row is a ratio to its reference measured in the same run: rounds interleave
//! ours and the references, and the table shows medians. Prints one table, writes it as JSON
//! to `target/bench/bench.json`, and rewrites `docs/benchmarks.md` with it and the machine.
//!
//! Row 8 (the stripped cdylib) is the size of the release build just made, for x86_64 and for
//! `aarch64-unknown-linux-gnu` (Debian's cross GCC as linker, the stand-in for Android arm64:
//! there is no NDK here). `--knobs` also builds the cdylib once per profile knob, each in a
//! target folder of its own under `target/bench/size/`, and adds that table (slow: one full
//! release build per knob).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::run::{command, output, run_with};
use crate::tools::{ensure_packages, ensure_target};
use crate::{cargo, path_str, root, target_dir, Result};

const PACKAGES: &[&str] = &["libvips-tools", "libjpeg-turbo-progs"];
const AARCH64: &str = "aarch64-unknown-linux-gnu";
/// The simulator's throttle for row 3: a mobile uplink.
const THROTTLE: u64 = 2_000_000;

struct Options {
    rounds: usize,
    deliveries: u64,
    knobs: bool,
    aarch64: bool,
    /// Row numbers to measure; `None`: all of them.
    only: Option<Vec<u32>>,
}

impl Options {
    fn wants(&self, row: u32) -> bool {
        self.only.as_ref().is_none_or(|rows| rows.contains(&row))
    }
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options {
            rounds: 7,
            deliveries: 200,
            knobs: false,
            aarch64: true,
            only: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut number = |name: &str| -> Result<u64> {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(format!("{name} needs a whole number"))
            };
            match arg.as_str() {
                "--rounds" => o.rounds = number("--rounds")?.max(1) as usize,
                "--deliveries" => o.deliveries = number("--deliveries")?.max(1),
                "--knobs" => o.knobs = true,
                "--skip-aarch64" => o.aarch64 = false,
                "--only" => o.only = Some(row_list(it.next().map(String::as_str))?),
                other => return Err(format!("bench: unknown option {other}")),
            }
        }
        Ok(o)
    }
}

/// `--only`'s value: a comma list of row numbers 1-8.
fn row_list(value: Option<&str>) -> Result<Vec<u32>> {
    let bad = || "--only needs a comma list of row numbers 1-8, e.g. --only 3,4".to_string();
    let rows = value
        .ok_or_else(bad)?
        .split(',')
        .map(|r| r.trim().parse::<u32>().ok().filter(|n| (1..=8).contains(n)))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(bad)?;
    if rows.is_empty() {
        return Err(bad());
    }
    Ok(rows)
}

/// One line of the table.
struct Row {
    row: &'static str,
    what: String,
    ours: String,
    reference: String,
    /// ours / reference (or the measured value itself where there is no reference).
    ratio: Option<f64>,
    target: String,
    pass: Option<bool>,
}

impl Row {
    fn ratio(
        row: &'static str,
        what: &str,
        ours: f64,
        reference: f64,
        unit: &str,
        target: f64,
    ) -> Self {
        let ratio = ours / reference;
        Row {
            row,
            what: what.into(),
            ours: format!("{ours:.2} {unit}"),
            reference: format!("{reference:.2} {unit}"),
            ratio: Some(ratio),
            target: format!("<= {target}x"),
            pass: ratio.is_finite().then_some(ratio <= target),
        }
    }

    /// A measurement beside a row that explains its ratio; no target of its own.
    fn context(row: &'static str, what: &str, value: f64, reference: f64, unit: &str) -> Self {
        Row {
            target: "-".into(),
            pass: None,
            ..Row::ratio(row, what, value, reference, unit, f64::NAN)
        }
    }

    fn limit(row: &'static str, what: &str, value: f64, unit: &str, max: f64) -> Self {
        Row {
            row,
            what: what.into(),
            ours: format!("{value:.2} {unit}"),
            reference: "-".into(),
            ratio: None,
            target: format!("<= {max} {unit}"),
            pass: value.is_finite().then_some(value <= max),
        }
    }

    fn at_least(row: &'static str, what: &str, value: f64, reference: String, min: f64) -> Self {
        Row {
            row,
            what: what.into(),
            ours: format!("{value:.4}"),
            reference,
            ratio: None,
            target: format!(">= {min}"),
            pass: value.is_finite().then_some(value >= min),
        }
    }
}

pub fn bench(args: &[String]) -> Result {
    let o = Options::parse(args)?;
    let measured = (1..=7).any(|row| o.wants(row));
    if o.wants(1) {
        ensure_packages(PACKAGES)?;
    }
    let mut build = vec!["build", "--release"];
    if measured {
        build.extend(["-p", "upn-bench"]);
    }
    if o.wants(8) {
        build.extend(["-p", "upn-ffi"]);
    }
    run_with(&cargo(), &build, &[])?;
    let mut rows = Vec::new();
    if measured {
        let b = Bench::new()?;
        if o.wants(1) {
            rows.extend(b.rendition(o.rounds)?);
        }
        if o.wants(2) {
            rows.extend(b.capture()?);
        }
        if o.wants(3) {
            rows.extend(b.flush(o.deliveries)?);
        }
        if (4..=7).any(|row| o.wants(row)) {
            rows.extend(b.store_rows(o.rounds, &o)?);
        }
    }
    if o.wants(8) {
        rows.extend(size_rows(o.aarch64)?);
    }
    let knobs = if o.knobs { knob_sizes()? } else { Vec::new() };
    let table = render(&rows, &knobs);
    println!("\n{table}");
    write_outputs(&rows, &knobs, &table, o.only.is_none())
}

/// Row 8: the stripped cdylib of the release build just made, x86_64 and (unless skipped)
/// aarch64.
fn size_rows(aarch64: bool) -> Result<Vec<Row>> {
    let mut sizes = vec![(
        "x86_64-unknown-linux-gnu".to_string(),
        cdylib_size(&target_dir().join("release"), "strip")?,
    )];
    if aarch64 {
        sizes.push((AARCH64.to_string(), aarch64_size(&[], &target_dir())?));
    }
    Ok(sizes
        .iter()
        .map(|(target, bytes)| {
            Row::limit(
                "8",
                &format!("stripped cdylib, {target}"),
                *bytes as f64 / 1e6,
                "MB",
                8.0,
            )
        })
        .collect())
}

struct Bench {
    exe: PathBuf,
    dir: PathBuf,
    camera: PathBuf,
    signature: PathBuf,
}

impl Bench {
    fn new() -> Result<Self> {
        let dir = target_dir().join("bench");
        let exe = target_dir().join("release").join("upn-bench");
        let inputs = dir.join("inputs");
        let made = child(&exe, &["inputs", &path_str(&inputs)], &[])?;
        eprintln!("inputs: {made}");
        Ok(Bench {
            exe,
            camera: inputs.join("camera.jpg"),
            signature: inputs.join("signature.png"),
            dir,
        })
    }

    /// `upn-bench measure PROGRAM ARGS`: (the child's own last JSON line if any, the measurement).
    fn measured(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(String, Measured)> {
        let mut all = vec!["measure", program];
        all.extend(args);
        let out = child_lines(&self.exe, &all, env)?;
        let last = out.last().cloned().unwrap_or_default();
        let m = Measured {
            ms: field(&last, "wall_ms").ok_or(format!("{program}: no measurement"))?,
            rss_mb: field(&last, "max_rss_kb").unwrap_or(f64::NAN) / 1024.0,
        };
        if field_bool(&last, "ok") != Some(true) {
            return Err(format!("{program} {} failed", args.join(" ")));
        }
        let own = out.iter().rev().nth(1).cloned().unwrap_or_default();
        Ok((own, m))
    }

    fn rendition(&self, rounds: usize) -> Result<Vec<Row>> {
        let exe = path_str(&self.exe);
        let input = path_str(&self.camera);
        let out = |name: &str| path_str(&self.dir.join(name));
        let (ours_out, vips_out, image_out) = (out("ours.jpg"), out("vips.jpg"), out("image.jpg"));
        let vips_arg = format!("{vips_out}[Q=80]");
        let (mut ours, mut vips, mut image, mut djpeg) = (vec![], vec![], vec![], vec![]);
        let mut decoder = vec![];
        let mut ours_bytes = f64::NAN;
        for round in 0..rounds {
            eprintln!("row 1: round {}/{rounds}", round + 1);
            let (line, m) = self.measured(&exe, &["rendition", &input, &ours_out], &[])?;
            ours_bytes = field(&line, "bytes").unwrap_or(f64::NAN);
            ours.push(m);
            vips.push(
                self.measured(
                    "vipsthumbnail",
                    &[&input, "-s", "1600", "-o", &vips_arg],
                    &[("VIPS_CONCURRENCY", "1")],
                )?
                .1,
            );
            image.push(
                self.measured(&exe, &["image-resize", &input, &image_out], &[])?
                    .1,
            );
            djpeg.push(
                self.measured(
                    "djpeg",
                    &["-scale", "1/2", "-outfile", "/dev/null", &input],
                    &[],
                )?
                .1,
            );
            decoder.push(self.measured(&exe, &["decode", &input], &[])?.1);
        }
        let ssim_line = child(
            &self.exe,
            &["ssim", &input, &ours_out, "--beside", &vips_out],
            &[],
        )?;
        let ssim = field(&ssim_line, "ssim").unwrap_or(f64::NAN);
        let ceiling = field(&ssim_line, "ceiling").unwrap_or(f64::NAN);
        let vips_ssim = field(&ssim_line, "beside_ssim").unwrap_or(f64::NAN);
        let (o, v, i, d) = (
            Measured::median(&ours),
            Measured::median(&vips),
            Measured::median(&image),
            Measured::median(&djpeg),
        );
        let decoder = Measured::median(&decoder);
        Ok(vec![
            Row::ratio(
                "1a",
                "rendition 12 MP -> 1600 px q80 vs vipsthumbnail (1 thread)",
                o.ms,
                v.ms,
                "ms",
                0.5,
            ),
            Row::ratio(
                "1b",
                "rendition vs image crate decode+resize(Lanczos3)+encode",
                o.ms,
                i.ms,
                "ms",
                0.3,
            ),
            Row::ratio(
                "1c",
                "rendition vs djpeg -scale 1/2 (bare scaled decode)",
                o.ms,
                d.ms,
                "ms",
                2.0,
            ),
            Row::context(
                "1c (context)",
                "the rendition's decoder alone (jpeg-decoder, pure Rust: the same 1/2 DCT-scaled decode) vs djpeg -scale 1/2 (libjpeg-turbo, SIMD)",
                decoder.ms,
                d.ms,
                "ms",
            ),
            Row::at_least(
                "1d",
                "rendition SSIM (luma) vs full-quality Lanczos3 resize",
                ssim,
                "-".into(),
                0.95,
            ),
            Row {
                target: "-".into(),
                pass: None,
                ..Row::at_least(
                    "1d (context)",
                    "the ceiling at q80: that reference itself through the rendition's encoder (no resize, nothing else lost); beside it, vipsthumbnail's q80 output",
                    ceiling,
                    format!("vips {vips_ssim:.4}"),
                    f64::NAN,
                )
            },
            Row::limit(
                "1e",
                "rendition output size",
                ours_bytes / 1024.0,
                "KB",
                400.0,
            ),
            Row {
                reference: format!(
                    "vips {:.1} MB, image {:.1} MB, djpeg {:.1} MB",
                    v.rss_mb, i.rss_mb, d.rss_mb
                ),
                ..Row::limit(
                    "1f",
                    "rendition peak RSS (whole process)",
                    o.rss_mb,
                    "MB",
                    40.0,
                )
            },
        ])
    }

    fn capture(&self) -> Result<Vec<Row>> {
        eprintln!("row 2: capture latency");
        let line = child(
            &self.exe,
            &[
                "capture",
                "--photo",
                &path_str(&self.camera),
                "--signature",
                &path_str(&self.signature),
                "--runs",
                "50",
            ],
            &[],
        )?;
        let f = |k: &str| field(&line, k).unwrap_or(f64::NAN);
        let mb = f("photo_bytes") / 1e6;
        Ok(vec![
            Row::ratio(
                "2a",
                &format!("add_photo ({mb:.1} MB) p50 vs raw durable write"),
                f("add_photo_p50_ms"),
                f("add_photo_raw_p50_ms"),
                "ms",
                1.5,
            ),
            Row::ratio(
                "2b",
                "add_photo p99 vs raw durable write",
                f("add_photo_p99_ms"),
                f("add_photo_raw_p99_ms"),
                "ms",
                3.0,
            ),
            Row::ratio(
                "2c",
                "sign p50 vs raw durable write",
                f("sign_p50_ms"),
                f("sign_raw_p50_ms"),
                "ms",
                1.5,
            ),
            Row::ratio(
                "2d",
                "sign p99 vs raw durable write",
                f("sign_p99_ms"),
                f("sign_raw_p99_ms"),
                "ms",
                3.0,
            ),
        ])
    }

    /// Row 3: the simulator as a child of its own, the captures made by another, then the
    /// measured flush.
    fn flush(&self, deliveries: u64) -> Result<Vec<Row>> {
        eprintln!("row 3: flush of {deliveries} deliveries at {THROTTLE} B/s");
        let consignments = deliveries.to_string();
        let throttle = THROTTLE.to_string();
        let mut sim = command(&path_str(&self.exe))
            .args([
                "sim",
                "--consignments",
                consignments.as_str(),
                "--throttle",
                throttle.as_str(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the simulator: {e}"))?;
        let mut first = String::new();
        if let Some(out) = sim.stdout.take() {
            BufReader::new(out)
                .read_line(&mut first)
                .map_err(|e| e.to_string())?;
        }
        let endpoint =
            string_field(&first, "endpoint").ok_or("the simulator printed no endpoint")?;
        let data = self.dir.join("flush-data");
        let _ = std::fs::remove_dir_all(&data);
        let dir = path_str(&data);
        let result = (|| {
            child(
                &self.exe,
                &[
                    "flush-setup",
                    "--endpoint",
                    &endpoint,
                    "--dir",
                    &dir,
                    "--photo",
                    &path_str(&self.camera),
                    "--signature",
                    &path_str(&self.signature),
                    "--deliveries",
                    &consignments,
                ],
                &[],
            )?;
            self.measured(
                &path_str(&self.exe),
                &["flush", "--endpoint", &endpoint, "--dir", &dir],
                &[],
            )
        })();
        // Closing its stdin stops the simulator.
        drop(sim.stdin.take());
        let _ = sim.wait();
        let _ = std::fs::remove_dir_all(&data);
        let (line, m) = result?;
        let goodput = field(&line, "goodput_bytes_per_s").unwrap_or(f64::NAN);
        let left = field(&line, "left").unwrap_or(f64::NAN);
        Ok(vec![
            Row {
                reference: format!("throttle {:.2} MB/s", THROTTLE as f64 / 1e6),
                ours: format!(
                    "{:.2} MB/s ({} sent, {left} left, {:.1} s)",
                    goodput / 1e6,
                    field(&line, "sent").unwrap_or(0.0),
                    m.ms / 1000.0
                ),
                ..Row::at_least(
                    "3a",
                    "flush goodput / throttle",
                    goodput / THROTTLE as f64,
                    String::new(),
                    0.9,
                )
            },
            Row::limit(
                "3b",
                "flush peak RSS (core process; simulator apart)",
                m.rss_mb,
                "MB",
                64.0,
            ),
        ])
    }

    /// Rows 4-7, each child run only when one of its rows is wanted.
    fn store_rows(&self, rounds: usize, o: &Options) -> Result<Vec<Row>> {
        let f = |line: &str, k: &str| field(line, k).unwrap_or(f64::NAN);
        let mut rows = Vec::new();
        if o.wants(4) {
            eprintln!("row 4: 100,000-event batch");
            // Every round, not three: a pull's time swings by 15% from run to run (fsync
            // latency), and a median of three moved the ratio by 0.5x between tables.
            let runs = rounds.to_string();
            let t = child(
                &self.exe,
                &["tracking", "--events", "100000", "--runs", &runs],
                &[],
            )?;
            rows.push(Row::ratio(
                "4",
                "apply a 100,000-event batch (pull, inbox, parse, apply) vs parse + INSERT of the same rows",
                f(&t, "ours_ms"),
                f(&t, "raw_ms"),
                "ms",
                2.0,
            ));
            for (floor, what) in [
                ("floor_ms", "the reference's rows with the core's one index beside the key (a consignment's events by time), one transaction per response, vs the reference"),
                ("kept_floor_ms", "that, each body first committed on its own (UPN hands a batch out once: the product's inbox rule), vs the reference"),
            ] {
                rows.push(Row::context("4 (context)", what, f(&t, floor), f(&t, "raw_ms"), "ms"));
            }
        }
        let history = if o.wants(5) || o.wants(7) {
            eprintln!("rows 5 and 7: 10,000 consignments, 1,000,000 events");
            child(&self.exe, &["history", "--runs", &rounds.to_string()], &[])?
        } else {
            String::new()
        };
        if o.wants(5) {
            rows.push(Row::ratio(
                "5",
                "pull 100 events with 1,000,000 stored vs empty history",
                f(&history, "pull_full_ms"),
                f(&history, "pull_empty_ms"),
                "ms",
                1.2,
            ));
        }
        if o.wants(6) {
            eprintln!("row 6: stop list of 500");
            let s = child(
                &self.exe,
                &[
                    "stops",
                    "--signature",
                    &path_str(&self.signature),
                    "--runs",
                    "21",
                ],
                &[],
            )?;
            rows.push(Row::ratio(
                "6",
                "stop list of 500 (badges, last stage) vs bare SELECT",
                f(&s, "ours_ms"),
                f(&s, "bare_ms"),
                "ms",
                3.0,
            ));
        }
        if o.wants(7) {
            rows.push(Row::ratio(
                "7",
                "open the core + first stop list (10,000 consignments, 1,000,000 events) vs bare open + the one SELECT of those rows",
                f(&history, "open_ms"),
                f(&history, "bare_open_ms"),
                "ms",
                2.0,
            ));
        }
        Ok(rows)
    }
}

#[derive(Clone, Copy)]
struct Measured {
    ms: f64,
    rss_mb: f64,
}

impl Measured {
    fn median(samples: &[Measured]) -> Measured {
        let mid = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        Measured {
            ms: mid(samples.iter().map(|m| m.ms).collect()),
            rss_mb: mid(samples.iter().map(|m| m.rss_mb).collect()),
        }
    }
}

/// Runs `exe args`, failing on a non-zero exit; returns every stdout line (stderr shown).
fn child_lines(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Vec<String>> {
    let out = command(&path_str(exe))
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} {}` failed ({})",
            exe.display(),
            args.join(" "),
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect())
}

/// The last stdout line of `exe args` (a subcommand's JSON report).
fn child(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    Ok(child_lines(exe, args, env)?.pop().unwrap_or_default())
}

/// The value of `"key":` in a flat JSON object as upn-bench prints it.
fn raw_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let start = line.find(&pattern)? + pattern.len();
    let rest = line[start..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn field(line: &str, key: &str) -> Option<f64> {
    raw_field(line, key)?.parse().ok()
}

fn field_bool(line: &str, key: &str) -> Option<bool> {
    raw_field(line, key)?.parse().ok()
}

fn string_field(line: &str, key: &str) -> Option<String> {
    Some(raw_field(line, key)?.trim_matches('"').to_string())
}

/// The size of the release cdylib in `dir` once stripped as an app ships it: the profile keeps
/// line tables for symbolication, so a copy is stripped (`strip_program --strip-all` keeps the
/// dynamic symbol table the exports need) next to it as `libupn_ffi.stripped.so`.
fn cdylib_size(dir: &Path, strip_program: &str) -> Result<u64> {
    let lib = dir.join("libupn_ffi.so");
    let stripped = dir.join("libupn_ffi.stripped.so");
    std::fs::copy(&lib, &stripped).map_err(|e| format!("{}: {e}", lib.display()))?;
    run_with(strip_program, &["--strip-all", &path_str(&stripped)], &[])?;
    std::fs::metadata(&stripped)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", stripped.display()))
}

/// Builds the cdylib for aarch64 Linux with `overrides` (profile knobs as environment) into
/// `target`, and returns its size.
fn aarch64_size(overrides: &[(&str, String)], target: &Path) -> Result<u64> {
    ensure_target(AARCH64)?;
    ensure_packages(&["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"])?;
    let mut env: Vec<(&str, String)> = vec![
        (
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            "aarch64-linux-gnu-gcc".into(),
        ),
        (
            "CC_aarch64_unknown_linux_gnu",
            "aarch64-linux-gnu-gcc".into(),
        ),
        (
            "AR_aarch64_unknown_linux_gnu",
            "aarch64-linux-gnu-ar".into(),
        ),
        ("CARGO_TARGET_DIR", path_str(target)),
    ];
    env.extend(overrides.iter().cloned());
    run_with(
        &cargo(),
        &[
            "build",
            "--release",
            "-p",
            "upn-ffi",
            "--lib",
            "--target",
            AARCH64,
        ],
        &env,
    )?;
    cdylib_size(
        &target.join(AARCH64).join("release"),
        "aarch64-linux-gnu-strip",
    )
}

/// Each profile knob alone on top of the chosen profile (root Cargo.toml; its own size is row 8),
/// as overrides of the `size-knob` profile (release plus the knob). panic=abort is not among
/// them: the FFI catches panics with catch_unwind at every export, which abort would turn into a
/// crash of the app.
const KNOBS: &[(&str, &[(&str, &str)])] = &[
    (
        "the release profile itself (opt-level=s, lto=fat, codegen-units=1)",
        &[],
    ),
    (
        "previous profile (opt-level=3, lto=thin, codegen-units=4)",
        &[
            ("CARGO_PROFILE_SIZE_KNOB_OPT_LEVEL", "3"),
            ("CARGO_PROFILE_SIZE_KNOB_LTO", "thin"),
            ("CARGO_PROFILE_SIZE_KNOB_CODEGEN_UNITS", "4"),
        ],
    ),
    ("opt-level=3", &[("CARGO_PROFILE_SIZE_KNOB_OPT_LEVEL", "3")]),
    ("opt-level=z", &[("CARGO_PROFILE_SIZE_KNOB_OPT_LEVEL", "z")]),
    ("lto=thin", &[("CARGO_PROFILE_SIZE_KNOB_LTO", "thin")]),
    ("lto=off", &[("CARGO_PROFILE_SIZE_KNOB_LTO", "off")]),
    (
        "codegen-units=16",
        &[("CARGO_PROFILE_SIZE_KNOB_CODEGEN_UNITS", "16")],
    ),
];

/// (knob, x86_64 bytes) for each knob. One target folder for all of them (each knob's
/// artifacts are kept apart by cargo's hashes, so a repeated run is cached), the lib measured
/// right after its build.
fn knob_sizes() -> Result<Vec<(String, u64)>> {
    let folder = target_dir().join("bench").join("size");
    let mut sizes = Vec::new();
    for (name, vars) in KNOBS {
        eprintln!("cdylib knob: {name}");
        let mut env: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        env.push(("CARGO_TARGET_DIR", path_str(&folder)));
        run_with(
            &cargo(),
            &["build", "--profile", "size-knob", "-p", "upn-ffi", "--lib"],
            &env,
        )?;
        sizes.push((
            name.to_string(),
            cdylib_size(&folder.join("size-knob"), "strip")?,
        ));
    }
    Ok(sizes)
}

fn render(rows: &[Row], knobs: &[(String, u64)]) -> String {
    let mut t = String::from("| # | what | ours | reference | ratio | target | result |\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        let ratio = r
            .ratio
            .map(|x| format!("{x:.2}x"))
            .unwrap_or_else(|| "-".into());
        let result = match r.pass {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "n/a",
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {ratio} | {} | {result} |\n",
            r.row, r.what, r.ours, r.reference, r.target
        ));
    }
    if !knobs.is_empty() {
        t.push_str("\n| cdylib knob (x86_64, alone on top of the chosen profile) | stripped size |\n|---|---|\n");
        for (name, bytes) in knobs {
            t.push_str(&format!("| {name} | {:.2} MB |\n", *bytes as f64 / 1e6));
        }
    }
    t
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(x: Option<f64>) -> String {
    x.filter(|x| x.is_finite())
        .map(|x| format!("{x}"))
        .unwrap_or_else(|| "null".into())
}

/// `complete`: every row was measured, so the table replaces `docs/benchmarks.md`.
fn write_outputs(rows: &[Row], knobs: &[(String, u64)], table: &str, complete: bool) -> Result {
    let machine = machine();
    let mut json = String::from("{\n  \"machine\": {");
    let fields: Vec<String> = machine
        .iter()
        .map(|(k, v)| format!("{}: {}", json_string(k), json_string(v)))
        .collect();
    json.push_str(&fields.join(", "));
    json.push_str("},\n  \"rows\": [\n");
    let rows_json: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "    {{\"row\": {}, \"what\": {}, \"ours\": {}, \"reference\": {}, \"ratio\": {}, \"target\": {}, \"pass\": {}}}",
                json_string(r.row), json_string(&r.what), json_string(&r.ours), json_string(&r.reference),
                json_number(r.ratio), json_string(&r.target),
                r.pass.map(|p| p.to_string()).unwrap_or_else(|| "null".into())
            )
        })
        .collect();
    json.push_str(&rows_json.join(",\n"));
    json.push_str("\n  ],\n  \"cdylib_knobs\": [");
    let knobs_json: Vec<String> = knobs
        .iter()
        .map(|(k, b)| format!("{{\"knob\": {}, \"bytes\": {b}}}", json_string(k)))
        .collect();
    json.push_str(&knobs_json.join(", "));
    json.push_str("]\n}\n");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("bench.json"), json).map_err(|e| e.to_string())?;
    if !complete {
        eprintln!(
            "wrote {} (a partial table: docs/benchmarks.md is left as it is)",
            dir.join("bench.json").display()
        );
        return Ok(());
    }

    let mut md = String::from(
        "# Benchmarks\n\nWritten by `cargo xtask bench` (see `xtask/src/bench.rs` and `bench/`): the latest run's \
         table and the machine it ran on. Medians over repeated runs; each ratio is ours over its reference, \
         measured in the same run with the runs interleaved. Peak memory is the whole process's peak RSS \
         (each operation runs as a child process). The machine may be shared with other work while it runs: \
         read ratios, not absolute times.\n\n## Machine\n\n",
    );
    for (k, v) in &machine {
        md.push_str(&format!("- {k}: {v}\n"));
    }
    md.push_str("\n## Table\n\n");
    md.push_str(table);
    let doc = root().join("docs").join("benchmarks.md");
    std::fs::write(&doc, md).map_err(|e| format!("{}: {e}", doc.display()))?;
    eprintln!(
        "wrote {} and {}",
        dir.join("bench.json").display(),
        doc.display()
    );
    Ok(())
}

/// nproc, CPU model, memory, kernel, rustc, date and load.
fn machine() -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let memory = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let trim = |s: Option<String>| {
        s.map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    vec![
        ("nproc".into(), trim(output("nproc", &[]))),
        ("cpu".into(), cpu),
        ("memory".into(), memory),
        ("kernel".into(), trim(output("uname", &["-sr"]))),
        ("rustc".into(), trim(output("rustc", &["-V"]))),
        (
            "date".into(),
            trim(output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
        ),
        (
            "load average at the end".into(),
            read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::row_list;

    #[test]
    fn only_takes_a_comma_list_of_row_numbers() {
        assert_eq!(row_list(Some("3,4")).unwrap(), vec![3, 4]);
        assert_eq!(row_list(Some(" 7 ")).unwrap(), vec![7]);
        for bad in [
            None,
            Some(""),
            Some("0"),
            Some("9"),
            Some("3,x"),
            Some("3,,4"),
        ] {
            assert!(row_list(bad).is_err(), "{bad:?}");
        }
    }
}
