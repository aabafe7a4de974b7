//! Schema migrations. `PRAGMA user_version` holds the version; every upgrade of one open runs in
//! a single IMMEDIATE transaction, and a file newer than this code is refused, never touched.
//!
//! Rules for whoever adds a migration: append to [`MIGRATIONS`], never edit a released one, and
//! never delete rows that still wait to be sent (unsent captures survive every upgrade).

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// Every migration with the version it produces, in order. Each is one SQL file in
/// `migrations/`, named after that version. Versions only grow; a gap is allowed (branches
/// number their migrations ahead of a merge), so nothing below assumes `index + 1 == version`.
pub const MIGRATIONS: &[(u32, &str)] = &[
    // 1: consignments and pallets from the import, and small key/value sync state.
    (1, include_str!("migrations/v001_consignments.sql")),
    // 2: the tracking inbox (raw responses, stored before processing) and applied events.
    (2, include_str!("migrations/v002_tracking.sql")),
    // 3: captured PODs and photos, and their outbox state.
    (3, include_str!("migrations/v003_outbox.sql")),
    // 4: the guarded outbox: recorded wait lengths, frozen POD image counts, GPS fix skew.
    (4, include_str!("migrations/v004_outbox_guard.sql")),
    // 5: every stored instant as INTEGER epoch milliseconds (text order was not time order).
    (5, include_str!("migrations/v005_epoch_ms.sql")),
    // 6: tracking guard: malformed events kept aside, parser version of failed batches.
    (6, include_str!("migrations/v006_tracking_guard.sql")),
    // 7: the tamper-evident POD hash and the manifest it covers.
    (7, include_str!("migrations/v007_pod_hash.sql")),
    // 8: typed outbox reasons (last_error_code) and retention (purged_at).
    (8, include_str!("migrations/v008_retention_reasons.sql")),
    // 9: tracking response bodies apart from the inbox row (marking it processed no longer
    // rewrites the body).
    (9, include_str!("migrations/v009_tracking_bodies.sql")),
];

/// The version this code writes.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Brings the file up to [`latest_version`], or refuses a newer one.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, latest_version())
}

/// Upgrades to `target` (tests use it to build frozen older files).
pub(crate) fn migrate_to(conn: &mut Connection, target: u32) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > latest_version() {
        return Err(Error::StoreTooNew {
            found,
            supported: latest_version(),
        });
    }
    if found >= target {
        return Ok(());
    }
    for (version, sql) in MIGRATIONS
        .iter()
        .filter(|(v, _)| *v > found && *v <= target)
    {
        tracing::info!(from = found, to = version, "migrating the store");
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(())
}

/// Every table, index and column, normalised, so two files can be compared.
#[cfg(test)]
pub(crate) fn schema_of(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .expect("query");
    for row in rows {
        let (kind, name, table, sql) = row.expect("row");
        out.push(format!("{kind} {name} on {table}"));
        if kind == "table" {
            let mut cols = conn
                .prepare(&format!("PRAGMA table_xinfo({name})"))
                .expect("table_info");
            let cols = cols
                .query_map([], |r| {
                    Ok(format!(
                        "  {} {} notnull={} default={:?} pk={}",
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?
                    ))
                })
                .expect("cols");
            out.extend(cols.map(|c| c.expect("col")));
            let strict: i64 = conn
                .query_row(
                    "SELECT strict FROM pragma_table_list WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .expect("table_list");
            out.push(format!("  strict={strict}"));
            let mut fks = conn
                .prepare(&format!("PRAGMA foreign_key_list({name})"))
                .expect("foreign_key_list");
            let fks = fks
                .query_map([], |r| {
                    Ok(format!(
                        "  fk {} -> {}({:?}) on delete {}",
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, String>(6)?
                    ))
                })
                .expect("fks");
            out.extend(fks.map(|f| f.expect("fk")));
        } else if let Some(sql) = sql {
            out.push(format!(
                "  {}",
                sql.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{configure, Store};

    #[test]
    fn every_older_version_upgrades_to_the_fresh_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = Store::open(&dir.path().join("fresh.db")).expect("fresh");
        let expected = schema_of(fresh.conn());
        let older = std::iter::once(0).chain(MIGRATIONS.iter().map(|(v, _)| *v));
        for version in older.filter(|v| *v < latest_version()) {
            let path = dir.path().join(format!("v{version}.db"));
            {
                let mut conn = Connection::open(&path).expect("open");
                configure(&conn).expect("configure");
                migrate_to(&mut conn, version).expect("build old version");
            }
            let upgraded = Store::open(&path).expect("upgrade");
            assert_eq!(
                schema_of(upgraded.conn()),
                expected,
                "upgrade from v{version}"
            );
            let v: u32 = upgraded
                .conn()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .expect("version");
            assert_eq!(v, latest_version());
        }
    }

    /// Every file in `dir` with its sha256: what "changes nothing" is measured by.
    fn snapshot(dir: &std::path::Path) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| {
                let e = e.expect("entry");
                let bytes = std::fs::read(e.path()).expect("read");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    crate::digest::sha256_hex(&bytes),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn newer_file(path: &std::path::Path, journal_mode: &str) {
        let conn = Connection::open(path).expect("open");
        conn.query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |_| {
            Ok(())
        })
        .expect("journal mode");
        conn.execute_batch(
            "CREATE TABLE future (x INTEGER); INSERT INTO future VALUES (1);
             PRAGMA user_version = 999;",
        )
        .expect("future");
    }

    #[test]
    fn a_newer_file_is_refused_and_left_byte_identical() {
        for mode in ["DELETE", "WAL"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("newer.db");
            newer_file(&path, mode);
            let before = snapshot(dir.path());
            assert_eq!(before.len(), 1, "{before:?}");
            let err = Store::open(&path).expect_err("must refuse");
            assert!(
                matches!(err, Error::StoreTooNew { found: 999, .. }),
                "{mode}: {err}"
            );
            // Same bytes, and no -wal / -shm (or anything else) created beside it.
            assert_eq!(snapshot(dir.path()), before, "{mode}");
        }
    }

    #[test]
    fn a_corrupt_file_is_refused_and_left_byte_identical() {
        let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 13) as u8).collect();
        let mut with_header = b"SQLite format 3\0".to_vec();
        with_header.extend_from_slice(&garbage[16..]);
        for (name, bytes) in [("garbage", garbage), ("header-then-garbage", with_header)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("corrupt.db");
            std::fs::write(&path, &bytes).expect("write");
            let before = snapshot(dir.path());
            let err = Store::open(&path).expect_err("must refuse");
            assert!(
                matches!(err, Error::StoreUnreadable { .. }),
                "{name}: {err:?}"
            );
            assert!(err.to_string().contains("left untouched"), "{err}");
            assert_eq!(snapshot(dir.path()), before, "{name}");
            assert_eq!(std::fs::read(&path).expect("read"), bytes);
        }
    }

    fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&chrono::Utc)
    }

    /// A version 3 file as the released app left it: instants as RFC 3339 text, including
    /// the hostile ones a server could get in (a year past 9999, one past 2100).
    fn frozen_v3(path: &std::path::Path) {
        let mut conn = Connection::open(path).expect("open");
        configure(&conn).expect("configure");
        migrate_to(&mut conn, 3).expect("v3");
        conn.execute_batch(
            "INSERT INTO consignments (barcode, shipper_name, consignee_name, address_lines, town,
                postcode, country, lat, lon, weight_kg, service, delivery_date, stage, stage_at,
                cancelled_at, cancel_reason, upn_updated_at, imported_at) VALUES
             ('C1', 'S', 'R', '[]', 'T', 'P', 'GB', 51.5, -0.1, 10.0, 'ND', '2026-11-26',
              'OUT', '2026-11-26T08:00:00.001Z', '2026-11-26T11:00:00.500Z', 'moved',
              '2026-11-26T09:15:42.123Z', '2026-11-26T10:00:00.999Z'),
             ('C2', 'S', 'R', '[]', 'T', 'P', 'GB', 51.5, -0.1, 10.0, 'ND', '2026-11-26',
              NULL, NULL, '+10000-01-01T00:00:00.000Z', 'hostile',
              '2150-01-01T00:00:00.000Z', '2026-11-26T10:00:01.000Z');
             INSERT INTO pallets (barcode, consignment, position, size, weight_kg, stage, stage_at)
             VALUES ('P1', 'C1', 0, 'full', 5.0, 'OUT', '2026-11-26T08:00:00.001Z');
             INSERT INTO tracking_inbox (received_at, server_time, sha256, bytes, body, state,
                processed_at) VALUES
             ('2026-11-26T10:05:00.010Z', '2026-11-26T10:04:59.000Z', 'ab', 2, x'7b7d',
              'processed', '2026-11-26T10:05:00.020Z');
             INSERT INTO tracking_events (id, barcode, capture_type, stage, at, source, inbox_id)
             VALUES ('E1', 'C1', 'C', 'OUT', '2026-11-26T08:00:00.001Z', 'upn', 1),
                    ('E0', 'C1', 'C', 'IN', '2026-11-25T23:59:59.999Z', 'upn', 1),
                    ('E2', 'C1', 'C', 'LATE', '+10000-01-01T00:00:00.000Z', 'upn', 1);
             INSERT INTO captures (id, barcode, kind, seq, captured_at, lat, lon, accuracy_m,
                fix_at, original_file, original_sha256, original_bytes, state, next_attempt_at,
                sent_at) VALUES
             ('K1', 'C1', 'pod', 1, '2026-11-26T10:30:00.007Z', 51.5, -0.1, 8.0,
              '2026-11-26T10:29:58.500Z', 'K1.orig', 'ab', 2, 'queued',
              '2026-11-26T12:00:00.000Z', NULL),
             ('K2', 'C1', 'goods', 2, '2026-11-26T10:31:00.000Z', NULL, NULL, NULL, NULL,
              'K2.orig', 'ab', 2, 'queued', '+10000-01-01T00:00:00.000Z', NULL),
             ('K3', 'C2', 'pod', 3, '2026-11-26T10:32:00.000Z', NULL, NULL, NULL, NULL,
              'K3.orig', 'ab', 2, 'sent', NULL, '2026-11-26T10:33:00.250Z');
             INSERT INTO sync_state (key, value) VALUES
             ('import.cursor', 'cursor-7'), ('upn.clock_offset_ms', '-1500'),
             ('import.last_success', '2026-11-26T10:00:00.999Z'),
             ('tracking.last_success', '2026-11-26T10:05:00.020Z'),
             ('tracking.first_attempt', 'not a time');",
        )
        .expect("v3 rows");
    }

    #[test]
    fn a_v3_file_with_text_times_upgrades_to_epoch_ms_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v3.db");
        frozen_v3(&path);
        let store = Store::open(&path).expect("upgrade");

        let c1 = store.consignment("C1").expect("read").expect("C1");
        assert_eq!(c1.upn_updated_at, utc("2026-11-26T09:15:42.123Z"));
        let cancelled = c1.cancelled.expect("still cancelled");
        assert_eq!(cancelled.at, utc("2026-11-26T11:00:00.500Z"));
        // Unreadable UPN times fall back to the import time; the cancellation stays.
        let c2 = store.consignment("C2").expect("read").expect("C2");
        assert_eq!(c2.upn_updated_at, utc("2026-11-26T10:00:01.000Z"));
        assert_eq!(
            c2.cancelled.expect("still cancelled").at,
            utc("2026-11-26T10:00:01.000Z")
        );

        let k1 = store.capture("K1").expect("read").expect("K1");
        assert_eq!(k1.captured_at, utc("2026-11-26T10:30:00.007Z"));
        assert_eq!(
            k1.fix.expect("fix").fix.fix_at,
            utc("2026-11-26T10:29:58.500Z")
        );
        assert_eq!(k1.next_attempt_at, Some(utc("2026-11-26T12:00:00.000Z")));
        // A year past 9999 sorted as "due now" as text; now it is simply unknown.
        let k2 = store.capture("K2").expect("read").expect("K2");
        assert_eq!(k2.next_attempt_at, None);
        let k3 = store.capture("K3").expect("read").expect("K3");
        assert_eq!(k3.sent_at, Some(utc("2026-11-26T10:33:00.250Z")));
        // K2's unknown time makes it due at once; nothing waits on a year past 9999.
        let now = utc("2026-11-26T11:50:00.000Z");
        assert_eq!(store.next_due_at(now, false).expect("next due"), Some(now));

        let batch = store.tracking_batch(1).expect("read").expect("batch");
        assert_eq!(batch.received_at, utc("2026-11-26T10:05:00.010Z"));
        assert_eq!(batch.server_time, Some(utc("2026-11-26T10:04:59.000Z")));
        // Numeric order: the event before midnight first; the unreadable one is gone.
        let events = store.tracking_events_of("C1").expect("events");
        let times: Vec<_> = events.iter().map(|e| (e.id.as_str(), e.at)).collect();
        assert_eq!(
            times,
            [
                ("E0", utc("2026-11-25T23:59:59.999Z")),
                ("E1", utc("2026-11-26T08:00:00.001Z"))
            ]
        );

        use crate::store::keys;
        assert_eq!(
            store.sync_time(keys::IMPORT_LAST_SUCCESS).expect("sync"),
            Some(utc("2026-11-26T10:00:00.999Z"))
        );
        assert_eq!(
            store.sync_time(keys::TRACKING_LAST_SUCCESS).expect("sync"),
            Some(utc("2026-11-26T10:05:00.020Z"))
        );
        assert_eq!(
            store
                .sync_state(keys::TRACKING_FIRST_ATTEMPT)
                .expect("sync"),
            None
        );
        assert_eq!(
            store
                .sync_state(keys::IMPORT_CURSOR)
                .expect("sync")
                .as_deref(),
            Some("cursor-7")
        );
        assert_eq!(
            store
                .sync_state(keys::CLOCK_OFFSET_MS)
                .expect("sync")
                .as_deref(),
            Some("-1500")
        );

        // Every instant column now holds integers (or NULL), nothing else.
        for (table, column) in [
            ("consignments", "stage_at"),
            ("consignments", "cancelled_at"),
            ("consignments", "upn_updated_at"),
            ("consignments", "imported_at"),
            ("pallets", "stage_at"),
            ("tracking_inbox", "received_at"),
            ("tracking_inbox", "server_time"),
            ("tracking_inbox", "processed_at"),
            ("tracking_events", "at"),
            ("captures", "captured_at"),
            ("captures", "fix_at"),
            ("captures", "next_attempt_at"),
            ("captures", "sent_at"),
        ] {
            let kinds: Vec<String> = store
                .conn()
                .prepare(&format!(
                    "SELECT DISTINCT typeof({column}) FROM {table} WHERE {column} IS NOT NULL"
                ))
                .expect("prepare")
                .query_map([], |r| r.get(0))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            assert!(
                kinds.iter().all(|k| k == "integer"),
                "{table}.{column}: {kinds:?}"
            );
        }
        let pallet_at: i64 = store
            .conn()
            .query_row(
                "SELECT stage_at FROM pallets WHERE barcode = 'P1'",
                [],
                |r| r.get(0),
            )
            .expect("pallet");
        assert_eq!(
            pallet_at,
            utc("2026-11-26T08:00:00.001Z").timestamp_millis()
        );
    }

    #[test]
    fn reopening_is_a_no_op() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("again.db");
        let first = schema_of(Store::open(&path).expect("first").conn());
        let second = schema_of(Store::open(&path).expect("second").conn());
        assert_eq!(first, second);
    }
}
