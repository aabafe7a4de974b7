//! Schema migrations. `PRAGMA user_version` holds the version; every upgrade of one open runs in
//! a single IMMEDIATE transaction, and a file newer than this code is refused, never touched.
//!
//! Rules for whoever adds a migration: append to [`MIGRATIONS`], never edit a released one, and
//! never delete rows that still wait to be sent (unsent captures survive every upgrade).

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// Migration `i` upgrades a file from version `i` to `i + 1`. Each is one SQL file in
/// `migrations/`, named after the version it produces.
pub const MIGRATIONS: &[&str] = &[
    // 1: consignments and pallets from the import, and small key/value sync state.
    include_str!("migrations/v001_consignments.sql"),
    // 2: the tracking inbox (raw responses, stored before processing) and applied events.
    include_str!("migrations/v002_tracking.sql"),
    // 3: captured PODs and photos, and their outbox state.
    include_str!("migrations/v003_outbox.sql"),
    // 4: the guarded outbox: recorded wait lengths, frozen POD image counts, GPS fix skew.
    include_str!("migrations/v004_outbox_guard.sql"),
];

/// The version this code writes.
pub fn latest_version() -> u32 {
    MIGRATIONS.len() as u32
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
    for (from, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(found as usize)
        .take((target - found) as usize)
    {
        tracing::info!(from, to = from + 1, "migrating the store");
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{configure, Store};

    /// Every table, index and column, normalised, so two files can be compared.
    fn schema_of(conn: &Connection) -> Vec<String> {
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
            } else if let Some(sql) = sql {
                out.push(format!(
                    "  {}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
            }
        }
        out
    }

    #[test]
    fn every_older_version_upgrades_to_the_fresh_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = Store::open(&dir.path().join("fresh.db")).expect("fresh");
        let expected = schema_of(fresh.conn());
        for version in 0..latest_version() {
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

    #[test]
    fn a_newer_file_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("newer.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch("CREATE TABLE future (x INTEGER); PRAGMA user_version = 999;")
                .expect("future");
        }
        let err = Store::open(&path).expect_err("must refuse");
        assert!(
            matches!(err, Error::StoreTooNew { found: 999, .. }),
            "{err}"
        );
        let conn = Connection::open(&path).expect("reopen");
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, 999);
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
