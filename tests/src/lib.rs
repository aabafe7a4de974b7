//! Shared harness for the end-to-end tests: a simulator on 127.0.0.1:0 and a driver core on a
//! fresh temporary data folder, per test, so tests run in parallel and in any order.

use std::net::{Ipv4Addr, SocketAddr};

use upn_core::upn::http::HttpUpn;
use upn_core::upn::{ApiKey, UpnConfig};
use upn_core::{Driver, DriverConfig};
use upn_sim::{SimConfig, SimHandle, Simulator};

pub fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A simulator on its own thread and port.
pub fn sim(config: SimConfig) -> SimHandle {
    Simulator::start_background(config, loopback()).expect("start simulator")
}

pub fn upn_config(sim: &SimHandle) -> UpnConfig {
    UpnConfig {
        endpoint: sim.endpoint(),
        depot: sim.depot(),
        api_key: ApiKey::new(sim.api_key()),
    }
}

/// A driver core talking to `sim`, with its data in a new temporary folder.
pub struct TestDriver {
    pub driver: Driver,
    pub data: tempfile::TempDir,
}

pub fn driver(sim: &SimHandle) -> TestDriver {
    driver_with(upn_config(sim))
}

pub fn driver_with(upn: UpnConfig) -> TestDriver {
    let data = tempfile::tempdir().expect("tempdir");
    let driver =
        Driver::open(DriverConfig::new(data.path().to_path_buf(), upn)).expect("open driver");
    TestDriver { driver, data }
}

/// The raw client, for contract-level checks.
pub fn client(sim: &SimHandle) -> HttpUpn {
    HttpUpn::new(upn_config(sim)).expect("client")
}
