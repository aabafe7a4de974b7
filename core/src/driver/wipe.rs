//! Sign-out: [`Driver::wipe`] removes everything the core made in its data folder (the
//! database and its WAL, capture files, tracking spill, logs, quarantine, the lock file) and
//! closes the core. Files the core never wrote stay. Unsent captures are the driver's work:
//! a wipe refuses while there are any, unless forced.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Driver, Shared};
use crate::error::{Error, Result};
use crate::logbook::LOG_DIR_NAME;
use crate::store::blobs::{BLOB_DIR_NAME, QUARANTINE_DIR_NAME};
use crate::store::{DataDirLock, DB_FILE_NAME, LOCK_FILE_NAME};
use crate::sync::tracking::spill::SPILL_DIR_NAME;

/// How long a wipe waits for the background work to let go of the core.
const WIPE_WAIT: Duration = Duration::from_secs(10);

/// What a wipe removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WipeReport {
    /// Captures UPN had not acknowledged that were deleted (only with `force`).
    pub unsent_deleted: u32,
}

/// A wipe that did not finish. With `driver` (nothing was done: unsent captures, or the
/// count could not be read) the core is handed back open and unchanged; without it the core
/// was closed and some files could not be removed (`error` says which): open the folder again
/// and wipe again.
#[derive(Debug)]
pub struct WipeRefused {
    pub driver: Option<Driver>,
    pub error: Error,
}

impl Driver {
    /// Captures UPN has not acknowledged yet (waiting, queued, sending, needing attention).
    pub fn unsent_count(&self) -> Result<u32> {
        let s = self.outbox_stats()?;
        Ok(s.waiting + s.queued + s.sending + s.needs_attention)
    }

    /// Removes everything the core made in the data folder and closes the core; a new open
    /// of the folder starts empty (and may bind it to another depot). While anything is
    /// unsent it refuses with [`Error::UnsentCaptures`] (naming the count) and hands the core
    /// back untouched, unless `force` is true.
    pub fn wipe(self, force: bool) -> std::result::Result<WipeReport, Box<WipeRefused>> {
        let unsent = match self.unsent_count() {
            Ok(n) if n == 0 || force => n,
            Ok(count) => {
                let error = Error::UnsentCaptures { count };
                return Err(Box::new(WipeRefused {
                    driver: Some(self),
                    error,
                }));
            }
            Err(error) => {
                return Err(Box::new(WipeRefused {
                    driver: Some(self),
                    error,
                }))
            }
        };
        let data_dir = self.shared.config.data_dir.clone();
        self.shared.online.send_replace(false);
        let Driver {
            runtime, shared, ..
        } = self;
        runtime.shutdown(WIPE_WAIT);
        // The folder stays owned (locked, registered) until its files are gone, so no other
        // open starts on half a folder.
        let closed = close(shared);
        crate::logbook::detach(&data_dir);
        let removed = match &closed {
            Closed::Alone(_) => remove_core_files(&data_dir),
            // Whatever still holds the core cannot write while the store is held.
            Closed::Held(shared) => {
                let _store = shared.store();
                remove_core_files(&data_dir)
            }
        };
        drop(closed);
        removed
            .map(|()| WipeReport {
                unsent_deleted: unsent,
            })
            .map_err(|error| {
                Box::new(WipeRefused {
                    driver: None,
                    error,
                })
            })
    }
}

/// The core after its runtime stopped: alone (the database closed, only the folder's lock
/// left), or still held by work the shutdown cut short.
enum Closed {
    Alone(#[allow(dead_code)] DataDirLock),
    Held(Arc<Shared>),
}

/// Closes the database connection once nothing else holds the core (waiting at most
/// [`WIPE_WAIT`]), keeping the folder owned.
fn close(mut shared: Arc<Shared>) -> Closed {
    let deadline = Instant::now() + WIPE_WAIT;
    loop {
        match Arc::try_unwrap(shared) {
            Ok(owned) => {
                let Shared { store, _owner, .. } = owned;
                drop(store);
                return Closed::Alone(_owner);
            }
            Err(still) if Instant::now() >= deadline => return Closed::Held(still),
            Err(still) => {
                shared = still;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Removes the core's own names in `data_dir`: the folders first and the database last, so a
/// removal cut short leaves a database that still opens (never capture files without one);
/// the WAL before the main file (a stale WAL must never meet a new database), and the lock
/// file at the very end. Other files in the folder are not the core's and stay.
fn remove_core_files(data_dir: &Path) -> Result<()> {
    for dir in [
        BLOB_DIR_NAME,
        QUARANTINE_DIR_NAME,
        SPILL_DIR_NAME,
        LOG_DIR_NAME,
    ] {
        match std::fs::remove_dir_all(data_dir.join(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("removing the data folder's files")(e))
            }
            _ => {}
        }
    }
    for suffix in ["-wal", "-shm", "-journal", ""] {
        remove_file(&data_dir.join(format!("{DB_FILE_NAME}{suffix}")))?;
    }
    remove_file(&data_dir.join(LOCK_FILE_NAME))
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("removing the data folder's files")(e))
        }
        _ => Ok(()),
    }
}
