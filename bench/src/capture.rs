//! Row 2: capture latency until durable return, `add_photo` and `sign` through the `Driver`,
//! each call followed by the raw floor for the same bytes (interleaved, so both see the same
//! disk and the same neighbours): write + fdatasync + rename + directory fsync + one
//! `synchronous=FULL` commit in a WAL database.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rusqlite::Connection;
use upn_core::domain::outbox::CaptureKind;

use crate::stats::{percentile, timed};
use crate::{report, setup, Options, Result};

pub fn run(o: &Options) -> Result {
    let photo = std::fs::read(o.string("photo")?).map_err(|e| format!("--photo: {e}"))?;
    let signature =
        std::fs::read(o.string("signature")?).map_err(|e| format!("--signature: {e}"))?;
    let runs = o.number("runs", 50)? as usize;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sim = setup::sim(runs, None)?;
    let driver = setup::imported(&setup::folder(work.path(), "core")?, &sim)?;
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    let raw = Raw::open(&setup::folder(work.path(), "raw")?)?;

    let (mut photo_ours, mut photo_raw, mut sign_ours, mut sign_raw) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, barcode) in barcodes.iter().take(runs).enumerate() {
        let (t, _) = timed(|| {
            driver
                .add_photo(barcode, &photo, CaptureKind::Goods, Utc::now(), None)
                .map_err(|e| format!("add_photo: {e}"))
        })?;
        photo_ours.push(t);
        photo_raw.push(raw.write(&format!("p{i}"), &photo)?);
        let (t, _) = timed(|| {
            driver
                .sign(barcode, &signature, "A. Consignee", Utc::now(), None)
                .map_err(|e| format!("sign: {e}"))
        })?;
        sign_ours.push(t);
        sign_raw.push(raw.write(&format!("s{i}"), &signature)?);
    }
    setup::close(driver);
    report(serde_json::json!({
        "runs": photo_ours.len(),
        "photo_bytes": photo.len(),
        "signature_bytes": signature.len(),
        "add_photo_p50_ms": percentile(&photo_ours, 50.0),
        "add_photo_p99_ms": percentile(&photo_ours, 99.0),
        "add_photo_raw_p50_ms": percentile(&photo_raw, 50.0),
        "add_photo_raw_p99_ms": percentile(&photo_raw, 99.0),
        "sign_p50_ms": percentile(&sign_ours, 50.0),
        "sign_p99_ms": percentile(&sign_ours, 99.0),
        "sign_raw_p50_ms": percentile(&sign_raw, 50.0),
        "sign_raw_p99_ms": percentile(&sign_raw, 99.0),
    }));
    Ok(())
}

/// The durable-write floor: what any capture path must at least do.
struct Raw {
    dir: std::path::PathBuf,
    db: Connection,
}

impl Raw {
    fn open(dir: &Path) -> Result<Self> {
        let db = Connection::open(dir.join("raw.db")).map_err(|e| e.to_string())?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE captures (id TEXT PRIMARY KEY, name TEXT NOT NULL, bytes INTEGER NOT NULL);",
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            db,
        })
    }

    fn write(&self, id: &str, bytes: &[u8]) -> Result<Duration> {
        let (t, _) = timed(|| {
            let tmp = self.dir.join(format!("{id}.tmp"));
            let done = self.dir.join(format!("{id}.orig"));
            let io = |e: std::io::Error| e.to_string();
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(bytes).map_err(io)?;
            f.sync_data().map_err(io)?;
            drop(f);
            std::fs::rename(&tmp, &done).map_err(io)?;
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
            self.db
                .execute(
                    "INSERT INTO captures (id, name, bytes) VALUES (?1, ?2, ?3)",
                    rusqlite::params![id, done.to_string_lossy(), bytes.len() as i64],
                )
                .map_err(|e| e.to_string())
        })?;
        Ok(t)
    }
}
