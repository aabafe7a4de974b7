//! What every core row starts from: a simulator on 127.0.0.1:0 and a driver core on a data
//! folder, through the core's public `Driver` API only.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use upn_core::upn::{ApiKey, UpnConfig};
use upn_core::{Driver, DriverConfig};
use upn_sim::{SimConfig, SimHandle, Simulator};

use crate::Result;

pub fn sim(consignments: usize, throttle_bytes_per_s: Option<u64>) -> Result<SimHandle> {
    let config = SimConfig {
        consignments,
        throttle_bytes_per_s,
        ..SimConfig::default()
    };
    Simulator::start_background(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| format!("starting the simulator: {e}"))
}

pub fn upn_config(sim: &SimHandle) -> UpnConfig {
    UpnConfig {
        endpoint: sim.endpoint(),
        depot: sim.depot(),
        api_key: ApiKey::new(sim.api_key()),
    }
}

/// Opens the core on `dir`. A core just closed on it in this process is waited for by the open
/// itself (the folder's closing mark), so no retry is needed here.
pub fn open(dir: &Path, upn: UpnConfig) -> Result<Driver> {
    Driver::open(DriverConfig::new(dir.to_path_buf(), upn)).map_err(|e| format!("open: {e}"))
}

/// A driver on `dir` with the simulator's consignments imported (it starts offline, so no
/// background work runs while a row is measured).
pub fn imported(dir: &Path, sim: &SimHandle) -> Result<Driver> {
    let driver = open(dir, upn_config(sim))?;
    driver.import_now().map_err(|e| format!("import: {e}"))?;
    Ok(driver)
}

pub fn close(driver: Driver) {
    driver.shutdown(Duration::from_secs(10));
}

/// The core's database file in a data folder (found, not assumed: it is the store's business
/// where it lives).
pub fn database_file(dir: &Path) -> Result<PathBuf> {
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "db") {
                return Ok(path);
            }
        }
    }
    Err(format!("no .db file under {}", dir.display()))
}

/// A fresh folder under `parent`.
pub fn folder(parent: &Path, name: &str) -> Result<PathBuf> {
    let path = parent.join(name);
    if path.exists() {
        std::fs::remove_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
