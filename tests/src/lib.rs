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

/// A driver core with a clock the test moves (backoffs, staleness) and its own data folder.
pub fn driver_with_clock(
    sim: &SimHandle,
    clock: std::sync::Arc<upn_core::clock::ManualClock>,
) -> TestDriver {
    let data = tempfile::tempdir().expect("tempdir");
    let driver = Driver::open_with_clock(
        DriverConfig::new(data.path().to_path_buf(), upn_config(sim)),
        clock,
    )
    .expect("open driver");
    TestDriver { driver, data }
}

/// A manual clock starting at the real now (the simulator stamps with real time).
pub fn manual_clock() -> std::sync::Arc<upn_core::clock::ManualClock> {
    std::sync::Arc::new(upn_core::clock::ManualClock::new(chrono::Utc::now()))
}

/// A sample delivery photo (JPEG, 1200x900).
pub fn photo(seed: u64) -> Vec<u8> {
    upn_sim::samples::photo_jpeg(seed, 1200, 900)
}

/// A sample signature (PNG).
pub fn signature(seed: u64) -> Vec<u8> {
    upn_sim::samples::signature_png(seed)
}

/// Flushes until nothing is queued, moving `clock` past every backoff between passes.
/// Panics if the outbox does not empty within `max_passes`.
pub fn flush_until_empty(
    t: &TestDriver,
    clock: &upn_core::clock::ManualClock,
    max_passes: u32,
) -> u32 {
    for pass in 1..=max_passes {
        t.driver.flush_now().expect("flush");
        let stats = t.driver.outbox_stats().expect("stats");
        if stats.queued + stats.sending + stats.waiting == 0 {
            return pass;
        }
        clock.advance(chrono::Duration::minutes(20));
    }
    panic!(
        "outbox did not empty in {max_passes} passes: {:?}",
        t.driver.outbox().expect("outbox")
    );
}

/// The files in the driver's capture folder, sorted.
pub fn blob_files(t: &TestDriver) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(t.data.path().join("blobs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub mod corpus;
pub mod corpus_upn;
pub mod hooks;
pub mod serve;

/// Binds the (closed) data folder at `dir` to `endpoint`, as if its first open had been
/// against it. For tests that prepare a folder with a good UPN and reopen it against a hostile
/// loopback server on another port: the core itself refuses another endpoint
/// (`Error::DataFolderBound`), so the tests move the binding by hand.
pub fn rebind_folder(dir: &std::path::Path, endpoint: &str) {
    // The origin, as the core records it (loopback test servers never use a default port).
    let (scheme, rest) = endpoint.split_once("://").expect("an endpoint URL");
    let origin = format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest));
    let conn = rusqlite::Connection::open(dir.join(upn_core::testing::store::DB_FILE_NAME))
        .expect("open the folder's database");
    conn.execute(
        "UPDATE sync_state SET value = ?1 WHERE key = ?2",
        (origin, upn_core::testing::store::keys::FOLDER_ENDPOINT),
    )
    .expect("rebind the folder");
}
