//! The on-device SQLite store: one file, opened through [`Store::open`], which configures the
//! connection (WAL, foreign keys, `synchronous=FULL`) and runs the migrations in [`schema`].
//!
//! Every write that records something the driver did is committed before the call returns;
//! with `synchronous=FULL` a commit is on disk (fsynced) when it returns.

pub mod blobs;
pub mod captures;
pub mod consignments;
pub mod schema;
pub mod tracking;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

pub use consignments::{FeedChanges, ImportCounts};

/// File name of the database inside the app's data folder.
pub const DB_FILE_NAME: &str = "upn-driver.db";

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Connection settings every open applies before anything else.
pub(crate) fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Storage {
            reason: format!("the database refused WAL mode (got {mode})"),
            disk_full: false,
        });
    }
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(Error::io("creating the data folder"))?;
            }
        }
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// A value from the small key/value sync state (cursors, last sync times).
    pub fn sync_state(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM sync_state WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn sync_time(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.sync_state(key)?.and_then(|v| parse_time(&v)))
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

/// Timestamps are stored as fixed-width RFC 3339 UTC text, so text order is time order.
pub(crate) fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Keys of [`Store::sync_state`].
pub mod keys {
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
    /// The outbox paused by an account refusal (JSON `domain::outbox::Pause`), if it is.
    pub const OUTBOX_PAUSE: &str = "outbox.pause";
    /// The outbox's photos paused (image action disabled), if they are.
    pub const OUTBOX_IMAGE_PAUSE: &str = "outbox.pause.images";
}
