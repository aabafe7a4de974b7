//! One owner per data folder: [`DataDirLock`], and the process-wide registry behind it.
//!
//! A folder whose core is closing is not yet free: the core's own threads (a blocking commit
//! finishing, the listener dispatcher mid-round) may still hold it for a moment after the app
//! dropped it. An open of that folder in this process waits for the closing owner to let go
//! (bounded by [`CLOSING_WAIT`]) instead of failing with `AlreadyOpen`; an open while the owner
//! is still open is refused at once, as before. The wait decides on the registry's own state,
//! under its lock: never two owners, and never a refusal only because a close was slow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::LOCK_FILE_NAME;
use crate::error::{Error, Result};

/// How long an open waits for a closing owner of the same folder in this process.
pub const CLOSING_WAIT: Duration = Duration::from_secs(30);

/// Exclusive ownership of a data folder, for as long as this value lives: first a place in
/// this process's registry of open folders (keyed by the canonical path, so a second open in
/// the process is refused at once, whatever path spelling it used and whatever the platform's
/// lock semantics between two descriptors of one process), then an advisory lock (`flock` on
/// Unix) on [`LOCK_FILE_NAME`], held by the open file. Any second open, in this process or
/// another, is refused with [`Error::AlreadyOpen`], so only one core at a time writes captures,
/// runs the orphan sweep or pulls tracking batches in that folder. The lock goes with the file
/// descriptor: a crashed or killed owner never leaves the folder locked.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
    registered: Registered,
}

/// Whether a registered folder's owner is still open or already closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Open,
    /// Closing, with the number of opens now waiting for it.
    Closing {
        waiting: usize,
    },
}

/// The process-wide set of data folders owned in this process, and the signal that one was
/// given back.
struct Registry {
    folders: Mutex<HashMap<PathBuf, Owner>>,
    released: Condvar,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        folders: Mutex::default(),
        released: Condvar::new(),
    })
}

impl Registry {
    /// A panic elsewhere while holding the set cannot leave it unusable: take it over.
    fn folders(&self) -> MutexGuard<'_, HashMap<PathBuf, Owner>> {
        self.folders.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A folder's place in the registry, given back when dropped.
#[derive(Debug)]
struct Registered(PathBuf);

impl Registered {
    fn take(data_dir: &Path, closing_wait: Duration) -> Result<Self> {
        let canonical = data_dir
            .canonicalize()
            .map_err(Error::io("resolving the data folder's path"))?;
        let registry = registry();
        let deadline = Instant::now() + closing_wait;
        let mut folders = registry.folders();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match folders.get(&canonical) {
                None => break,
                Some(Owner::Closing { .. }) if !left.is_zero() => {
                    count_waiting(&mut folders, &canonical, 1);
                    folders = registry
                        .released
                        .wait_timeout(folders, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    count_waiting(&mut folders, &canonical, -1);
                }
                Some(_) => {
                    return Err(Error::AlreadyOpen {
                        data_dir: data_dir.display().to_string(),
                    })
                }
            }
        }
        folders.insert(canonical.clone(), Owner::Open);
        Ok(Self(canonical))
    }
}

/// Counts an open waiting for a closing owner (seen by tests, which open that window).
fn count_waiting(folders: &mut HashMap<PathBuf, Owner>, folder: &Path, by: isize) {
    if let Some(Owner::Closing { waiting }) = folders.get_mut(folder) {
        *waiting = waiting.saturating_add_signed(by);
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        registry().folders().remove(&self.0);
        registry().released.notify_all();
    }
}

/// Marks a folder's owner as closing when dropped (held by the app-facing `Driver`, whose drop
/// is the app letting go), so a reopen in this process waits for the owner's threads to finish
/// instead of being refused.
#[derive(Debug)]
pub struct ClosingMark(PathBuf);

impl Drop for ClosingMark {
    fn drop(&mut self) {
        if let Some(owner) = registry().folders().get_mut(&self.0) {
            *owner = Owner::Closing { waiting: 0 };
        }
    }
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        Self::acquire_waiting(data_dir, CLOSING_WAIT)
    }

    /// [`DataDirLock::acquire`], waiting at most `closing_wait` for a closing owner.
    pub fn acquire_waiting(data_dir: &Path, closing_wait: Duration) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(Error::io("creating the data folder"))?;
        let registered = Registered::take(data_dir, closing_wait)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(data_dir.join(LOCK_FILE_NAME))
            .map_err(Error::io("opening the data folder's lock file"))?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
                registered,
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::AlreadyOpen {
                data_dir: data_dir.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("locking the data folder")(e)),
        }
    }

    /// The mark that tells this process the owner is closing, once the mark is dropped.
    pub fn closing_mark(&self) -> ClosingMark {
        ClosingMark(self.registered.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_is_refused_at_once_while_the_owner_is_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = DataDirLock::acquire(dir.path()).expect("first owner");
        let started = Instant::now();
        let second = DataDirLock::acquire(dir.path());
        assert!(
            matches!(second, Err(Error::AlreadyOpen { .. })),
            "{second:?}"
        );
        assert!(
            started.elapsed() < CLOSING_WAIT / 2,
            "an open owner is not waited for"
        );
        drop(owner);
        DataDirLock::acquire(dir.path()).expect("free again once the owner is gone");
    }

    /// Opens waiting for `folder`'s closing owner now.
    fn waiting_for(folder: &Path) -> usize {
        let canonical = folder.canonicalize().expect("canonical");
        match registry().folders().get(&canonical) {
            Some(Owner::Closing { waiting }) => *waiting,
            _ => 0,
        }
    }

    #[test]
    fn an_open_waits_for_a_closing_owner_and_takes_over_when_it_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = DataDirLock::acquire(dir.path()).expect("first owner");
        drop(owner.closing_mark());
        let path = dir.path().to_path_buf();
        let opener = std::thread::spawn(move || DataDirLock::acquire(&path).map(|_| ()));
        // The window: the opener is inside its wait while the closing owner still holds on.
        let deadline = Instant::now() + CLOSING_WAIT;
        while waiting_for(dir.path()) == 0 {
            assert!(Instant::now() < deadline, "the opener never waited");
            std::thread::yield_now();
        }
        drop(owner);
        let opened = opener.join().expect("opener joined");
        assert!(opened.is_ok(), "{opened:?}");
    }

    #[test]
    fn a_closing_owner_that_never_lets_go_is_refused_after_the_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = DataDirLock::acquire(dir.path()).expect("first owner");
        drop(owner.closing_mark());
        let second = DataDirLock::acquire_waiting(dir.path(), Duration::from_millis(50));
        assert!(
            matches!(second, Err(Error::AlreadyOpen { .. })),
            "{second:?}"
        );
        drop(owner);
    }
}
