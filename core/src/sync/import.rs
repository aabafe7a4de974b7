//! Consignment import: fetch the depot's feed since the last cursor, translate it into domain
//! values (the one place wire consignments become domain ones), apply it atomically.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::domain::{Address, Cancellation, Consignment, Pallet, Party, ServiceLevel, Window};
use crate::error::{Error, Result};
use crate::store::{keys, FeedChanges, ImportCounts, Store};
use crate::upn::wire::{self, ConsignmentFeed, RefusedRecord, WireConsignment};
use crate::upn::{UpnApi, UpnError};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportReport {
    pub counts: ImportCounts,
    /// Records of the feed that were refused one by one (unreadable, or a value out of range);
    /// everything else applied. UPN sends them again only if they change.
    pub refused: Vec<RefusedRecord>,
    pub server_time: DateTime<Utc>,
}

/// Runs one import. The store lock is never held across the network call.
pub async fn import_consignments(
    api: &impl UpnApi,
    store: &Mutex<Store>,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<ImportReport> {
    let cursor = lock(store)?.sync_state(keys::IMPORT_CURSOR)?;
    let mut feed = api.fetch_consignments(cursor.as_deref()).await?;
    check_feed(&feed)?;
    let refused = std::mem::take(&mut feed.refused);
    for r in &refused {
        tracing::warn!(kind = r.kind, index = r.index, barcode = ?r.barcode, reason = %r.reason,
            "UPN sent a record that was refused");
    }
    let changes = feed_changes(feed, now());
    let counts = super::blocking(|| lock(store)?.apply_feed(&changes))?;
    tracing::info!(?counts, refused = refused.len(), "consignments imported");
    Ok(ImportReport {
        counts,
        refused,
        server_time: changes.server_time,
    })
}

/// The feed's own fields, range-checked: a bad server time or cursor refuses the response
/// (nothing applies, the next import asks again), since every record depends on them.
fn check_feed(feed: &ConsignmentFeed) -> Result<()> {
    let bad = |reason: String| Error::Upn(UpnError::BadResponse { reason });
    wire::check_instant("the feed's server_time", feed.server_time).map_err(bad)?;
    if feed.cursor.is_empty()
        || feed.cursor.len() > wire::MAX_CURSOR_LEN
        || !feed.cursor.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad(format!(
            "the feed's cursor is not 1 to {} visible ASCII characters",
            wire::MAX_CURSOR_LEN
        )));
    }
    Ok(())
}

pub(crate) fn lock(store: &Mutex<Store>) -> Result<std::sync::MutexGuard<'_, Store>> {
    // A panic while holding the lock cannot leave SQLite half-written (transactions roll back
    // on drop), so a poisoned lock is safe to take over.
    Ok(store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()))
}

fn feed_changes(feed: ConsignmentFeed, received_at: DateTime<Utc>) -> FeedChanges {
    FeedChanges {
        consignments: feed.consignments.into_iter().map(consignment).collect(),
        cancellations: feed
            .cancellations
            .into_iter()
            .map(|c| {
                (
                    c.barcode,
                    Cancellation {
                        at: c.cancelled_at,
                        reason: c.reason,
                    },
                )
            })
            .collect(),
        cursor: feed.cursor,
        server_time: feed.server_time,
        received_at,
    }
}

fn consignment(w: WireConsignment) -> Consignment {
    Consignment {
        barcode: w.barcode,
        shipper: Party {
            name: w.shipper.name,
            phone: w.shipper.phone,
        },
        consignee: Party {
            name: w.consignee.name,
            phone: w.consignee.phone,
        },
        address: Address {
            lines: w.delivery_address.lines,
            town: w.delivery_address.town,
            postcode: w.delivery_address.postcode,
            country: w.delivery_address.country,
            lat: w.delivery_address.lat,
            lon: w.delivery_address.lon,
        },
        pallets: w
            .pallets
            .into_iter()
            .map(|p| Pallet {
                barcode: p.barcode,
                size: p.size,
                weight_kg: p.weight_kg,
                stage: None,
            })
            .collect(),
        weight_kg: w.weight_kg,
        service: ServiceLevel::from_code(&w.service),
        window: w.delivery_window.map(|w| Window {
            from: w.from,
            to: w.to,
        }),
        delivery_date: w.delivery_date,
        instructions: w.special_instructions.filter(|s| !s.trim().is_empty()),
        stage: None,
        cancelled: None,
        upn_updated_at: w.updated_at,
    }
}

/// Rejects a barcode that cannot be a UPN barcode before it reaches the store or the network.
pub fn validate_barcode(barcode: &str) -> Result<&str> {
    match wire::barcode_problem(barcode) {
        Some(problem) => Err(Error::invalid("barcode", problem)),
        None => Ok(barcode),
    }
}
