//! `upn-driver`: the driver CLI. Runs the UPN simulator, the driver commands against UPN (or the
//! simulator), and the `demo` of a whole delivery day.
//!
//! Exit codes: 0 done; 2 bad input or usage; 3 work remains queued or UPN unreachable; 1 anything else.

// First: its `print!`, `println!` and `eprintln!` shadow std's in every module below, so no
// command can panic on a closed pipe (`upn-driver stops --json | head -1`).
#[macro_use]
mod output;
mod args;
mod commands;
mod render;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Exit codes, as documented in `--help`.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const QUEUED_OR_UNREACHABLE: u8 = 3;
}

/// An error with the exit code it deserves. Messages never contain the API key.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self {
            code: exit::BAD_INPUT,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: exit::FAILED,
            message: message.into(),
        }
    }
}

impl From<upn_core::Error> for CliError {
    fn from(e: upn_core::Error) -> Self {
        use upn_core::Error;
        let code = match &e {
            Error::InvalidInput { .. }
            | Error::NotFound { .. }
            | Error::Cancelled { .. }
            | Error::AlreadyDelivered { .. }
            | Error::AlreadySigned { .. }
            | Error::CaptureIdConflict { .. } => exit::BAD_INPUT,
            Error::Upn(u) if u.is_recoverable() => exit::QUEUED_OR_UNREACHABLE,
            Error::InFlight { .. } | Error::Busy => exit::QUEUED_OR_UNREACHABLE,
            _ => exit::FAILED,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Sim(a) => commands::sim::run(a),
        Command::Sync(a) => commands::sync::run(a),
        Command::Stops(a) => commands::stops::run(a),
        Command::Show(a) => commands::show::run(a),
        Command::Demo(a) => commands::demo::run(a),
        Command::Photo(a) => commands::capture::photo(a),
        Command::Sign(a) => commands::capture::sign(a),
        Command::Outbox(a) => commands::outbox::run(a),
        Command::InvoiceMatch(a) => commands::invoice::run(a),
        Command::Export(a) => commands::export::run(a),
        Command::Diagnose(a) => commands::support::diagnose(a),
        Command::SupportBundle(a) => commands::support::bundle(a),
        Command::Receipt(a) => commands::support::receipt(a),
        Command::Verify(a) => commands::support::verify(a),
        Command::Retry(a) => commands::outbox::retry(a),
        Command::Discard(a) => commands::outbox::discard(a),
        Command::DataSaver(a) => commands::data_saver::run(a),
        Command::SamplePhoto(a) => commands::sim::sample_photo(a),
        Command::SampleSignature(a) => commands::sim::sample_signature(a),
    };
    match (result, output::write_failure()) {
        (Ok(exit::OK), Some(failure)) => {
            eprintln!("upn-driver: {failure}");
            ExitCode::from(exit::FAILED)
        }
        (Ok(code), _) => ExitCode::from(code),
        (Err(e), _) => {
            eprintln!("upn-driver: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("UPN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Lines for people on stderr (filtered), and INFO and above into the data folder's
    // logbook for support bundles.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour only for a person at a terminal: never escapes in a file or a pipe.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(filter),
        )
        .with(upn_core::logbook::layer())
        .try_init();
}
