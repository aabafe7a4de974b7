//! The UniFFI surface of UPN Driver Core: thin records and one object over [`upn_core::Driver`].
//! No logic lives here: every method converts, calls the core, converts back, and never lets a
//! panic cross into Kotlin or Swift.

mod error;
mod records;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use upn_core::upn::{ApiKey, UpnConfig};

pub use error::CoreError;
pub use records::{ConsignmentRecord, CoreConfig, ImportSummary, PalletRecord, StopRecord};

uniffi::setup_scaffolding!();

/// Runs `f`, turning a panic into [`CoreError::Internal`] so it never unwinds across the FFI.
fn guard<T>(f: impl FnOnce() -> Result<T, CoreError>) -> Result<T, CoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(CoreError::Internal {
            reason: "an internal error occurred; the operation was not completed".into(),
        })
    })
}

/// The driver app's core: one per signed-in depot, opened on the app's private data folder.
#[derive(uniffi::Object)]
pub struct DriverCore {
    inner: upn_core::Driver,
}

#[uniffi::export]
impl DriverCore {
    /// Opens (or creates) the core's database in `data_dir`.
    #[uniffi::constructor]
    pub fn open(data_dir: String, config: CoreConfig) -> Result<Arc<Self>, CoreError> {
        guard(|| {
            let upn = UpnConfig {
                endpoint: config.endpoint,
                depot: config.depot_code,
                api_key: ApiKey::new(config.api_key),
            };
            let inner =
                upn_core::Driver::open(upn_core::DriverConfig::new(PathBuf::from(data_dir), upn))?;
            Ok(Arc::new(Self { inner }))
        })
    }

    /// Imports the depot's consignments now. Blocking: call it off the main thread.
    pub fn import_now(&self) -> Result<ImportSummary, CoreError> {
        guard(|| Ok(self.inner.import_now()?.into()))
    }

    /// The ordered stop list.
    pub fn stops(&self) -> Result<Vec<StopRecord>, CoreError> {
        guard(|| Ok(self.inner.stops()?.iter().map(StopRecord::from).collect()))
    }

    /// One consignment with its pallets.
    pub fn consignment(&self, barcode: String) -> Result<ConsignmentRecord, CoreError> {
        guard(|| Ok((&self.inner.consignment(&barcode)?).into()))
    }
}
