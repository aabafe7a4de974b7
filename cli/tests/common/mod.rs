//! Shared by the CLI test files that drive `upn-driver` against a simulator on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Output};

use upn_sim::{SimConfig, SimHandle, Simulator};

pub const BIN: &str = env!("CARGO_BIN_EXE_upn-driver");

/// A simulator with `consignments` consignments from `seed`, on its own loopback port.
pub fn sim(seed: u64, consignments: usize) -> SimHandle {
    Simulator::start_background(
        SimConfig {
            seed,
            consignments,
            ..SimConfig::default()
        },
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .expect("simulator")
}

/// Runs `upn-driver ARGS` on the data folder `dir`, against `sim`, with its key.
pub fn run(sim: &SimHandle, dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--db", &dir.to_string_lossy()])
        .args(["--endpoint", &sim.endpoint(), "--depot", &sim.depot()])
        .env("UPN_API_KEY", sim.api_key())
        .output()
        .expect("run upn-driver")
}
