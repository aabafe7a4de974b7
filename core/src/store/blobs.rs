//! Capture files (signature and photo originals, upload renditions) in the data folder's
//! `blobs/` directory. A file is durable when [`Blobs::write`] returns: written to a temporary
//! name, fsynced, renamed into place, and the directory fsynced, so a crash leaves either the
//! whole file or none. The database row that refers to it is committed after; a file whose row
//! never committed is an orphan, and [`Blobs::sweep`] moves it to `quarantine/` at the next open.
//!
//! The sweep is the one place the core moves capture files it did not just write, so it is
//! narrow: it runs only while the caller owns the data folder ([`super::DataDirLock`]: no other
//! process can be between writing a file and committing its row), only on names the core itself
//! writes ([`is_core_name`]), only on regular files (never through a symlink), never deletes,
//! and refuses outright when the database knows no captures while capture files exist (a lost
//! or replaced database: [`Error::NeedsRecovery`]).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::digest::sha256_hex;
use crate::error::{Error, Result};

pub const BLOB_DIR_NAME: &str = "blobs";
/// Where the sweep puts orphans, next to `blobs/`: kept for a person to look at, never deleted.
pub const QUARANTINE_DIR_NAME: &str = "quarantine";
const TEMP_PREFIX: &str = ".tmp-";
/// What the core appends to a capture id (32 lowercase hex digits) to name its files.
const SUFFIXES: [&str; 2] = [".orig", ".upload"];

/// What [`Blobs::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCheck {
    Intact,
    Changed,
    Missing,
    Unreadable,
}

/// A name the core writes: `<32 hex>.orig`, `<32 hex>.upload`, or either under [`TEMP_PREFIX`].
/// Returns whether it is a finished (renamed into place) file, or `None` for any other name.
pub fn is_core_name(name: &str) -> Option<bool> {
    let (finished, rest) = match name.strip_prefix(TEMP_PREFIX) {
        Some(rest) => (false, rest),
        None => (true, name),
    };
    let id = SUFFIXES.iter().find_map(|s| rest.strip_suffix(s))?;
    let hex = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then_some(finished)
}

/// What [`Blobs::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Orphans moved to `quarantine/`.
    pub quarantined: u32,
    /// Entries left alone: names the core never writes, symlinks, directories.
    pub foreign: u32,
}

#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// What was written: enough to verify the file later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobRef {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

/// A file written by [`Blobs::stage`], not yet under its name.
#[derive(Debug)]
pub struct Staged {
    temp: PathBuf,
    pub blob: BlobRef,
}

impl Blobs {
    pub fn open(data_dir: &Path) -> Result<Self> {
        let dir = data_dir.join(BLOB_DIR_NAME);
        fs::create_dir_all(&dir).map_err(Error::io("creating the capture folder"))?;
        Ok(Self { dir })
    }

    /// Durable files in another folder of the data folder (the tracking spill files): the same
    /// write discipline as the capture files. Never swept.
    pub fn folder(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(Error::io("creating a data subfolder"))?;
        Ok(Self { dir })
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `bytes` under `name`, durably.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<BlobRef> {
        let staged = self.stage(name, bytes)?;
        self.publish(&staged)?;
        Ok(staged.blob)
    }

    /// The first half of [`Blobs::write`]: `bytes` written and fsynced under a temporary name
    /// (an orphan the sweep quarantines if the process dies here). Nothing under `name` is
    /// touched until [`Blobs::publish`], so a capture whose id turns out to be taken never
    /// overwrites the file of the capture that holds it. One stage per name at a time.
    pub fn stage(&self, name: &str, bytes: &[u8]) -> Result<Staged> {
        let temp = self.path(&format!("{TEMP_PREFIX}{name}"));
        let (written, sha256) = crate::digest::sha256_hex_during(bytes, || {
            let mut file = File::create(&temp)?;
            if let Some(full) = crate::failpoint::io_fault("blobs.disk_full") {
                return Err(full);
            }
            file.write_all(bytes)?;
            // fdatasync: the bytes and what reading them back needs (the new file's size and
            // blocks); the name is made durable by `publish`'s directory fsync.
            file.sync_data()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(Error::io("saving a capture file")(e));
        }
        Ok(Staged {
            temp,
            blob: BlobRef {
                name: name.to_string(),
                sha256,
                bytes: bytes.len() as u64,
            },
        })
    }

    /// Renames a staged file into place and fsyncs the directory: durable under its name.
    pub fn publish(&self, staged: &Staged) -> Result<()> {
        let moved = fs::rename(&staged.temp, self.path(&staged.blob.name))
            .and_then(|()| sync_dir(&self.dir));
        if let Err(e) = moved {
            let _ = fs::remove_file(&staged.temp);
            return Err(Error::io("saving a capture file")(e));
        }
        Ok(())
    }

    /// Drops a staged file that will not be published.
    pub fn unstage(&self, staged: &Staged) {
        let _ = fs::remove_file(&staged.temp);
    }

    /// Reads a file and checks it against the hash recorded when it was written.
    pub fn read_verified(&self, name: &str, sha256: &str) -> Result<Vec<u8>> {
        let bytes = fs::read(self.path(name)).map_err(Error::io("reading a capture file"))?;
        if sha256_hex(&bytes) != sha256 {
            return Err(Error::Storage {
                reason: format!("capture file {name} does not match its recorded sha256"),
                disk_full: false,
            });
        }
        Ok(bytes)
    }

    /// Whether a file still holds the bytes recorded when it was written (for `verify`).
    pub fn check(&self, name: &str, sha256: &str) -> FileCheck {
        match fs::read(self.path(name)) {
            Ok(bytes) if sha256_hex(&bytes) == sha256 => FileCheck::Intact,
            Ok(_) => FileCheck::Changed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileCheck::Missing,
            Err(_) => FileCheck::Unreadable,
        }
    }

    pub fn remove(&self, name: &str) {
        let _ = fs::remove_file(self.path(name));
    }

    /// The core's files in `blobs/` as (name, finished), without following symlinks. Anything
    /// else is counted in the second value and never touched.
    fn core_files(&self) -> Result<(Vec<(String, bool)>, u32)> {
        let mut files = Vec::new();
        let mut foreign = 0;
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((files, 0)),
            Err(e) => return Err(Error::io("listing the capture folder")(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io("listing the capture folder"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // symlink_metadata: a link is judged as a link, never as what it points to.
            let regular = fs::symlink_metadata(entry.path()).is_ok_and(|m| m.file_type().is_file());
            match is_core_name(&name) {
                Some(finished) if regular => files.push((name, finished)),
                _ => foreign += 1,
            }
        }
        Ok((files, foreign))
    }

    /// Refuses when `blobs/` holds finished capture files although the database knows no
    /// captures: the database was lost, emptied or replaced, and those files may be captures
    /// that never reached UPN. Nothing is moved; a person decides.
    pub fn check_recoverable(data_dir: &Path) -> Result<()> {
        let blobs = Self {
            dir: data_dir.join(BLOB_DIR_NAME),
        };
        let (files, _) = blobs.core_files()?;
        let finished = files.iter().filter(|(_, finished)| *finished).count();
        if finished > 0 {
            return Err(Error::NeedsRecovery {
                data_dir: data_dir.display().to_string(),
                files: u32::try_from(finished).unwrap_or(u32::MAX),
            });
        }
        Ok(())
    }

    /// Moves the core's files that no row refers to (a crash between writing a file and
    /// committing its row), and interrupted temporary files, to `quarantine/`. The caller must
    /// own the data folder and run no capture meanwhile. With no referenced file at all, in a
    /// database that never began capturing (`captures_begun` false: a lost or replaced one),
    /// it refuses instead if finished files exist.
    pub fn sweep(&self, referenced: &HashSet<String>, captures_begun: bool) -> Result<Swept> {
        let data_dir = self.dir.parent().unwrap_or(&self.dir);
        if referenced.is_empty() && !captures_begun {
            Self::check_recoverable(data_dir)?;
        }
        let quarantine = data_dir.join(QUARANTINE_DIR_NAME);
        // Never through a symlink: not into a linked blobs/ nor out to a linked quarantine/.
        let linked = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_dir());
        if linked(&self.dir) || linked(&quarantine) {
            tracing::warn!(
                "blobs/ or quarantine/ is not a plain folder; the orphan sweep is skipped"
            );
            return Ok(Swept::default());
        }
        let (files, foreign) = self.core_files()?;
        let mut swept = Swept {
            foreign,
            ..Swept::default()
        };
        for (name, _) in files.iter().filter(|(n, _)| !referenced.contains(n)) {
            fs::create_dir_all(&quarantine).map_err(Error::io("creating the quarantine folder"))?;
            let target = free_name(&quarantine, name);
            fs::rename(self.path(name), &target)
                .map_err(Error::io("quarantining a capture file"))?;
            swept.quarantined += 1;
        }
        if swept.quarantined > 0 {
            sync_dir(&quarantine).map_err(Error::io("quarantining a capture file"))?;
            sync_dir(&self.dir).map_err(Error::io("quarantining a capture file"))?;
            tracing::warn!(
                quarantined = swept.quarantined,
                "moved capture files without a committed row (an interrupted capture) to quarantine/"
            );
        }
        Ok(swept)
    }
}

/// `dir/name`, or `dir/name.N` for the first N that is free: a quarantined file never replaces
/// another.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let mut candidate = dir.join(name);
    let mut n = 1u32;
    while fs::symlink_metadata(&candidate).is_ok() {
        candidate = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    candidate
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    fn names(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    #[test]
    fn write_and_read_verified() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let r = blobs.write(&format!("{A}.orig"), b"hello").unwrap();
        assert_eq!(r.bytes, 5);
        assert_eq!(blobs.read_verified(&r.name, &r.sha256).unwrap(), b"hello");
        assert!(blobs.read_verified(&r.name, &sha256_hex(b"other")).is_err());
    }

    #[test]
    fn core_names_are_exactly_what_the_core_writes() {
        assert_eq!(is_core_name(&format!("{A}.orig")), Some(true));
        assert_eq!(is_core_name(&format!("{A}.upload")), Some(true));
        assert_eq!(is_core_name(&format!(".tmp-{A}.orig")), Some(false));
        for other in [
            "a.orig".to_string(),
            format!("{}.orig", A.to_uppercase()),
            format!("{A}.orig.bak"),
            format!("{A}x.orig"),
            format!("{A}.jpg"),
            ".tmp-notes".to_string(),
            "notes.txt".to_string(),
        ] {
            assert_eq!(is_core_name(&other), None, "{other}");
        }
    }

    #[test]
    fn the_sweep_quarantines_only_the_cores_own_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let kept = blobs.write(&format!("{A}.orig"), b"kept").unwrap();
        blobs.write(&format!("{B}.orig"), b"orphan").unwrap();
        fs::write(blobs.dir().join(format!(".tmp-{B}.upload")), b"partial").unwrap();
        // Names the core never writes, a directory and a symlink with a core name: left alone.
        fs::write(blobs.dir().join("notes.txt"), b"mine").unwrap();
        fs::write(blobs.dir().join("a.orig"), b"mine too").unwrap();
        fs::create_dir(blobs.dir().join(format!("{B}.upload"))).unwrap();
        let outside = dir.path().join("outside.jpg");
        fs::write(&outside, b"precious").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            &outside,
            blobs.dir().join(format!("{}.orig", "9".repeat(32))),
        )
        .unwrap();

        let referenced: HashSet<String> = [kept.name.clone()].into();
        let swept = blobs.sweep(&referenced, false).unwrap();
        assert_eq!(swept.quarantined, 2, "{swept:?}");
        let mut left = vec![
            format!("{A}.orig"),
            format!("{B}.upload"),
            "a.orig".to_string(),
            "notes.txt".to_string(),
        ];
        if cfg!(unix) {
            left.push(format!("{}.orig", "9".repeat(32)));
        }
        left.sort();
        assert_eq!(names(blobs.dir()), left);
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        let quarantine = dir.path().join(QUARANTINE_DIR_NAME);
        let mut moved = vec![format!(".tmp-{B}.upload"), format!("{B}.orig")];
        moved.sort();
        assert_eq!(names(&quarantine), moved);
        assert_eq!(
            fs::read(quarantine.join(format!("{B}.orig"))).unwrap(),
            b"orphan"
        );

        // A second orphan of the same name never replaces the first one in quarantine.
        blobs.write(&format!("{B}.orig"), b"again").unwrap();
        assert_eq!(blobs.sweep(&referenced, false).unwrap().quarantined, 1);
        assert_eq!(
            fs::read(quarantine.join(format!("{B}.orig"))).unwrap(),
            b"orphan"
        );
        assert_eq!(
            fs::read(quarantine.join(format!("{B}.orig.1"))).unwrap(),
            b"again"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_sweep_never_works_through_a_linked_folder() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let orphan = format!("{B}.orig");
        fs::write(elsewhere.path().join(&orphan), b"not ours to move").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(BLOB_DIR_NAME)).unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let referenced: HashSet<String> = [format!("{A}.orig")].into();
        assert_eq!(blobs.sweep(&referenced, false).unwrap(), Swept::default());
        assert_eq!(names(elsewhere.path()), std::slice::from_ref(&orphan));

        // A plain blobs/ but a linked quarantine/: nothing is moved out through it.
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        blobs.write(&orphan, b"orphan").unwrap();
        let target = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(target.path(), dir.path().join(QUARANTINE_DIR_NAME)).unwrap();
        assert_eq!(blobs.sweep(&referenced, false).unwrap().quarantined, 0);
        assert_eq!(names(blobs.dir()), [orphan]);
        assert!(names(target.path()).is_empty());
    }

    #[test]
    fn no_captures_in_the_database_but_capture_files_present_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        blobs.write(&format!("{A}.orig"), b"unsent").unwrap();
        blobs.write(&format!("{A}.upload"), b"rendition").unwrap();
        let before = names(blobs.dir());
        let err = blobs.sweep(&HashSet::new(), false).unwrap_err();
        assert!(
            matches!(err, Error::NeedsRecovery { files: 2, .. }),
            "{err}"
        );
        assert_eq!(names(blobs.dir()), before);
        assert!(!dir.path().join(QUARANTINE_DIR_NAME).exists());

        // Only an interrupted temporary file (never reported stored): nothing to recover.
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        fs::write(blobs.dir().join(format!(".tmp-{A}.orig")), b"partial").unwrap();
        assert_eq!(blobs.sweep(&HashSet::new(), false).unwrap().quarantined, 1);

        // A database that began capturing and lists no file: its first capture was cut short
        // between the file and the row, an orphan to quarantine, not a lost database.
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        fs::write(blobs.dir().join(format!("{A}.orig")), b"first").unwrap();
        assert_eq!(blobs.sweep(&HashSet::new(), true).unwrap().quarantined, 1);
    }
}
