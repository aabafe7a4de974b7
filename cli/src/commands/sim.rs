//! `upn-driver sim`: the UPN simulator as a server for app developers and manual testing.

use upn_sim::{FaultSpec, SimConfig, Simulator};

use crate::args::{SampleArgs, SimArgs, SimFeature, SimOptions};
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
    // Only loopback, on a free port, for as long as it takes to read the barcodes.
    let listen = if args.print_barcodes {
        std::net::SocketAddr::from(([127, 0, 0, 1], 0))
    } else {
        args.listen
    };
    let sim = Simulator::start_background(config, listen)
        .map_err(|e| CliError::failed(format!("could not listen on {listen}: {e}")))?;
    if args.print_barcodes {
        for c in sim.consignments() {
            println!("{}", c.barcode);
        }
        return Ok(crate::exit::OK);
    }
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

/// `sample-photo`: a 1600x1200 JPEG from the simulator's samples.
pub fn sample_photo(args: SampleArgs) -> Result<u8, CliError> {
    let bytes = upn_sim::samples::photo_jpeg(args.seed, 1600, 1200);
    write_sample(&args, &bytes, "photo (JPEG)")
}

/// `sample-signature`: a signature pad's PNG from the simulator's samples.
pub fn sample_signature(args: SampleArgs) -> Result<u8, CliError> {
    let bytes = upn_sim::samples::signature_png(args.seed);
    write_sample(&args, &bytes, "signature (PNG)")
}

fn write_sample(args: &SampleArgs, bytes: &[u8], what: &str) -> Result<u8, CliError> {
    super::write_new_file(&args.out, bytes, "name a new file")?;
    println!(
        "{}: sample {what}, {} bytes",
        args.out.display(),
        bytes.len()
    );
    Ok(crate::exit::OK)
}
