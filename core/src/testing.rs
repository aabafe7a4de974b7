//! Not API. The tests, benches, the simulation harness and the kill tests check the core's
//! promises from outside (rows in the database, files in the data folder, failpoint and fault
//! names, a tracking pull over a seam), so they reach a few names of the crate-private `store`
//! and `sync` here, under the same paths: `upn_core::testing::store::Store`,
//! `upn_core::testing::sync::tracking::pull_tracking`. Only what a test needs is listed: the
//! product (CLI, FFI) uses the façade at the crate root; new product needs get a `Driver`
//! method or a re-export there, never a path through this module.

/// The on-device store, as `crate::store`: the database file and the failpoints between its
/// operations; `Store` itself for reading rows the façade does not show.
pub mod store {
    pub use crate::store::{
        FeedChanges, Store, DB_FILE_NAME, FAILPOINT_STORE_ACCESS, FAILPOINT_STORE_IN_TX,
        LOCK_FILE_NAME,
    };

    /// The data folder's file names.
    pub mod blobs {
        pub use crate::store::blobs::{BLOB_DIR_NAME, QUARANTINE_DIR_NAME};
    }

    /// `sync_state` keys a test reads or rewrites.
    pub mod keys {
        pub use crate::store::keys::{FOLDER_ENDPOINT, TRACKING_THROUGHPUT};
    }

    /// The fault injected at the tracking inbox's commit.
    pub mod tracking {
        pub use crate::store::tracking::FAULT_INBOX_DISK_FULL;
    }
}

/// The services, as `crate::sync`: the tracking pull over a seam, its spill folder and faults.
pub mod sync {
    pub mod tracking {
        pub use crate::sync::tracking::{
            process_pending, pull_tracking, FAILPOINT_BEFORE_INBOX_COMMIT, FAULT_LOW_SPACE,
            SPILL_DIR_NAME,
        };
    }
}
