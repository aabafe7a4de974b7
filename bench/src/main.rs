//! `upn-bench`: the operations `cargo xtask bench` measures, one subcommand per row. Each runs
//! in a process of its own so the xtask can read its whole-process peak memory (`measure`), and
//! each prints one JSON object as its last stdout line for the xtask to read.
//!
//! - `inputs DIR`: the seeded inputs (12 MP camera-like JPEG with EXIF orientation 6, signature).
//! - `measure CMD ARGS..`: runs CMD, prints its wall time and peak RSS (getrusage of the child).
//! - `rendition IN OUT` / `image-resize IN OUT`: row 1, ours and the `image` crate reference.
//! - `ssim ORIGINAL RENDITION`: row 1's quality check against a full-quality resize.
//! - `capture --photo F --signature F --runs N`: row 2, interleaved with the raw durable write.
//! - `sim` / `flush-setup` / `flush`: row 3, the simulator in a process of its own.
//! - `tracking`, `history`, `stops`: rows 4, 5 + 7, and 6.
//!
//! Not a test and not an API: a tool that panics on a broken setup is fine here, so setup
//! failures are `Result<_, String>` with a message and a non-zero exit.

mod capture;
mod flush;
mod history;
mod images;
mod inputs;
mod setup;
mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("usage: upn-bench <inputs|measure|rendition|decode|image-resize|ssim|capture|sim|flush-setup|flush|tracking|history|stops> ...");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "inputs" => Options::parse(rest).and_then(|o| inputs::write_all(&o.path(0)?)),
        "measure" => stats::measure(rest),
        "rendition" => Options::parse(rest).and_then(|o| images::ours(&o.path(0)?, &o.path(1)?)),
        "decode" => Options::parse(rest).and_then(|o| images::decode_only(&o.path(0)?)),
        "image-resize" => {
            Options::parse(rest).and_then(|o| images::image_crate(&o.path(0)?, &o.path(1)?))
        }
        "ssim" => Options::parse(rest).and_then(|o| {
            let beside = o.string("beside").ok().map(PathBuf::from);
            images::ssim_report(&o.path(0)?, &o.path(1)?, beside.as_deref())
        }),
        "capture" => Options::parse(rest).and_then(|o| capture::run(&o)),
        "sim" => Options::parse(rest).and_then(|o| flush::serve(&o)),
        "flush-setup" => Options::parse(rest).and_then(|o| flush::setup(&o)),
        "flush" => Options::parse(rest).and_then(|o| flush::run(&o)),
        "tracking" => Options::parse(rest).and_then(|o| history::apply_batch(&o)),
        "history" => Options::parse(rest).and_then(|o| history::pull_and_open(&o)),
        "stops" => Options::parse(rest).and_then(|o| history::stop_list(&o)),
        other => Err(format!("unknown subcommand {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upn-bench {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Positional arguments and `--name value` pairs.
pub struct Options {
    positional: Vec<String>,
    named: HashMap<String, String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut positional = Vec::new();
        let mut named = HashMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.strip_prefix("--") {
                Some(name) => {
                    let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                    named.insert(name.to_string(), value.clone());
                }
                None => positional.push(arg.clone()),
            }
        }
        Ok(Self { positional, named })
    }

    fn path(&self, index: usize) -> Result<PathBuf> {
        self.positional
            .get(index)
            .map(PathBuf::from)
            .ok_or_else(|| format!("argument {} (a path) is missing", index + 1))
    }

    pub fn string(&self, name: &str) -> Result<String> {
        self.named
            .get(name)
            .cloned()
            .ok_or_else(|| format!("--{name} is missing"))
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.named
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    pub fn number(&self, name: &str, default: u64) -> Result<u64> {
        match self.named.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: {v:?} is not a whole number")),
        }
    }
}

/// The one JSON line a subcommand reports.
pub fn report(value: serde_json::Value) {
    println!("{value}");
}
