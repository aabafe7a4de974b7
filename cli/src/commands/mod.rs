//! One module per subcommand. Each `run` returns the exit code or a [`CliError`].

pub mod capture;
pub mod demo;
pub mod demo_tracking;
pub mod flush;
pub mod outbox;
pub mod show;
pub mod sim;
pub mod stops;
pub mod sync;

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
    let upn = UpnConfig {
        endpoint: args.endpoint.clone(),
        depot: args.depot.clone(),
        api_key: ApiKey::new(api_key),
    };
    Ok(Driver::open(DriverConfig::new(args.db.clone(), upn))?)
}

pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failed(format!("could not write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}
