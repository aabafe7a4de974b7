//! `upn-driver data-saver [off|wifi-only|budget <MB>]`: shows or sets the driver's data saver
//! (kept in the data folder). Reads and writes only the device's data: no key, never online.

use upn_core::domain::data_saver::DataSaver;

use crate::args::{DataSaverArgs, DataSaverMode};
use crate::render;
use crate::{exit, CliError};

/// 1 MB, as the budget's unit on the command line (decimal, as phones show data use).
const MB: u64 = 1_000_000;

pub fn run(args: DataSaverArgs) -> Result<u8, CliError> {
    let policy = policy_of(args.mode, args.megabytes)?;
    let driver = super::open_local(&args.driver)?;
    if let Some(policy) = policy {
        // Out of range is the core's typed refusal (exit 2), and nothing changes.
        driver.set_data_saver(policy)?;
    }
    let status = driver.data_saver_status()?;
    if args.json {
        super::print_json(&status)?;
    } else {
        println!("{}", render::data_saver_line(&status));
    }
    Ok(exit::OK)
}

/// The policy the arguments ask for (`None`: show only).
fn policy_of(mode: Option<DataSaverMode>, mb: Option<u64>) -> Result<Option<DataSaver>, CliError> {
    Ok(Some(match (mode, mb) {
        (None, None) => return Ok(None),
        (Some(DataSaverMode::Budget), Some(mb)) => DataSaver::MeteredPhotoBudget {
            // An overflow lands outside the range, which the core refuses by name.
            bytes_per_day: mb.saturating_mul(MB),
        },
        (Some(DataSaverMode::Budget), None) => {
            return Err(CliError::bad_input(
                "budget needs the megabytes a day, e.g. `data-saver budget 50` (1..=10000)",
            ))
        }
        (Some(DataSaverMode::Off), None) => DataSaver::Off,
        (Some(DataSaverMode::WifiOnly), None) => DataSaver::PhotosOnUnmetered,
        (_, Some(_)) => {
            return Err(CliError::bad_input(
                "megabytes go only with `budget`, e.g. `data-saver budget 50`",
            ))
        }
    }))
}
