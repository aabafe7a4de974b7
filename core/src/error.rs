//! The core's rich internal error. The FFI layer maps it to a small public enum whose variants
//! say what the app should do; nothing here may carry an API key, a signature or a photo.

use crate::upn::UpnError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// UPN refused, or could not be reached.
    #[error(transparent)]
    Upn(#[from] UpnError),

    /// The app or driver gave something unusable; nothing was changed.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    #[error("consignment {barcode} is not on this device; run a sync to import it")]
    NotFound { barcode: String },

    #[error("consignment {barcode} was cancelled by UPN; do not deliver it")]
    Cancelled { barcode: String },

    /// UPN says the consignment is delivered, and not by a POD from this device.
    #[error("consignment {barcode} is already delivered according to UPN; nothing to capture")]
    AlreadyDelivered { barcode: String },

    /// A POD for this consignment already left the device (or may have).
    #[error("consignment {barcode} is already signed for and the POD was sent; a second signature is not accepted")]
    AlreadySigned { barcode: String },

    /// The capture is being sent right now: retry, discard or re-sign it in a moment.
    #[error("capture {id} is being sent to UPN right now; try again in a moment")]
    InFlight { id: String },

    /// The app gave a capture id that already names another capture (`differs` says what is
    /// different). Nothing was changed.
    #[error("capture id {id} is already used by another capture ({differs} differs); nothing was recorded: resend exactly the same capture to get it back, or use a new capture id for a new capture")]
    CaptureIdConflict { id: String, differs: &'static str },

    /// The database file was written by a newer version of the app.
    #[error("the database has schema version {found}, newer than this app supports ({supported}); update the app")]
    StoreTooNew { found: u32, supported: u32 },

    /// The database file is not a readable database (damaged, or not ours). It was left
    /// byte-for-byte as found.
    #[error("the database file {path} is unreadable ({reason}); it was left untouched: restore it from a backup or ask support")]
    StoreUnreadable { path: String, reason: String },

    /// Another process (or another open in this one) owns the data folder: one owner at a time.
    #[error("the data folder {data_dir} is in use by another open of the driver core (the app or another upn-driver); close it or try again shortly")]
    AlreadyOpen { data_dir: String },

    /// The data folder belongs to another depot or UPN endpoint than the one it was opened
    /// with. Nothing was read, changed or sent.
    #[error("the data folder {data_dir} belongs to depot {depot} at {endpoint}; nothing was read or sent: sign out of that depot (wipe the folder) first, or give this depot its own data folder")]
    DataFolderBound {
        data_dir: String,
        depot: String,
        endpoint: String,
    },

    /// The capture's image was removed from the device by retention, after UPN acknowledged
    /// it: UPN holds it. Not damage and not tampering.
    #[error("the image of capture {id} was removed from this device on {purged_at} (retention, after UPN acknowledged it); UPN holds the delivered copy")]
    OriginalsPurged {
        id: String,
        purged_at: chrono::DateTime<chrono::Utc>,
    },

    /// A wipe (sign-out) was asked while captures are not yet acknowledged by UPN. Nothing
    /// was removed.
    #[error("{count} capture(s) are not yet sent to UPN; nothing was removed: sync until the outbox is empty, or wipe with force to delete them unsent")]
    UnsentCaptures { count: u32 },

    /// The data folder holds capture files but the database knows no captures: the database
    /// was lost, emptied or replaced. Nothing was deleted; a person has to decide.
    #[error("the data folder {data_dir} holds {files} capture file(s) in blobs/ but its database has no captures (lost, emptied or replaced?); nothing was changed: restore the database from a backup, or move blobs/ aside to start afresh")]
    NeedsRecovery { data_dir: String, files: u32 },

    /// Another writer held the database longer than the store's busy wait
    /// (`DriverConfig::store_busy_wait`). The transaction that met it rolled back; try again
    /// shortly (work the core does in the background, it retries itself).
    #[error("the database is busy (another writer held it longer than the core waits); the change that met it was not stored: try again in a moment")]
    Busy,

    #[error("storage failed{}: {reason}", if *disk_full { " (the device is out of space)" } else { "" })]
    Storage { reason: String, disk_full: bool },

    #[error("file system error while {action}{}: {source}", if is_disk_full(source) { " (the device is out of space: free some space and try again)" } else { "" })]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    pub fn io(action: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Error::Io { action, source }
    }
}

/// True when an I/O error means the device is out of space.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        if let Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =
            e.sqlite_error_code()
        {
            return Error::Busy;
        }
        let disk_full = matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull));
        Error::Storage {
            reason: e.to_string(),
            disk_full,
        }
    }
}
