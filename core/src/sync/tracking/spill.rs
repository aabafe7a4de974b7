//! Spill files: a consumed tracking response the inbox could not take (disk full, database
//! locked by another writer) is written to `tracking-spill/` in the data folder with the same
//! discipline as capture files (temporary name, fsync, rename, directory fsync), and moved into
//! the inbox at the next open or pull, then deleted. Only names this module writes
//! (`{received_at_ms:013}-{sha256}.json`) are ever read or deleted.

use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::store::blobs::Blobs;
use crate::store::Store;
use crate::sync::import::lock;

/// The spill folder's name inside the data folder.
pub const SPILL_DIR_NAME: &str = "tracking-spill";

/// One spill file, as its name describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Spilled {
    pub name: String,
    pub received_at: DateTime<Utc>,
    pub sha256: String,
}

/// Writes `body` durably to the spill folder.
pub(super) fn write(data_dir: &Path, body: &[u8], received_at: DateTime<Utc>) -> Result<()> {
    let name = format!(
        "{:013}-{}.json",
        received_at.timestamp_millis().max(0),
        sha256_hex(body)
    );
    Blobs::folder(data_dir.join(SPILL_DIR_NAME))?.write(&name, body)?;
    Ok(())
}

/// The spill files waiting, oldest first. Anything else in the folder is left alone.
pub(super) fn list(data_dir: &Path) -> Result<Vec<Spilled>> {
    let dir = data_dir.join(SPILL_DIR_NAME);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing the tracking spill folder")(e)),
    };
    let mut out: Vec<Spilled> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| parse_name(&e.file_name().to_string_lossy()))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn parse_name(name: &str) -> Option<Spilled> {
    let stem = name.strip_suffix(".json")?;
    let (millis, sha256) = stem.split_once('-')?;
    let well_formed = millis.len() == 13
        && millis.bytes().all(|b| b.is_ascii_digit())
        && sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return None;
    }
    Some(Spilled {
        name: name.to_string(),
        received_at: DateTime::from_timestamp_millis(millis.parse().ok()?)?,
        sha256: sha256.to_string(),
    })
}

/// Moves every spill file into the inbox (one commit each), then deletes it. A file whose
/// bytes do not match its name is left in place and reported. Returns how many were applied.
pub(super) fn apply_all(store: &std::sync::Mutex<Store>, data_dir: &Path) -> Result<u32> {
    let mut applied = 0;
    for spilled in list(data_dir)? {
        let path = data_dir.join(SPILL_DIR_NAME).join(&spilled.name);
        let body = match fs::read(&path) {
            Ok(body) => body,
            Err(e) => {
                // One unreadable file must not hold up the others or the pulls.
                tracing::error!(file = %spilled.name, error = %e, "a tracking spill file could not be read; left in place");
                continue;
            }
        };
        if sha256_hex(&body) != spilled.sha256 {
            tracing::error!(
                file = %spilled.name,
                "a tracking spill file does not match its sha256; left in place for support"
            );
            continue;
        }
        let inbox_id = lock(store)?.store_spilled_response(&body, spilled.received_at)?;
        // Deleted only once the inbox holds it; a crash in between is harmless (same bytes,
        // same row: the spill insert is skipped).
        fs::remove_file(&path).map_err(Error::io("removing an applied tracking spill file"))?;
        tracing::info!(inbox_id, "a spilled tracking response is in the inbox now");
        applied += 1;
    }
    Ok(applied)
}

/// Bytes free for this process in the folder holding `dir`, when the platform says.
#[cfg(unix)]
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `stat` points to
    // writable memory of the type statvfs fills in.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::useless_conversion)] // the field widths differ between platforms
    let (available, fragment) = (u64::from(stat.f_bavail), u64::from(stat.f_frsize));
    Some(available.saturating_mul(fragment))
}

#[cfg(not(unix))]
pub(super) fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tracking_spill_files_round_trip_and_foreign_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap();
        write(dir.path(), b"{\"events\":[]}", at).unwrap();
        let folder = dir.path().join(SPILL_DIR_NAME);
        fs::write(folder.join("notes.txt"), b"not ours").unwrap();
        fs::write(folder.join(".tmp-x"), b"half").unwrap();
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].received_at, at);
        assert_eq!(listed[0].sha256, sha256_hex(b"{\"events\":[]}"));
        assert!(free_bytes(dir.path()).is_some_and(|n| n > 0));
    }
}
