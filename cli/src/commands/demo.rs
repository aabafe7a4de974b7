//! `upn-driver demo`: a delivery day against the embedded simulator on a free loopback port.

use std::net::{Ipv4Addr, SocketAddr};

use upn_core::upn::{ApiKey, UpnConfig};
use upn_core::{Driver, DriverConfig};
use upn_sim::Simulator;

use crate::args::DemoArgs;
use crate::render;
use crate::{exit, CliError};

pub fn run(args: DemoArgs) -> Result<u8, CliError> {
    let config = super::sim::config(&args.sim)?;
    let sim = Simulator::start_background(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| CliError::failed(format!("could not start the simulator: {e}")))?;
    println!(
        "== UPN simulator on {} (depot {})",
        sim.endpoint(),
        sim.depot()
    );

    let temp;
    let data_dir = match &args.db {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()
                .map_err(|e| CliError::failed(format!("could not make a data folder: {e}")))?;
            temp.path().to_path_buf()
        }
    };
    let upn = UpnConfig {
        endpoint: sim.endpoint(),
        depot: sim.depot(),
        api_key: ApiKey::new(sim.api_key()),
    };
    let driver = Driver::open(DriverConfig::new(data_dir, upn))?;

    println!("\n== Morning import");
    let report = driver.import_now()?;
    println!(
        "{} consignments imported for today",
        report.counts.added + report.counts.updated
    );

    println!("\n== Today's stops");
    print!("{}", render::stop_table(&driver.stops()?));
    Ok(exit::OK)
}
