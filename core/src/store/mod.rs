//! The on-device SQLite store: one file, opened through [`Store::open`], which configures the
//! connection (WAL, foreign keys, `synchronous=FULL`) and runs the migrations in [`schema`].
//!
//! Every write that records something the driver did is committed before the call returns;
//! with `synchronous=FULL` a commit is on disk (fsynced) when it returns.

pub mod blobs;
pub mod captures;
pub mod consignments;
#[cfg(test)]
mod fixtures;
mod owner;
pub mod retention;
pub mod schema;
pub mod tracking;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use blobs::Blobs;

pub use consignments::{FeedChanges, ImportCounts};
pub use owner::{ClosingMark, DataDirLock};

/// File name of the database inside the app's data folder.
pub const DB_FILE_NAME: &str = "upn-driver.db";
/// The lock file whose exclusive lock makes one owner per data folder.
pub const LOCK_FILE_NAME: &str = "upn-driver.lock";

/// Whom a data folder belongs to: the depot and the UPN origin it was first opened with. A
/// folder is never used for another depot or endpoint, so no other depot's stops are shown and
/// no queued POD is ever sent with another depot's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderBinding {
    pub depot: String,
    /// The endpoint's origin (`scheme://host[:port]`), as the URL parser normalises it.
    pub endpoint: String,
}

/// Everything the core keeps in a data folder, opened in the one safe order: own the folder,
/// refuse a lost database next to capture files, open (and migrate) the database, refuse a
/// folder bound to another depot or endpoint, then sweep.
#[derive(Debug)]
pub struct DataDir {
    pub lock: DataDirLock,
    pub store: Store,
    pub blobs: Blobs,
}

impl DataDir {
    pub fn open(data_dir: &Path, binding: &FolderBinding) -> Result<Self> {
        let lock = DataDirLock::acquire(data_dir)?;
        let db = data_dir.join(DB_FILE_NAME);
        if !db.exists() {
            // Checked before the database is created, so a refusal leaves the folder as found.
            Blobs::check_recoverable(data_dir)?;
        }
        let store = Store::open(&db)?;
        let unbound = store.check_binding(data_dir, binding)?;
        let blobs = Blobs::open(data_dir)?;
        // Under the lock no capture of another process can be between its file and its row.
        let begun = store.captures_begun()?;
        blobs.sweep(&store.referenced_blobs()?, begun)?;
        // Recorded only by an open that succeeded: a refused one (NeedsRecovery) writes nothing.
        if unbound {
            store.record_binding(binding)?;
        }
        Ok(Self { lock, store, blobs })
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// How long a statement waits for another writer (see [`Store::set_busy_wait`]).
    busy_wait: Duration,
    /// Consumed tracking responses that neither the inbox nor a spill file could take (the disk
    /// filled after the space check): the last copy, held until a commit succeeds. Only a
    /// process death while the disk stays full can lose one.
    pub(crate) held_tracking: Vec<crate::upn::RawTrackingResponse>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// The failpoint passed before every store operation (see [`Store::conn`]).
pub const FAILPOINT_STORE_ACCESS: &str = "store.access";

/// The failpoint passed between the statements of a multi-statement transaction: a crash
/// there lands inside it (the transaction rolls back), where `store.access` is between two.
pub const FAILPOINT_STORE_IN_TX: &str = "store.in_tx";

/// How long a statement waits for another writer before failing as busy, unless the app
/// configures another wait (`DriverConfig::store_busy_wait`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The busy waits an app may configure: long enough to ride out a commit of the core's own,
/// short enough that a stuck writer surfaces as [`Error::Busy`] while someone still waits.
pub const BUSY_WAIT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(60);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Connection settings every open applies before anything else.
pub(crate) fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Storage {
            reason: format!("the database refused WAL mode (got {mode})"),
            disk_full: false,
        });
    }
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")?;
    // Room for every statement the capture path and the flush run over and over (`prepare_cached`).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Reads an existing database file without writing anything and refuses it when it is newer
/// than this code or not a database. It runs before [`configure`], because switching to WAL
/// rewrites the file header and creates `-wal`/`-shm` siblings.
fn preflight(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        // An empty file is what SQLite itself treats as a new database.
        Ok(m) if m.len() == 0 => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("reading the database file")(e)),
    }
    let unreadable = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::StoreUnreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        }
        _ => Error::from(e),
    };
    let conn = open_read_only(path).map_err(unreadable)?;
    let found = (|| -> rusqlite::Result<u32> {
        // Reading the schema proves the file is a database at all; the header alone does not.
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    })()
    .map_err(unreadable)?;
    if found > schema::latest_version() {
        return Err(Error::StoreTooNew {
            found,
            supported: schema::latest_version(),
        });
    }
    Ok(())
}

/// A connection that cannot write. Without a `-wal` sibling the main file holds everything, so
/// it is opened `immutable`: no locks, no `-shm`, nothing created next to it.
fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if Path::new(&wal).exists() {
        return Connection::open_with_flags(path, flags);
    }
    let uri = format!("file:{}?immutable=1", uri_path(path));
    Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
}

/// `path` percent-encoded for an SQLite `file:` URI (every byte but unreserved ones and `/`).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(b) {
            out.push(*b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// A file that is newer than this code or not a database is refused before anything writes
    /// to it (see [`preflight`]): it stays byte-for-byte as found, and no `-wal`/`-shm` appear.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(Error::io("creating the data folder"))?;
            }
        }
        preflight(path)?;
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            busy_wait: BUSY_TIMEOUT,
            held_tracking: Vec::new(),
        })
    }

    /// How long statements wait for another writer before failing with [`Error::Busy`]
    /// (the caller range-checks it against [`BUSY_WAIT_RANGE`]).
    pub fn set_busy_wait(&mut self, wait: Duration) -> Result<()> {
        self.conn.busy_timeout(wait)?;
        self.busy_wait = wait;
        Ok(())
    }

    pub fn busy_wait(&self) -> Duration {
        self.busy_wait
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    // Every store operation reaches SQLite through these two, so a failpoint here is a point
    // between any two store operations (each one statement or one transaction): where the
    // simulation harness and the kill tests stop the core.
    pub(crate) fn conn(&self) -> &Connection {
        crate::failpoint::hit(FAILPOINT_STORE_ACCESS);
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        crate::failpoint::hit(FAILPOINT_STORE_ACCESS);
        &mut self.conn
    }

    /// Marks a point between two statements of an open transaction ([`FAILPOINT_STORE_IN_TX`]).
    pub(crate) fn in_tx() {
        crate::failpoint::hit(FAILPOINT_STORE_IN_TX);
    }

    /// Refuses a folder bound to another depot or endpoint with [`Error::DataFolderBound`],
    /// before anything of it is read or sent. Writes nothing: true when the folder is not bound
    /// yet, and [`Store::record_binding`] is to record it once the open has succeeded.
    fn check_binding(&self, data_dir: &Path, binding: &FolderBinding) -> Result<bool> {
        let depot = self.sync_state(keys::FOLDER_DEPOT)?;
        let endpoint = self.sync_state(keys::FOLDER_ENDPOINT)?;
        match (depot, endpoint) {
            (Some(depot), Some(endpoint))
                if depot == binding.depot && endpoint == binding.endpoint =>
            {
                Ok(false)
            }
            (None, None) => Ok(true),
            (depot, endpoint) => Err(Error::DataFolderBound {
                data_dir: data_dir.display().to_string(),
                depot: depot.unwrap_or_else(|| "(unknown)".into()),
                endpoint: endpoint.unwrap_or_else(|| "(unknown)".into()),
            }),
        }
    }

    /// Binds the folder to `binding`: both keys in one transaction, so a crash never leaves
    /// half a binding.
    fn record_binding(&self, binding: &FolderBinding) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        set_sync_state(&tx, keys::FOLDER_DEPOT, &binding.depot)?;
        set_sync_state(&tx, keys::FOLDER_ENDPOINT, &binding.endpoint)?;
        tx.commit()?;
        Ok(())
    }

    /// A value from the small key/value sync state (cursors, last sync times).
    pub fn sync_state(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM sync_state WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// Every sync-state value, by key (for the support bundle: it holds no secrets).
    pub fn all_sync_state(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM sync_state ORDER BY key")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The schema version of the open database (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Sets one sync-state value, or with `None` clears it.
    pub(crate) fn put_sync_state(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => set_sync_state(&self.conn, key, value),
            None => {
                self.conn
                    .execute("DELETE FROM sync_state WHERE key = ?1", [key])?;
                Ok(())
            }
        }
    }

    pub fn sync_time(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .sync_state(key)?
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(parse_time))
    }
}

pub(crate) fn set_sync_state(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// Times in the key/value sync state are the decimal text of [`format_time`].
pub(crate) fn set_sync_time(conn: &Connection, key: &str, t: DateTime<Utc>) -> Result<()> {
    set_sync_state(conn, key, &format_time(t).to_string())
}

/// Instants are stored as INTEGER milliseconds since the Unix epoch (UTC), so SQL orders and
/// compares them numerically whatever their year.
pub(crate) fn format_time(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn parse_time(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).filter(|t| crate::domain::year_in_range(t.year()))
}

/// Keys of [`Store::sync_state`].
pub mod keys {
    /// The last import's failure (JSON `domain::diagnostics::LastFailure`), cleared by a success.
    pub const IMPORT_LAST_FAILURE: &str = "import.last_failure";
    /// When the app reported the device offline (epoch ms), while it still is.
    pub const DEVICE_OFFLINE_SINCE: &str = "device.offline_since";
    /// Cursor of the consignments feed (`since`).
    pub const IMPORT_CURSOR: &str = "import.cursor";
    /// When the last import succeeded (device clock).
    pub const IMPORT_LAST_SUCCESS: &str = "import.last_success";
    /// Device clock minus UPN clock in milliseconds, from the latest response.
    pub const CLOCK_OFFSET_MS: &str = "upn.clock_offset_ms";
    /// When the last tracking pull succeeded (device clock).
    pub const TRACKING_LAST_SUCCESS: &str = "tracking.last_success";
    /// When a tracking pull was first attempted while no pull had yet succeeded (device clock):
    /// staleness counts from here until the first success.
    pub const TRACKING_FIRST_ATTEMPT: &str = "tracking.first_attempt";
    /// The last tracking pull's failure, as shown to people (never a response body).
    pub const TRACKING_LAST_ERROR: &str = "tracking.last_error";
    /// How many events the next tracking pull asks for (adapted to the link).
    pub const TRACKING_BATCH_SIZE: &str = "tracking.batch_size";
    /// Bytes per second the last tracking batch arrived at.
    pub const TRACKING_THROUGHPUT: &str = "tracking.throughput_bps";
    /// The outbox paused by an account refusal (JSON `domain::outbox::Pause`), if it is.
    pub const OUTBOX_PAUSE: &str = "outbox.pause";
    /// The outbox's photos paused (image action disabled), if they are.
    pub const OUTBOX_IMAGE_PAUSE: &str = "outbox.pause.images";
    /// Set before the first capture file is ever written (see `Store::note_captures_begun`).
    pub const CAPTURES_BEGUN: &str = "captures.begun";
    /// The depot the data folder belongs to (recorded at its first open).
    pub const FOLDER_DEPOT: &str = "folder.depot";
    /// The UPN endpoint origin the data folder belongs to (recorded at its first open).
    pub const FOLDER_ENDPOINT: &str = "folder.endpoint";
    /// When retention last ran (device clock).
    pub const RETENTION_LAST_RUN: &str = "retention.last_run";
    /// The driver's data-saver policy (JSON `domain::data_saver::DataSaver`); absent: off.
    pub const DATA_SAVER: &str = "data_saver.policy";
    /// Photo bytes UPN acknowledged on metered networks today (JSON `MeteredUsage`).
    pub const DATA_SAVER_METERED_USAGE: &str = "data_saver.metered_usage";
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn instants_round_trip_as_epoch_ms_within_the_stored_years_only() {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
            .unwrap()
            .checked_add_signed(chrono::Duration::milliseconds(999))
            .unwrap();
        assert_eq!(parse_time(format_time(t)), Some(t));
        for (year, readable) in [(1999, false), (2000, true), (2100, true), (2101, false)] {
            let t = Utc.with_ymd_and_hms(year, 6, 1, 0, 0, 0).unwrap();
            assert_eq!(parse_time(format_time(t)).is_some(), readable, "{year}");
        }
        assert_eq!(parse_time(0), None);
        assert_eq!(parse_time(i64::MAX), None);
        assert_eq!(parse_time(i64::MIN), None);
    }
}
