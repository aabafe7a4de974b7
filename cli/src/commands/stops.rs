//! `upn-driver stops`: the ordered stop list, as a table or JSON.

use crate::args::StopsArgs;
use crate::render;
use crate::{exit, CliError};

pub fn run(args: StopsArgs) -> Result<u8, CliError> {
    let driver = super::open_local(&args.driver)?;
    let stops = driver.stops()?;
    if args.json {
        super::print_json(&stops.iter().map(render::StopJson::from).collect::<Vec<_>>())?;
    } else {
        print!("{}", render::stop_table(&stops));
    }
    Ok(exit::OK)
}
