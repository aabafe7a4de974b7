//! Frozen databases, one per released schema version (`fixtures/v00N.sqlite`), each made by the
//! migrations of its day and holding what must survive every upgrade: unsent captures (waiting,
//! queued, needs attention), a pending tracking batch and a failed one, beside sent ones.
//!
//! The test upgrades a copy of each through `Store::open`, compares the result with
//! `fixtures/current_schema.sql` (the current schema written out by hand, not the migrations
//! concatenated: a migration that produces something else than intended fails here), and
//! checks that nothing unsent was lost or changed state.
//!
//! Freezing a fixture for a new version N (after adding migration N and updating
//! `current_schema.sql`): add N to [`RELEASED`], extend [`rows`] if the version adds a table or
//! changes how a value is stored, then run once
//! `cargo test -p upn-core --features failpoints store::fixtures::freeze -- --ignored`
//! and commit the new `fixtures/v00N.sqlite`. Never regenerate a released one: it stands for
//! files already on phones, so it must keep the bytes the old code wrote.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::schema::{migrate_to, schema_of};
use super::{configure, Store};

/// Every schema version that shipped.
const RELEASED: [u32; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/// Unsent captures every fixture from v3 on holds (id, state), and the sent one.
const UNSENT: [(&str, &str); 4] = [
    ("K1", "queued"),
    ("K2", "waiting"),
    ("K4", "needs_attention"),
    ("K5", "queued"),
];

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/store/fixtures")
        .join(format!("v{version:03}.sqlite"))
}

/// An instant as version `version` stored it: RFC 3339 text before v5, epoch ms from v5.
fn at(version: u32, text: &str) -> String {
    if version < 5 {
        format!("'{text}'")
    } else {
        let t = chrono::DateTime::parse_from_rfc3339(text).expect("instant");
        t.timestamp_millis().to_string()
    }
}

/// The rows a version-`version` file holds, written with that version's columns.
fn rows(version: u32) -> String {
    let t = |s: &str| at(version, s);
    let mut sql = format!(
        "INSERT INTO consignments (barcode, shipper_name, consignee_name, address_lines, town,
            postcode, country, lat, lon, weight_kg, service, delivery_date, upn_updated_at,
            imported_at) VALUES
         ('C1', 'S', 'R', '[\"1 High St\"]', 'Derby', 'DE1 1AA', 'GB', 52.9, -1.4, 10.0, 'AM',
          '2026-11-26', {u}, {i}),
         ('C2', 'S', 'R', '[]', 'Derby', 'DE1 1AB', 'GB', 52.9, -1.4, 5.0, 'ECONOMY',
          '2026-11-26', {u}, {i});
         INSERT INTO pallets (barcode, consignment, position, size, weight_kg)
         VALUES ('P1', 'C1', 0, 'FULL', 5.0);
         INSERT INTO sync_state (key, value) VALUES ('import.cursor', 'v7');",
        u = t("2026-11-26T09:15:42.123Z"),
        i = t("2026-11-26T10:00:00.999Z"),
    );
    if version >= 2 {
        let body = r#"{"server_time":"2026-11-26T10:04:59Z","batch_id":"B1","events":[{"id":"E1","barcode":"C1","capture_type":"C","stage":"OUT_FOR_DELIVERY","at":"2026-11-26T08:00:00Z"}],"remaining":0}"#;
        let sha = crate::digest::sha256_hex(body.as_bytes());
        // v6 records the parser version that failed a batch.
        let (failed_column, failed_version) = if version >= 6 {
            (", parser_version", ", 1")
        } else {
            ("", "")
        };
        // v9 keeps the bodies in their own table.
        let (body_column, good_body, bad_body) = if version >= 9 {
            ("", String::new(), String::new())
        } else {
            (
                ", body",
                format!(", CAST('{body}' AS BLOB)"),
                ", x'7b7b7b'".to_string(),
            )
        };
        sql += &format!(
            "INSERT INTO tracking_inbox (id, received_at, server_time, sha256, bytes{body_column},
                state)
             VALUES (1, {r}, {s}, '{sha}', {n}{good_body}, 'pending');
             INSERT INTO tracking_inbox (id, received_at, sha256, bytes{body_column}, state, error,
                processed_at{failed_column})
             VALUES (2, {r}, '{bad_sha}', 3{bad_body}, 'failed', 'not JSON', {r}{failed_version});",
            r = t("2026-11-26T10:05:00.010Z"),
            s = t("2026-11-26T10:04:59.000Z"),
            n = body.len(),
            bad_sha = crate::digest::sha256_hex(b"{{{"),
        );
        if version >= 9 {
            sql += &format!(
                "INSERT INTO tracking_bodies (inbox_id, body) VALUES
                 (1, CAST('{body}' AS BLOB)), (2, x'7b7b7b');"
            );
        }
    }
    if version >= 3 {
        let c = t("2026-11-26T10:30:00.007Z");
        let next = t("2026-11-26T12:00:00.000Z");
        let sent = t("2026-11-26T10:33:00.250Z");
        sql += &format!(
            "INSERT INTO captures (id, barcode, kind, seq, captured_at, signed_by, original_file,
                original_sha256, original_bytes, state, attempts, next_attempt_at, last_error,
                sent_at, upn_reference) VALUES
             ('K1', 'C1', 'pod', 1, {c}, 'J. Smith', 'K1.orig', 'ab', 2, 'queued', 1, {next},
              'UPN unavailable', NULL, NULL),
             ('K2', 'C1', 'goods', 2, {c}, NULL, 'K2.orig', 'ab', 2, 'waiting', 0, NULL, NULL,
              NULL, NULL),
             ('K3', 'C2', 'pod', 3, {c}, 'A. Jones', 'K3.orig', 'ab', 2, 'sent', 1, NULL, NULL,
              {sent}, 'POD-C2'),
             ('K4', 'C2', 'goods', 4, {c}, NULL, 'K4.orig', 'ab', 2, 'needs_attention', 3, NULL,
              'refused: payload too large', NULL, NULL),
             ('K5', 'C2', 'leave_safe', 5, {c}, NULL, 'K5.orig', 'ab', 2, 'queued', 0, NULL,
              NULL, NULL, NULL);"
        );
    }
    sql
}

/// Builds the version-`version` fixture at `path` with the migrations up to that version.
fn build(path: &Path, version: u32) {
    // Built beside its place and renamed when complete: a failed build leaves no fixture.
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut conn = Connection::open(&partial).expect("open");
    // Small pages: the fixtures are committed, and each table and index takes a page.
    conn.pragma_update(None, "page_size", 1024)
        .expect("page size");
    configure(&conn).expect("configure");
    migrate_to(&mut conn, version).expect("migrate");
    conn.execute_batch(&rows(version)).expect("rows");
    // One self-contained file: no -wal beside it.
    conn.pragma_update(None, "journal_mode", "DELETE")
        .expect("journal mode");
    conn.execute_batch("VACUUM").expect("vacuum");
    drop(conn);
    std::fs::rename(&partial, path).expect("rename");
}

#[test]
#[ignore = "writes the frozen fixtures; run once per new schema version (see the module docs)"]
fn freeze() {
    for version in RELEASED {
        let path = fixture(version);
        if !path.exists() {
            build(&path, version);
        }
    }
}

/// The current schema from `current_schema.sql`, as `schema_of` prints it.
fn hand_written_schema() -> Vec<String> {
    let conn = Connection::open_in_memory().expect("memory");
    conn.execute_batch(include_str!("fixtures/current_schema.sql"))
        .expect("current_schema.sql runs");
    schema_of(&conn)
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn().query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[test]
fn every_released_version_upgrades_to_the_written_schema_losing_nothing_unsent() {
    let expected = hand_written_schema();
    let fresh_dir = tempfile::tempdir().expect("tempdir");
    let fresh = Store::open(&fresh_dir.path().join("fresh.db")).expect("fresh");
    assert_eq!(
        schema_of(fresh.conn()),
        expected,
        "fresh schema vs current_schema.sql"
    );

    for version in RELEASED {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("upn-driver.db");
        std::fs::copy(fixture(version), &path).expect("the fixture is committed");
        let found: u32 = Connection::open(&path)
            .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .expect("version");
        assert_eq!(found, version, "fixture v{version:03} holds its version");

        let store = Store::open(&path).expect("upgrade");
        assert_eq!(
            schema_of(store.conn()),
            expected,
            "upgraded from v{version}"
        );
        assert_eq!(count(&store, "SELECT count(*) FROM consignments"), 2);
        if version >= 2 {
            assert_eq!(store.pending_tracking_batches().expect("pending"), vec![1]);
            let batch = store.tracking_batch(1).expect("read").expect("batch 1");
            assert_eq!(batch.sha256, crate::digest::sha256_hex(&batch.body));
            let failed = store.failed_tracking_batches().expect("failed");
            assert_eq!(failed.len(), 1, "v{version}: the failed batch is kept");
        }
        if version >= 3 {
            let mut pending: Vec<(String, String)> = store
                .pending_captures()
                .expect("pending captures")
                .into_iter()
                .map(|c| (c.id.clone(), c.state.code().to_string()))
                .collect();
            pending.sort();
            let expected: Vec<(String, String)> = UNSENT
                .iter()
                .map(|(id, state)| (id.to_string(), state.to_string()))
                .collect();
            assert_eq!(
                pending, expected,
                "v{version}: every unsent capture, same state"
            );
            let k1 = store.capture("K1").expect("read").expect("K1");
            assert_eq!(
                k1.captured_at.timestamp_millis(),
                1_795_689_000_007,
                "v{version}: capture time kept to the millisecond"
            );
            let sent = store.capture("K3").expect("read").expect("K3");
            assert_eq!(sent.state.code(), "sent");
        }
    }
}
