//! UPN Driver Core: the offline-first heart of the driver app.
//!
//! Layers (see ARCHITECTURE.md):
//! - [`domain`]: pure types and decisions (no I/O).
//! - [`store`]: the on-device SQLite database and its migrations.
//! - [`upn`]: the UPN API contract (wire types) behind the [`upn::UpnApi`] trait, and its HTTP client.
//! - [`sync`]: services that move data between UPN and the store.
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
pub mod store;
pub mod sync;
pub mod upn;

pub use cancel::CancelToken;
pub use domain::tracking::{PalletTimeline, Timeline, TimelineEntry};
pub use driver::{ConsignmentDetail, Driver, DriverConfig};
pub use error::{Error, Result};
pub use sync::tracking::{TrackingHealth, TrackingReport};
