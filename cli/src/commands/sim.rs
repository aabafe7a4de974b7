//! `upn-driver sim`: the UPN simulator as a server for app developers and manual testing.

use upn_sim::{FaultSpec, SimConfig, Simulator};

use crate::args::{SimArgs, SimFeature, SimOptions};
use crate::CliError;

/// Turns the shared simulator options into a simulator configuration.
pub fn config(options: &SimOptions) -> Result<SimConfig, CliError> {
    let faults: FaultSpec = options
        .faults
        .parse()
        .map_err(|e| CliError::bad_input(format!("--faults: {e}")))?;
    if options.throttle == Some(0) {
        return Err(CliError::bad_input(
            "--throttle: must be at least 1 byte per second",
        ));
    }
    Ok(SimConfig {
        seed: options.seed,
        consignments: options.consignments,
        depot: options.depot.clone(),
        api_key: options.api_key.clone(),
        faults,
        throttle_bytes_per_s: options.throttle,
        integration_enabled: !options.disable.contains(&SimFeature::Integration),
        tracking_enabled: !options.disable.contains(&SimFeature::Tracking),
        images_enabled: !options.disable.contains(&SimFeature::Images),
    })
}

pub fn run(args: SimArgs) -> Result<u8, CliError> {
    let config = config(&args.sim)?;
    let sim = Simulator::start_background(config, args.listen)
        .map_err(|e| CliError::failed(format!("could not listen on {}: {e}", args.listen)))?;
    // The first line is for copying: it is everything a driver command needs.
    println!(
        "UPN simulator: --endpoint {} --depot {}  UPN_API_KEY={}",
        sim.endpoint(),
        sim.depot(),
        sim.api_key()
    );
    println!(
        "{} consignments, seed {}; inspect what UPN received at {}/_sim/received; Ctrl-C stops.",
        args.sim.consignments,
        args.sim.seed,
        sim.endpoint()
    );
    loop {
        std::thread::park();
    }
}
