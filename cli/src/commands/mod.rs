//! One module per subcommand. Each `run` returns the exit code or a [`CliError`].

pub mod capture;
pub mod data_saver;
pub mod demo;
pub mod demo_support;
pub mod demo_tracking;
pub mod export;
pub mod flush;
pub mod invoice;
pub mod outbox;
pub mod show;
pub mod sim;
pub mod stops;
pub mod support;
pub mod sync;

use std::time::{Duration, Instant};

use upn_core::upn::{ApiKey, UpnConfig};
use upn_core::{Driver, DriverConfig};

use crate::args::DriverArgs;
use crate::CliError;

/// Environment variable holding the depot's API key.
pub const API_KEY_ENV: &str = "UPN_API_KEY";

pub fn open_driver(args: &DriverArgs) -> Result<Driver, CliError> {
    let api_key = std::env::var(API_KEY_ENV).map_err(|e| match e {
        std::env::VarError::NotPresent => CliError::bad_input(format!(
            "{API_KEY_ENV} is not set: export the depot's UPN API key (the simulator prints it on its first line)"
        )),
        std::env::VarError::NotUnicode(_) => CliError::bad_input(format!(
            "{API_KEY_ENV} is not valid text: export the depot's UPN API key exactly as UPN issued it"
        )),
    })?;
    open_with_key(args, api_key)
}

/// Stands in for the API key in a command that only reads the device's data: such a command
/// never goes online, so nothing is ever sent with it.
const NO_KEY: &str = "local-read-without-a-key";

/// Opens the core for a command that only reads what is on the device (`stops`, `show`,
/// `outbox`, `diagnose`, `receipt`, `verify`, `export`): no API key needed, and the core is
/// never put online, so nothing is sent.
pub fn open_local(args: &DriverArgs) -> Result<Driver, CliError> {
    let api_key = std::env::var(API_KEY_ENV)
        .ok()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| NO_KEY.to_string());
    open_with_key(args, api_key)
}

fn open_with_key(args: &DriverArgs, api_key: String) -> Result<Driver, CliError> {
    let upn = UpnConfig {
        endpoint: args.endpoint.clone(),
        depot: args.depot.clone(),
        api_key: ApiKey::new(api_key),
    };
    open_waiting(
        DriverConfig::new(args.db.clone(), upn),
        Duration::from_secs(args.lock_wait),
    )
}

/// How long a command waits, by default, for the data folder's owner to let go.
pub const LOCK_WAIT_SECS: u64 = 10;

/// Opens the core, waiting up to `wait` while another open (the app, another command) owns the
/// data folder; then gives up with exit 1 and says who to close.
pub fn open_waiting(config: DriverConfig, wait: Duration) -> Result<Driver, CliError> {
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        match Driver::open(config.clone()) {
            Err(upn_core::Error::AlreadyOpen { data_dir }) => {
                let now = Instant::now();
                if now < deadline && !told {
                    // Said once, so a person (or a test) knows the command is waiting, not hung.
                    eprintln!(
                        "upn-driver: the data folder {data_dir} is in use; waiting up to {} s for it",
                        wait.as_secs()
                    );
                    told = true;
                }
                if now >= deadline {
                    return Err(CliError::failed(format!(
                        "the data folder {data_dir} is in use by the app or another upn-driver \
                         (waited {} s); close it and try again, or pass a larger --lock-wait",
                        wait.as_secs()
                    )));
                }
                std::thread::sleep(
                    LOCK_POLL.min(deadline.saturating_duration_since(Instant::now())),
                );
            }
            other => return Ok(other?),
        }
    }
}

/// How often a waiting command tries the data folder's lock again.
const LOCK_POLL: Duration = Duration::from_millis(100);

pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failed(format!("could not write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Writes a new file (never over an existing one) and makes it durable.
pub fn write_new_file(path: &std::path::Path, bytes: &[u8], hint: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            CliError::bad_input(format!("cannot write {} ({e}); {hint}", path.display()))
        })?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
}
