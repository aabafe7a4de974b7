//! Capture files (signature and photo originals, upload renditions) in the data folder's
//! `blobs/` directory. A file is durable when [`Blobs::write`] returns: written to a temporary
//! name, fsynced, renamed into place, and the directory fsynced, so a crash leaves either the
//! whole file or none. The database row that refers to it is committed after; a file whose row
//! never committed is an orphan and [`Blobs::sweep`] removes it at the next open.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::digest::sha256_hex;
use crate::error::{Error, Result};

pub const BLOB_DIR_NAME: &str = "blobs";
const TEMP_PREFIX: &str = ".tmp-";

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

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `bytes` under `name`, durably.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<BlobRef> {
        let temp = self.path(&format!("{TEMP_PREFIX}{name}"));
        let written = (|| -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            if let Some(full) = crate::failpoint::io_fault("blobs.disk_full") {
                return Err(full);
            }
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temp, self.path(name))?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(Error::io("saving a capture file")(e));
        }
        Ok(BlobRef {
            name: name.to_string(),
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
        })
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

    pub fn remove(&self, name: &str) {
        let _ = fs::remove_file(self.path(name));
    }

    /// Removes temporary files and files no row refers to. Call only when no capture is running.
    pub fn sweep(&self, referenced: &HashSet<String>) -> Result<u32> {
        let mut removed = 0;
        let entries = fs::read_dir(&self.dir).map_err(Error::io("listing the capture folder"))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let orphan = name.starts_with(TEMP_PREFIX) || !referenced.contains(&name);
            if orphan && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(
                removed,
                "removed capture files left by an interrupted capture"
            );
        }
        Ok(removed)
    }
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

    #[test]
    fn write_read_verify_and_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let r = blobs.write("a.orig", b"hello").unwrap();
        assert_eq!(r.bytes, 5);
        assert_eq!(blobs.read_verified("a.orig", &r.sha256).unwrap(), b"hello");
        assert!(blobs
            .read_verified("a.orig", &sha256_hex(b"other"))
            .is_err());
        blobs.write("orphan.orig", b"x").unwrap();
        fs::write(blobs.dir().join(".tmp-half"), b"partial").unwrap();
        let keep: HashSet<String> = ["a.orig".to_string()].into();
        assert_eq!(blobs.sweep(&keep).unwrap(), 2);
        let left: Vec<_> = fs::read_dir(blobs.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["a.orig"]);
    }
}
