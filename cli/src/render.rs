//! How the CLI shows things: JSON shapes for scripts and plain-text tables for people.

use std::fmt::Write;

use serde::Serialize;
use upn_core::domain::outbox::OutboxItem;
use upn_core::domain::{Stop, Window};
use upn_core::{Capture, OutboxStats};
use upn_core::{ConsignmentDetail, Timeline, TimelineEntry};

fn window_text(w: &Option<Window>) -> Option<String> {
    w.as_ref().map(Window::label)
}

/// One stop as `stops --json` prints it.
#[derive(Debug, Serialize)]
pub struct StopJson {
    pub position: u32,
    pub barcode: String,
    pub consignee: String,
    pub address: String,
    pub postcode: String,
    pub lat: f64,
    pub lon: f64,
    /// Number of pallets.
    pub pallet_count: usize,
    pub weight_kg: f64,
    pub service: String,
    pub window: Option<String>,
    pub instructions: Option<String>,
    pub status: String,
    pub sync: &'static str,
    /// `open`, `done_on_device`, `done` or `cancelled`: the list's section (as the FFI's `phase`).
    pub phase: &'static str,
}

impl From<&Stop> for StopJson {
    fn from(s: &Stop) -> Self {
        let c = &s.consignment;
        Self {
            position: s.position,
            barcode: c.barcode.clone(),
            consignee: c.consignee.name.clone(),
            address: c.address.one_line(),
            postcode: c.address.postcode.clone(),
            lat: c.address.lat,
            lon: c.address.lon,
            pallet_count: c.pallets.len(),
            weight_kg: c.weight_kg,
            service: c.service.code().to_string(),
            window: window_text(&c.window),
            instructions: c.instructions.clone(),
            status: s.status.code(),
            sync: s.sync.code(),
            phase: s.phase.code(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PalletJson {
    pub barcode: String,
    pub size: String,
    pub weight_kg: f64,
    pub status: String,
}

/// One consignment as `show --json` prints it.
#[derive(Debug, Serialize)]
pub struct DetailJson {
    pub barcode: String,
    pub status: String,
    pub sync: &'static str,
    pub shipper: String,
    pub consignee: String,
    pub consignee_phone: Option<String>,
    pub address: String,
    pub postcode: String,
    pub lat: f64,
    pub lon: f64,
    pub weight_kg: f64,
    pub service: String,
    pub window: Option<String>,
    pub delivery_date: String,
    pub instructions: Option<String>,
    pub cancelled_at_ms: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub pallets: Vec<PalletJson>,
    /// Tracking timeline of the consignment: every event (its own and its pallets'), in time
    /// order. Filled by [`DetailJson::with_timeline`].
    pub timeline: Vec<TimelineEntryJson>,
    /// The captured POD; null until signed.
    pub pod: Option<CaptureJson>,
    pub photos: Vec<CaptureJson>,
}

/// A POD or photo as `show --json` prints it: what was captured, and what UPN acknowledged.
#[derive(Debug, Serialize)]
pub struct CaptureJson {
    pub id: String,
    pub kind: &'static str,
    pub state: &'static str,
    pub captured_at_ms: i64,
    pub clock_offset_ms: Option<i64>,
    pub signed_by: Option<String>,
    pub gps: Option<GpsJson>,
    pub gps_stale: bool,
    pub sha256: String,
    pub original_bytes: u64,
    pub upload_bytes: Option<u64>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The stable code of `last_error` (`domain::reason::OutboxReason::code`).
    pub reason: Option<&'static str>,
    pub sent_at_ms: Option<i64>,
    pub upn_reference: Option<String>,
    pub replaces: Option<String>,
    /// When retention removed its image from the device (after UPN acknowledged it).
    pub purged_at_ms: Option<i64>,
}

/// A GPS fix, as the FFI's `GpsFixRecord`.
#[derive(Debug, Serialize)]
pub struct GpsJson {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
    pub fix_at_ms: i64,
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

impl From<&Capture> for CaptureJson {
    fn from(c: &Capture) -> Self {
        Self {
            id: c.id.clone(),
            kind: c.kind.code(),
            state: c.state.code(),
            captured_at_ms: ms(c.captured_at),
            clock_offset_ms: c.clock_offset_ms,
            signed_by: c.signed_by.clone(),
            gps: c.fix.map(|f| GpsJson {
                lat: f.fix.lat(),
                lon: f.fix.lon(),
                accuracy_m: f.fix.accuracy_m,
                fix_at_ms: ms(f.fix.fix_at),
            }),
            gps_stale: c.fix.is_some_and(|f| f.stale),
            sha256: c.original.sha256.clone(),
            original_bytes: c.original.bytes,
            upload_bytes: c.upload.as_ref().map(|u| u.bytes),
            attempts: c.attempts,
            last_error: c.last_error.clone(),
            reason: c.reason.map(|r| r.code()),
            sent_at_ms: c.sent_at.map(ms),
            upn_reference: c.upn_reference.clone(),
            replaces: c.replaces.clone(),
            purged_at_ms: c.purged_at.map(ms),
        }
    }
}

/// One outbox item as `outbox --json` prints it.
#[derive(Debug, Serialize)]
pub struct OutboxJson {
    pub id: String,
    pub barcode: String,
    /// `pod`, `goods`, `location` or `leave_safe`.
    pub kind: &'static str,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt_at_ms: Option<i64>,
    pub last_error: Option<String>,
    /// The stable code of `last_error` (`domain::reason::OutboxReason::code`).
    pub reason: Option<&'static str>,
    pub captured_at_ms: i64,
    pub bytes: u64,
    pub sent_at_ms: Option<i64>,
    pub upn_reference: Option<String>,
}

impl From<&OutboxItem> for OutboxJson {
    fn from(i: &OutboxItem) -> Self {
        Self {
            id: i.id.clone(),
            barcode: i.barcode.clone(),
            kind: i.kind.code(),
            state: i.state.code(),
            attempts: i.attempts,
            next_attempt_at_ms: i.next_attempt_at.map(ms),
            last_error: i.last_error.clone(),
            reason: i.reason.map(|r| r.code()),
            captured_at_ms: ms(i.captured_at),
            bytes: i.bytes,
            sent_at_ms: i.sent_at.map(ms),
            upn_reference: i.upn_reference.clone(),
        }
    }
}

/// The data saver for people: the policy, today's metered photo bytes, what it holds.
pub fn data_saver_line(s: &upn_core::driver::DataSaverStatus) -> String {
    use upn_core::domain::data_saver::DataSaver;
    let policy = match s.policy {
        DataSaver::Off => "off (photos go on any network)".to_string(),
        DataSaver::PhotosOnUnmetered => "wifi-only (photos only on an unmetered network)".into(),
        DataSaver::MeteredPhotoBudget { bytes_per_day } => format!(
            "budget {bytes_per_day} bytes a day of photos on metered networks ({} used today, UTC)",
            s.metered_photo_bytes_today
        ),
    };
    format!(
        "data saver: {policy} · {} photo(s) held · signatures always go",
        s.held
    )
}

/// The outbox for people: one line per item, then the totals.
pub fn outbox_table(items: &[OutboxItem], stats: &OutboxStats) -> String {
    let mut out = String::new();
    if items.is_empty() {
        out.push_str("The outbox is empty: everything captured has reached UPN.\n");
    } else {
        let _ = writeln!(
            out,
            "{:<32} {:<14} {:<6} {:<10} {:<16} {:>8} {:>4}  NEXT / LAST ERROR",
            "ID", "BARCODE", "KIND", "PHOTO", "STATE", "BYTES", "TRY"
        );
        for i in items {
            let next = match (&i.last_error, i.next_attempt_at) {
                _ if i.reason.is_some_and(|r| r.is_data_saver()) => {
                    format!(
                        "held by the data saver ({})",
                        i.reason.map_or("", |r| r.code())
                    )
                }
                (Some(e), Some(at)) => format!("{} ({e})", at.format("%H:%M:%S")),
                (Some(e), None) => e.clone(),
                (None, Some(at)) => at.format("%H:%M:%S").to_string(),
                (None, None) => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<32} {:<14} {:<6} {:<10} {:<16} {:>8} {:>4}  {}",
                i.id,
                i.barcode,
                i.kind.outbox_kind(),
                if i.kind.is_photo() {
                    i.kind.code()
                } else {
                    "-"
                },
                i.state.code(),
                i.bytes,
                i.attempts,
                next
            );
        }
    }
    let _ = writeln!(
        out,
        "waiting {} · queued {} · sending {} · needs attention {} · sent {} · {} bytes pending{}",
        stats.waiting,
        stats.queued,
        stats.sending,
        stats.needs_attention,
        stats.sent,
        stats.bytes_pending,
        stats
            .last_success_at
            .map(|t| format!(" · last sent {}", t.format("%H:%M:%S")))
            .unwrap_or_default()
    );
    for (what, pause) in [
        ("the outbox", &stats.pauses.outbox),
        ("photos", &stats.pauses.images),
    ] {
        if let Some(p) = pause {
            let _ = writeln!(
                out,
                "PAUSED: {what} since {}: {} (resumes by itself once UPN accepts again; `retry --all` tries now)",
                p.since.format("%H:%M:%S"),
                p.message
            );
        }
    }
    out
}

impl From<&ConsignmentDetail> for DetailJson {
    fn from(d: &ConsignmentDetail) -> Self {
        let c = &d.consignment;
        Self {
            barcode: c.barcode.clone(),
            status: d.status.code(),
            sync: d.sync.code(),
            shipper: c.shipper.name.clone(),
            consignee: c.consignee.name.clone(),
            consignee_phone: c.consignee.phone.clone(),
            address: c.address.one_line(),
            postcode: c.address.postcode.clone(),
            lat: c.address.lat,
            lon: c.address.lon,
            weight_kg: c.weight_kg,
            service: c.service.code().to_string(),
            window: window_text(&c.window),
            delivery_date: c.delivery_date.to_string(),
            instructions: c.instructions.clone(),
            cancelled_at_ms: c.cancelled.as_ref().map(|x| ms(x.at)),
            cancellation_reason: c.cancelled.as_ref().and_then(|x| x.reason.clone()),
            pallets: d
                .pallets
                .iter()
                .map(|(p, status)| PalletJson {
                    barcode: p.barcode.clone(),
                    size: p.size.clone(),
                    weight_kg: p.weight_kg,
                    status: status.code(),
                })
                .collect(),
            timeline: Vec::new(),
            pod: d.pod.as_ref().map(CaptureJson::from),
            photos: d.photos.iter().map(CaptureJson::from).collect(),
        }
    }
}

/// One tracking event as `show --json` prints it.
#[derive(Debug, Serialize)]
pub struct TimelineEntryJson {
    pub at_ms: i64,
    /// The stage code exactly as UPN sent it (unknown codes verbatim).
    pub stage: String,
    /// How people read the stage ("Out for delivery"; unknown codes verbatim).
    pub stage_label: String,
    /// `C` (consignment and all its pallets) or `P` (one pallet); others verbatim.
    pub capture_type: String,
    pub pallet: Option<String>,
    pub location: Option<LocationJson>,
    /// `upn` or `device`.
    pub source: &'static str,
    /// Recorded by this device (its own POD), not reported by UPN.
    pub from_device: bool,
    pub id: String,
}

#[derive(Debug, Serialize)]
pub struct LocationJson {
    pub description: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl From<&TimelineEntry> for TimelineEntryJson {
    fn from(e: &TimelineEntry) -> Self {
        Self {
            at_ms: ms(e.at),
            stage: e.stage.code().to_string(),
            stage_label: e.stage.label().to_string(),
            capture_type: e.capture_type.code().to_string(),
            pallet: e.pallet.clone(),
            location: e.location.as_ref().map(|l| LocationJson {
                description: l.description.clone(),
                lat: l.lat,
                lon: l.lon,
            }),
            source: e.source.code(),
            from_device: e.source.code() == "device",
            id: e.id.clone(),
        }
    }
}

impl DetailJson {
    /// Adds the consignment's tracking timeline.
    pub fn with_timeline(mut self, timeline: &Timeline) -> Self {
        self.timeline = timeline
            .consignment
            .iter()
            .map(TimelineEntryJson::from)
            .collect();
        self
    }
}

fn timeline_line(out: &mut String, e: &TimelineEntry) {
    let scope = match &e.pallet {
        Some(p) if e.capture_type.code() != "C" => format!("{} {p}", e.capture_type.code()),
        _ => e.capture_type.code().to_string(),
    };
    let _ = writeln!(
        out,
        "    {}  {:<18} {:<20} {:<11} {}",
        e.at.format("%Y-%m-%d %H:%M:%S"),
        truncate(e.stage.label(), 18),
        truncate(&scope, 20),
        e.source.label(),
        e.location.as_ref().map(|l| l.text()).unwrap_or_default()
    );
}

/// A consignment's tracking timeline for people: every event, then each pallet's path.
pub fn timeline_text(t: &Timeline) -> String {
    let mut out = String::new();
    if t.consignment.is_empty() {
        let _ = writeln!(
            out,
            "  timeline:     no tracking events yet (run `upn-driver sync`)"
        );
        return out;
    }
    let _ = writeln!(out, "  timeline (UTC):");
    for e in &t.consignment {
        timeline_line(&mut out, e);
    }
    // Times alone when everything happened on one day; with the date otherwise.
    let one_day = t
        .consignment
        .windows(2)
        .all(|w| w[0].at.date_naive() == w[1].at.date_naive());
    let when = if one_day { "%H:%M" } else { "%d %b %H:%M" };
    for p in &t.pallets {
        let path = p
            .entries
            .iter()
            .map(|e| format!("{} {}", e.stage.label(), e.at.format(when)))
            .collect::<Vec<_>>()
            .join(" → ");
        let _ = writeln!(
            out,
            "  pallet {}: {}",
            p.pallet,
            if path.is_empty() {
                "-".to_string()
            } else {
                path
            }
        );
    }
    out
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The stop list as a table a driver can read on a terminal.
pub fn stop_table(stops: &[Stop]) -> String {
    let mut out = String::new();
    if stops.is_empty() {
        out.push_str("No stops. Run `upn-driver sync` to import the depot's consignments.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:>3}  {:<14} {:<26} {:<9} {:>3} {:>6}  {:<9} {:<11} {:<17} SYNC",
        "#", "BARCODE", "CONSIGNEE", "POSTCODE", "PLT", "KG", "SERVICE", "WINDOW", "STATUS"
    );
    for s in stops {
        let c = &s.consignment;
        let _ = writeln!(
            out,
            "{:>3}  {:<14} {:<26} {:<9} {:>3} {:>6.0}  {:<9} {:<11} {:<17} {}",
            s.position,
            c.barcode,
            truncate(&c.consignee.name, 26),
            c.address.postcode,
            c.pallets.len(),
            c.weight_kg,
            c.service.label(),
            window_text(&c.window).unwrap_or_else(|| "-".into()),
            s.status.label(),
            s.sync.code(),
        );
        if let Some(instructions) = &c.instructions {
            let _ = writeln!(out, "     ↳ {instructions}");
        }
    }
    let pallets: usize = stops.iter().map(|s| s.consignment.pallets.len()).sum();
    let weight: f64 = stops.iter().map(|s| s.consignment.weight_kg).sum();
    let _ = writeln!(
        out,
        "{} stops, {} pallets, {:.0} kg",
        stops.len(),
        pallets,
        weight
    );
    out
}

/// One consignment for people.
pub fn detail_text(d: &ConsignmentDetail) -> String {
    let c = &d.consignment;
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}", c.barcode, d.status.label());
    let _ = writeln!(out, "  consignee:    {}", c.consignee.name);
    if let Some(phone) = &c.consignee.phone {
        let _ = writeln!(out, "  phone:        {phone}");
    }
    let _ = writeln!(out, "  address:      {}", c.address.one_line());
    let _ = writeln!(out, "  shipper:      {}", c.shipper.name);
    let _ = writeln!(
        out,
        "  service:      {}{}",
        c.service.label(),
        window_text(&c.window)
            .map(|w| format!(" ({w})"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "  weight:       {:.0} kg", c.weight_kg);
    if let Some(i) = &c.instructions {
        let _ = writeln!(out, "  instructions: {i}");
    }
    if let Some(x) = &c.cancelled {
        let _ = writeln!(
            out,
            "  cancelled:    {}{}",
            x.at.format("%Y-%m-%d %H:%M"),
            x.reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "  sync:         {}", d.sync.code());
    let _ = writeln!(out, "  pallets:");
    for (p, status) in &d.pallets {
        let _ = writeln!(
            out,
            "    {}  {:<7} {:>5.0} kg  {}",
            p.barcode,
            p.size,
            p.weight_kg,
            status.label()
        );
    }
    out
}
