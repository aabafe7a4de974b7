//! Consignments and pallets: applying an import, and reading them back as domain values.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{format_time, keys, parse_time, set_sync_state, set_sync_time, Store};
use crate::domain::{
    Address, Cancellation, Consignment, Pallet, Party, ServiceLevel, Stage, Window,
};
use crate::error::{Error, Result};

/// One consignments-feed response, already translated into domain values.
#[derive(Debug, Clone)]
pub struct FeedChanges {
    pub consignments: Vec<Consignment>,
    pub cancellations: Vec<(String, Cancellation)>,
    /// Where the next import continues.
    pub cursor: String,
    pub server_time: DateTime<Utc>,
    /// Device clock when the response arrived.
    pub received_at: DateTime<Utc>,
}

/// What one import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    pub added: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub cancelled: u32,
    /// Cancellations for consignments this device never imported (nothing to do).
    pub cancellations_ignored: u32,
}

const CONSIGNMENT_COLUMNS: &str =
    "barcode, shipper_name, shipper_phone, consignee_name, consignee_phone, \
     address_lines, town, postcode, country, lat, lon, weight_kg, service, window_from, window_to, \
     delivery_date, instructions, stage, cancelled_at, cancel_reason, upn_updated_at";

impl Store {
    /// Applies a feed response in one transaction, cursor included: after a crash either all of
    /// it is in or none of it is, and the next import asks for the same changes again.
    pub fn apply_feed(&mut self, changes: &FeedChanges) -> Result<ImportCounts> {
        let received_at = format_time(changes.received_at);
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut counts = ImportCounts::default();
        for c in &changes.consignments {
            let previous: Option<i64> = tx
                .query_row(
                    "SELECT upn_updated_at FROM consignments WHERE barcode = ?1",
                    [&c.barcode],
                    |r| r.get(0),
                )
                .optional()?;
            match previous {
                None => counts.added += 1,
                Some(p) if p == format_time(c.upn_updated_at) => counts.unchanged += 1,
                Some(_) => counts.updated += 1,
            }
            upsert_consignment(&tx, c, received_at)?;
            super::tracking::recompute_stages(&tx, &c.barcode)?;
            Store::in_tx();
        }
        for (barcode, cancellation) in &changes.cancellations {
            let n = tx.execute(
                "UPDATE consignments SET cancelled_at = ?2, cancel_reason = ?3 WHERE barcode = ?1",
                params![barcode, format_time(cancellation.at), cancellation.reason],
            )?;
            if n == 0 {
                counts.cancellations_ignored += 1;
            } else {
                counts.cancelled += 1;
            }
        }
        set_sync_state(&tx, keys::IMPORT_CURSOR, &changes.cursor)?;
        Store::in_tx();
        set_sync_time(&tx, keys::IMPORT_LAST_SUCCESS, changes.received_at)?;
        let offset_ms = (changes.received_at - changes.server_time).num_milliseconds();
        set_sync_state(&tx, keys::CLOCK_OFFSET_MS, &offset_ms.to_string())?;
        tx.commit()?;
        Ok(counts)
    }

    /// Every consignment on the device, pallets included, in no particular order.
    pub fn consignments(&self) -> Result<Vec<Consignment>> {
        let mut pallets = load_pallets(self.conn(), None)?;
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {CONSIGNMENT_COLUMNS} FROM consignments"))?;
        let rows = stmt.query_map([], consignment_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            let mut c = row??;
            c.pallets = pallets.remove(&c.barcode).unwrap_or_default();
            out.push(c);
        }
        Ok(out)
    }

    /// One consignment by its exact barcode.
    pub fn consignment(&self, barcode: &str) -> Result<Option<Consignment>> {
        let found = self
            .conn()
            .prepare_cached(&format!(
                "SELECT {CONSIGNMENT_COLUMNS} FROM consignments WHERE barcode = ?1"
            ))?
            .query_row([barcode], consignment_from_row)
            .optional()?;
        match found {
            None => Ok(None),
            Some(c) => {
                let mut c = c?;
                c.pallets = load_pallets(self.conn(), Some(barcode))?
                    .remove(barcode)
                    .unwrap_or_default();
                Ok(Some(c))
            }
        }
    }
}

fn upsert_consignment(tx: &Connection, c: &Consignment, imported_at: i64) -> Result<()> {
    let lines = serde_json::to_string(&c.address.lines)
        .map_err(|e| Error::invalid("address lines", e.to_string()))?;
    // Tracking stages are the device's own knowledge: an import never overwrites them.
    // A consignment that reappears in the feed is open again, so a cancellation is lifted.
    tx.execute(
        "INSERT INTO consignments (barcode, shipper_name, shipper_phone, consignee_name, consignee_phone,
            address_lines, town, postcode, country, lat, lon, weight_kg, service, window_from, window_to,
            delivery_date, instructions, upn_updated_at, imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT(barcode) DO UPDATE SET
            shipper_name = excluded.shipper_name, shipper_phone = excluded.shipper_phone,
            consignee_name = excluded.consignee_name, consignee_phone = excluded.consignee_phone,
            address_lines = excluded.address_lines, town = excluded.town, postcode = excluded.postcode,
            country = excluded.country, lat = excluded.lat, lon = excluded.lon,
            weight_kg = excluded.weight_kg, service = excluded.service,
            window_from = excluded.window_from, window_to = excluded.window_to,
            delivery_date = excluded.delivery_date, instructions = excluded.instructions,
            upn_updated_at = excluded.upn_updated_at, imported_at = excluded.imported_at,
            cancelled_at = NULL, cancel_reason = NULL",
        params![
            c.barcode,
            c.shipper.name,
            c.shipper.phone,
            c.consignee.name,
            c.consignee.phone,
            lines,
            c.address.town,
            c.address.postcode,
            c.address.country,
            c.address.lat,
            c.address.lon,
            c.weight_kg,
            c.service.code(),
            c.window.map(|w| w.from.to_string()),
            c.window.map(|w| w.to.to_string()),
            c.delivery_date.to_string(),
            c.instructions,
            format_time(c.upn_updated_at),
            imported_at,
        ],
    )?;
    // Pallets UPN no longer lists under this consignment go; the rest keep their stages.
    let keep: Vec<&str> = c.pallets.iter().map(|p| p.barcode.as_str()).collect();
    let keep_json = serde_json::to_string(&keep).unwrap_or_else(|_| "[]".into());
    tx.execute(
        "DELETE FROM pallets WHERE consignment = ?1
           AND barcode NOT IN (SELECT value FROM json_each(?2))",
        params![c.barcode, keep_json],
    )?;
    for (position, p) in c.pallets.iter().enumerate() {
        tx.execute(
            "INSERT INTO pallets (barcode, consignment, position, size, weight_kg)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(barcode) DO UPDATE SET consignment = excluded.consignment,
                position = excluded.position, size = excluded.size, weight_kg = excluded.weight_kg",
            params![p.barcode, c.barcode, position as i64, p.size, p.weight_kg],
        )?;
    }
    Ok(())
}

/// A row that SQLite returned but that does not make a valid consignment (a damaged file).
fn corrupt(column: &str, barcode: &str) -> Error {
    Error::Storage {
        reason: format!("stored consignment {barcode} has an unreadable {column}"),
        disk_full: false,
    }
}

fn consignment_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Consignment>> {
    let barcode: String = r.get(0)?;
    let lines: String = r.get(5)?;
    let window_from: Option<String> = r.get(13)?;
    let window_to: Option<String> = r.get(14)?;
    let delivery_date: String = r.get(15)?;
    let stage: Option<String> = r.get(17)?;
    let cancelled_at: Option<i64> = r.get(18)?;
    let upn_updated_at: i64 = r.get(20)?;

    let build = || -> Result<Consignment> {
        let lines: Vec<String> =
            serde_json::from_str(&lines).map_err(|_| corrupt("address", &barcode))?;
        let window = match (window_from, window_to) {
            (Some(from), Some(to)) => Some(Window {
                from: NaiveTime::parse_from_str(&from, "%H:%M:%S")
                    .map_err(|_| corrupt("window", &barcode))?,
                to: NaiveTime::parse_from_str(&to, "%H:%M:%S")
                    .map_err(|_| corrupt("window", &barcode))?,
            }),
            _ => None,
        };
        let cancelled = match cancelled_at {
            Some(at) => Some(Cancellation {
                at: parse_time(at).ok_or_else(|| corrupt("cancellation time", &barcode))?,
                reason: r.get(19)?,
            }),
            None => None,
        };
        Ok(Consignment {
            shipper: Party {
                name: r.get(1)?,
                phone: r.get(2)?,
            },
            consignee: Party {
                name: r.get(3)?,
                phone: r.get(4)?,
            },
            address: Address {
                lines,
                town: r.get(6)?,
                postcode: r.get(7)?,
                country: r.get(8)?,
                lat: r.get(9)?,
                lon: r.get(10)?,
            },
            pallets: Vec::new(),
            weight_kg: r.get(11)?,
            service: ServiceLevel::from_code(&r.get::<_, String>(12)?),
            window,
            delivery_date: NaiveDate::parse_from_str(&delivery_date, "%Y-%m-%d")
                .map_err(|_| corrupt("delivery date", &barcode))?,
            instructions: r.get(16)?,
            stage: stage.as_deref().map(Stage::from_code),
            cancelled,
            upn_updated_at: parse_time(upn_updated_at)
                .ok_or_else(|| corrupt("update time", &barcode))?,
            barcode: barcode.clone(),
        })
    };
    Ok(build())
}

fn load_pallets(conn: &Connection, only: Option<&str>) -> Result<HashMap<String, Vec<Pallet>>> {
    // Two statements, not `?1 IS NULL OR consignment = ?1`: with that one the planner walks the
    // whole index for a single consignment (every capture reads one).
    let mut stmt = match only {
        Some(_) => conn.prepare_cached(
            "SELECT consignment, barcode, size, weight_kg, stage FROM pallets
             WHERE consignment = ?1 ORDER BY position",
        )?,
        None => conn.prepare_cached(
            "SELECT consignment, barcode, size, weight_kg, stage FROM pallets
             ORDER BY consignment, position",
        )?,
    };
    let rows = stmt.query_map(rusqlite::params_from_iter(only), |r| {
        Ok((
            r.get::<_, String>(0)?,
            Pallet {
                barcode: r.get(1)?,
                size: r.get(2)?,
                weight_kg: r.get(3)?,
                stage: r
                    .get::<_, Option<String>>(4)?
                    .as_deref()
                    .map(Stage::from_code),
            },
        ))
    })?;
    let mut out: HashMap<String, Vec<Pallet>> = HashMap::new();
    for row in rows {
        let (consignment, pallet) = row?;
        out.entry(consignment).or_default().push(pallet);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, 0, 0).unwrap()
    }

    fn sample(barcode: &str, pallets: &[&str]) -> Consignment {
        Consignment {
            barcode: barcode.into(),
            shipper: Party {
                name: "Shipper".into(),
                phone: None,
            },
            consignee: Party {
                name: "Hartley Joinery".into(),
                phone: Some("01203 555 0101".into()),
            },
            address: Address {
                lines: vec!["4 Mill Lane".into()],
                town: "Coventry".into(),
                postcode: "CV1 2GT".into(),
                country: "GB".into(),
                lat: 52.41,
                lon: -1.51,
            },
            pallets: pallets
                .iter()
                .map(|b| Pallet {
                    barcode: (*b).into(),
                    size: "FULL".into(),
                    weight_kg: 400.0,
                    stage: None,
                })
                .collect(),
            weight_kg: 400.0 * pallets.len() as f64,
            service: ServiceLevel::Timed,
            window: Some(Window {
                from: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
                to: NaiveTime::from_hms_opt(11, 0, 0).unwrap(),
            }),
            delivery_date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            instructions: Some("Tail-lift required".into()),
            stage: None,
            cancelled: None,
            upn_updated_at: at(5),
        }
    }

    fn feed(
        consignments: Vec<Consignment>,
        cancellations: Vec<(String, Cancellation)>,
    ) -> FeedChanges {
        FeedChanges {
            consignments,
            cancellations,
            cursor: "v1".into(),
            server_time: at(6),
            received_at: at(6),
        }
    }

    #[test]
    fn import_round_trips_and_counts_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let a = sample("UPN0420000001", &["UPN042000000101", "UPN042000000102"]);
        let counts = store.apply_feed(&feed(vec![a.clone()], vec![])).unwrap();
        assert_eq!(counts.added, 1);
        assert_eq!(store.consignment(&a.barcode).unwrap(), Some(a.clone()));

        // Same record again: unchanged. A changed record with one pallet fewer: updated.
        let counts = store.apply_feed(&feed(vec![a.clone()], vec![])).unwrap();
        assert_eq!(counts.unchanged, 1);
        let mut b = sample("UPN0420000001", &["UPN042000000101"]);
        b.upn_updated_at = at(7);
        b.instructions = None;
        let counts = store.apply_feed(&feed(vec![b.clone()], vec![])).unwrap();
        assert_eq!(counts.updated, 1);
        assert_eq!(store.consignment(&a.barcode).unwrap(), Some(b));
        assert_eq!(
            store.sync_state(keys::IMPORT_CURSOR).unwrap().as_deref(),
            Some("v1")
        );
    }

    #[test]
    fn cancellations_apply_to_known_consignments_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let a = sample("UPN0420000001", &["UPN042000000101"]);
        store.apply_feed(&feed(vec![a.clone()], vec![])).unwrap();
        let cancel = Cancellation {
            at: at(8),
            reason: Some("Customer closed".into()),
        };
        let counts = store
            .apply_feed(&feed(
                vec![],
                vec![
                    (a.barcode.clone(), cancel.clone()),
                    ("UPN0429999999".into(), cancel.clone()),
                ],
            ))
            .unwrap();
        assert_eq!((counts.cancelled, counts.cancellations_ignored), (1, 1));
        let stored = store.consignment(&a.barcode).unwrap().unwrap();
        assert_eq!(stored.cancelled, Some(cancel));
        assert_eq!(store.consignments().unwrap().len(), 1);
    }
}
