//! [`Driver`]: the core as one object, as the CLI and the FFI layer use it. It owns the tokio
//! runtime, the store and the UPN client; its methods are blocking and safe to call from any
//! thread that is not itself running inside a tokio runtime.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, SystemClock};
use crate::domain::{order_stops, Consignment, Status, Stop, SyncBadge};
use crate::error::{Error, Result};
use crate::store::{Store, DB_FILE_NAME};
use crate::sync::import::{self, lock, validate_barcode, ImportReport};
use crate::upn::http::HttpUpn;
use crate::upn::UpnConfig;

#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The app's private data folder: the database (and later the capture blobs) live here.
    pub data_dir: PathBuf,
    pub upn: UpnConfig,
}

/// Everything the app shows about one consignment.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsignmentDetail {
    pub consignment: Consignment,
    pub status: Status,
    /// Each pallet with its own status (a pallet-level stage, or its consignment's).
    pub pallets: Vec<(crate::domain::Pallet, Status)>,
    pub sync: SyncBadge,
}

pub struct Driver {
    runtime: tokio::runtime::Runtime,
    store: Arc<Mutex<Store>>,
    api: HttpUpn,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("upn", self.api.config()).finish()
    }
}

impl Driver {
    pub fn open(config: DriverConfig) -> Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(config: DriverConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        if config.upn.depot.trim().is_empty() {
            return Err(Error::invalid("depot", "is empty; give the depot code UPN issued"));
        }
        if config.upn.api_key.expose().is_empty() {
            return Err(Error::invalid("api key", "is empty; set the depot's UPN API key"));
        }
        let api = HttpUpn::new(config.upn.clone())?;
        let store = Store::open(&config.data_dir.join(DB_FILE_NAME))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("upn-core")
            .enable_all()
            .build()
            .map_err(Error::io("starting the core's runtime"))?;
        Ok(Self {
            runtime,
            store: Arc::new(Mutex::new(store)),
            api,
            clock,
        })
    }

    /// Imports the depot's consignments now.
    pub fn import_now(&self) -> Result<ImportReport> {
        let clock = self.clock.clone();
        self.runtime
            .block_on(import::import_consignments(&self.api, &self.store, move || {
                clock.now()
            }))
    }

    /// The ordered stop list.
    pub fn stops(&self) -> Result<Vec<Stop>> {
        let consignments = lock(&self.store)?.consignments()?;
        Ok(order_stops(consignments, |_| SyncBadge::None))
    }

    /// One consignment with its pallets' statuses.
    pub fn consignment(&self, barcode: &str) -> Result<ConsignmentDetail> {
        let barcode = validate_barcode(barcode)?;
        let consignment = lock(&self.store)?
            .consignment(barcode)?
            .ok_or_else(|| Error::NotFound {
                barcode: barcode.to_string(),
            })?;
        let cancelled = consignment.cancelled.is_some();
        Ok(ConsignmentDetail {
            status: consignment.status(),
            pallets: consignment
                .pallets
                .iter()
                .map(|p| (p.clone(), p.status(cancelled)))
                .collect(),
            sync: SyncBadge::None,
            consignment,
        })
    }
}
