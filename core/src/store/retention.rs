//! Retention queries: what leaves the device once UPN has it and it is old enough. Every
//! deletion is decided on the row, inside the write (`… WHERE id = ? AND state = 'sent' AND
//! sent_at < ?`), and its row count is checked; files are removed only after that commit, by
//! the caller. A crash between the two leaves files no row references, which the next open's
//! sweep moves to `quarantine/`.

use chrono::{DateTime, Utc};
use rusqlite::{params, TransactionBehavior};

use super::{format_time, Store};
use crate::error::Result;

/// A sent capture whose files may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purgeable {
    pub id: String,
    /// The original and, when made, the upload rendition.
    pub files: Vec<String>,
}

/// The condition under which a consignment may leave the device (`?1` the cutoff instant in
/// epoch ms, `?2` the cutoff date `YYYY-MM-DD`): delivered before the cutoff date, nothing
/// imported, captured, sent or tracked for it since the cutoff, and nothing of its unsent.
const EXPIRED: &str = "delivery_date < ?2 AND imported_at < ?1 AND upn_updated_at < ?1
    AND NOT EXISTS (SELECT 1 FROM captures c WHERE c.barcode = consignments.barcode
        AND (c.state IN ('waiting', 'queued', 'sending', 'needs_attention')
             OR c.captured_at >= ?1 OR COALESCE(c.sent_at, 0) >= ?1))
    AND NOT EXISTS (SELECT 1 FROM tracking_events e WHERE e.barcode = consignments.barcode
        AND e.at >= ?1)";

fn cutoff_date(cutoff: DateTime<Utc>) -> String {
    cutoff.format("%Y-%m-%d").to_string()
}

impl Store {
    /// Sent captures acknowledged before `cutoff` whose files are still on the device.
    pub fn purgeable_originals(&self, cutoff: DateTime<Utc>) -> Result<Vec<Purgeable>> {
        let mut stmt = self.conn().prepare(
            "SELECT id, original_file, upload_file FROM captures
             WHERE state = 'sent' AND sent_at < ?1 AND purged_at IS NULL ORDER BY seq",
        )?;
        let rows = stmt.query_map([format_time(cutoff)], |r| {
            let id: String = r.get(0)?;
            let mut files = vec![r.get::<_, String>(1)?];
            files.extend(r.get::<_, Option<String>>(2)?);
            Ok(Purgeable { id, files })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records that capture `id`'s files are removed, if it is still sent, acknowledged before
    /// `cutoff` and not purged. True when it applied: only then may its files go.
    pub fn mark_purged(&self, id: &str, cutoff: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE captures SET purged_at = ?3
             WHERE id = ?1 AND state = 'sent' AND sent_at < ?2 AND purged_at IS NULL",
            params![id, format_time(cutoff), format_time(now)],
        )?;
        Ok(n == 1)
    }

    /// Consignments that may leave the device (see [`EXPIRED`]).
    pub fn expired_consignments(&self, cutoff: DateTime<Utc>) -> Result<Vec<String>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT barcode FROM consignments WHERE {EXPIRED} ORDER BY barcode"
        ))?;
        let rows = stmt.query_map(params![format_time(cutoff), cutoff_date(cutoff)], |r| {
            r.get(0)
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes consignment `barcode` with its pallets, captures and tracking events in one
    /// transaction, if it still may go. Returns the files its captures referenced (to remove
    /// after this commit), or `None` when it may no longer go (nothing changed).
    pub fn remove_consignment(
        &mut self,
        barcode: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<Option<Vec<String>>> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let still: bool = tx.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM consignments WHERE barcode = ?3 AND {EXPIRED})"),
            params![format_time(cutoff), cutoff_date(cutoff), barcode],
            |r| r.get(0),
        )?;
        if !still {
            return Ok(None);
        }
        let files = {
            let mut stmt = tx.prepare(
                "SELECT original_file, upload_file FROM captures
                 WHERE barcode = ?1 AND purged_at IS NULL",
            )?;
            let rows = stmt.query_map([barcode], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            let mut files = Vec::new();
            for row in rows {
                let (original, upload) = row?;
                files.push(original);
                files.extend(upload);
            }
            files
        };
        // No unsent capture is among these: the condition above was read in this transaction.
        tx.execute("DELETE FROM captures WHERE barcode = ?1", [barcode])?;
        tx.execute("DELETE FROM tracking_events WHERE barcode = ?1", [barcode])?;
        let n = tx.execute("DELETE FROM consignments WHERE barcode = ?1", [barcode])?;
        if n != 1 {
            return Ok(None);
        }
        tx.commit()?;
        Ok(Some(files))
    }

    /// Empties the bodies of tracking responses processed before `cutoff` (their events are
    /// applied and kept); the row, its sha256 and size stay. Bodies with events kept aside as
    /// malformed stay too: a newer parser re-reads them. Returns how many were emptied.
    pub fn purge_tracking_bodies(&self, cutoff: DateTime<Utc>) -> Result<u32> {
        let n = self.conn().execute(
            "UPDATE tracking_bodies SET body = x''
             WHERE length(body) > 0 AND inbox_id IN (
                SELECT id FROM tracking_inbox
                WHERE state = 'processed' AND processed_at < ?1
                  AND id NOT IN (SELECT inbox_id FROM tracking_malformed))",
            [format_time(cutoff)],
        )?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
