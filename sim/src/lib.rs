//! `upn-sim`: a stateful, seeded UPN API simulator with fault injection, for tests, the demo
//! and app developers.
//!
//! It is a real HTTP/1.1 server speaking the UPN contract of `docs/upn-api.openapi.yaml` with
//! its own wire types ([`wire`], never the client's: a field renamed on one side then fails a
//! contract test instead of drifting silently), behaving as `docs/simulator-spec.md` says:
//!
//! - [`config`]: [`SimConfig`], what a run is made of (seed, depot, key, faults, throttle, switches).
//! - [`data`]: the deterministic UK depot data generator.
//! - [`state`]: the stateful UPN (versioned consignments, the consuming event queue, PODs,
//!   images, attempts, refusals, access switches).
//! - [`faults`]: the `ROUTE:KIND:PROB` language and the seeded per-request decisions.
//! - [`rng`]: the crate's own SplitMix64, so output never changes with a dependency.
//! - [`wire`]: the request and response types; what it receives refuses unknown fields.
//! - [`samples`]: seeded sample captures (photo JPEG, signature PNG) for demos and tests.
//! - `server` and `routes`: serving (per-connection, abortable, throttled) and the handlers.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use upn_sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::default(), "127.0.0.1:0".parse().unwrap()).await?;
//! println!("UPN simulator at {} for depot {}", sim.endpoint(), sim.depot());
//! sim.set_faults("pod:503:0.5".parse().expect("valid spec"));
//! # Ok(()) }
//! ```

pub mod config;
pub mod data;
pub mod faults;
pub mod rng;
mod routes;
pub mod samples;
mod server;
pub mod state;
pub mod wire;

pub use config::SimConfig;
pub use faults::{
    FaultDecider, FaultKind, FaultRoute, FaultRule, FaultSpec, FaultSpecError, Route,
};
pub use server::{SimHandle, Simulator};
pub use state::{Access, NewEvent, Received, ReceivedImage, ReceivedPod, Rejected};
