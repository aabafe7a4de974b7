//! UPN Driver Core: the offline-first heart of the driver app.
//!
//! The public surface is a deliberate façade: [`Driver`] (open, capture, outbox, sync,
//! tracking, support), [`DriverConfig`] with its seams ([`driver::Seams`],
//! [`driver::IdSource`], [`clock`]), [`Error`], the listener traits ([`listener`]), the UPN
//! contract ([`upn`]: `ApiKey`, `UpnConfig`, the wire types), the pure [`domain`] and [`media`]
//! values, and the records and reports `Driver`'s methods return, re-exported here. The store
//! and the services that move data (`store`, `sync`) are crate-private: everything goes
//! through a `Driver`. [`testing`] (hidden) is not API: the tests, benches, the simulation and
//! the kill tests reach the store's files and tables there to check the promises from outside.
//!
//! Layers (see ARCHITECTURE.md):
//! - [`domain`]: pure types and decisions (no I/O).
//! - `store`: the on-device SQLite database and its migrations.
//! - [`upn`]: the UPN API contract (wire types) behind the [`upn::UpnApi`] trait, and its HTTP client.
//! - `sync`: services that move data between UPN and the store.
pub mod cancel;
pub mod clock;
pub mod digest;
pub mod domain;
pub mod driver;
pub mod error;
pub mod failpoint;
#[doc(hidden)]
pub mod fuzzing;
pub mod listener;
pub mod logbook;
pub mod media;
pub(crate) mod store;
pub(crate) mod sync;
#[doc(hidden)]
pub mod testing;
pub mod upn;

pub use cancel::CancelToken;
pub use domain::tracking::{PalletTimeline, Timeline, TimelineEntry};
pub use driver::{
    ConsignmentDetail, Driver, DriverConfig, SyncOutcome, SyncReport, Task, TaskError,
    BLOCKING_THREADS,
};
pub use error::{Error, Result};
// What `Driver`'s methods take and return, from the crate-private store and services.
pub use store::blobs::BlobRef;
pub use store::captures::{Capture, OutboxStats};
pub use store::tracking::{FailedBatch, MalformedEvent};
pub use store::ImportCounts;
pub use sync::import::ImportReport;
pub use sync::outbox::{FlushEnd, FlushReport};
pub use sync::tracking::{TrackingHealth, TrackingReport};
