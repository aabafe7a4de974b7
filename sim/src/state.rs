//! The stateful UPN: consignments with versions, the pending tracking-event queue, PODs, images,
//! attempts per idempotency key, recorded refusals and the access switches. Pure and synchronous:
//! the HTTP layer locks it for short critical sections and never across an `.await`.

use std::collections::{HashMap, VecDeque};

use crate::wire::{
    self, code, ConsignmentFeed, ImageReceipt, PodReceipt, PodSubmission, TrackingBatch,
    WireCancellation, WireConsignment, WireTrackingEvent,
};
use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::data;
use crate::faults::{FaultDecider, FaultSpec, Route};

/// Default and cap of `?max=` on the tracking feed (over HTTP, a value outside 1..=cap is a 400).
pub const DEFAULT_BATCH: u64 = 500;
pub const MAX_BATCH: u64 = 5000;

/// What the simulator has received, as `GET /_sim/received` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Received {
    /// Stored PODs, in arrival order.
    pub pods: Vec<ReceivedPod>,
    /// Stored images, in arrival order.
    pub images: Vec<ReceivedImage>,
    /// Genuine refusals (400/401/403/404/409/413), not injected faults, in order.
    pub rejected: Vec<Rejected>,
    /// Non-empty tracking batches handed out so far.
    pub event_batches_handed_out: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedPod {
    pub barcode: String,
    pub idempotency_key: String,
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The device's tamper-evident POD hash (`pod_sha256`), when it sent one.
    #[serde(default)]
    pub pod_sha256: Option<String>,
    /// Global arrival order of the first successful receipt (shared with images, from 1).
    pub seq: u64,
    /// Every request seen with this key, including those answered with an injected fault.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedImage {
    pub barcode: String,
    pub idempotency_key: String,
    /// Hex sha256 of the body.
    pub sha256: String,
    pub kind: String,
    pub bytes: u64,
    pub seq: u64,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// `consignments`, `events`, `pod` or `image`.
    pub route: String,
    pub barcode: Option<String>,
    pub status: u16,
    /// The refusal code sent (`ErrorDetail::code`), e.g. `pod_required`.
    pub reason: String,
}

/// A tracking event to queue (`POST /_sim/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub barcode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pallet: Option<String>,
    /// `C` or `P`; kept verbatim.
    pub capture_type: String,
    /// Any stage code; kept verbatim.
    pub stage: String,
    /// When it happened; `None`: now (strictly increasing across queued events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// The access switches UPN holds for the depot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub integration_enabled: bool,
    pub tracking_enabled: bool,
    pub images_enabled: bool,
}

/// A genuine refusal: status, code and a human message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, code::INVALID_REQUEST, message)
    }
    pub fn unknown_barcode(barcode: &str) -> Self {
        Self::new(
            404,
            code::UNKNOWN_BARCODE,
            format!("{barcode} is not an open consignment of this depot"),
        )
    }
}

#[derive(Debug, Clone)]
struct Entry {
    consignment: WireConsignment,
    /// Version of the last change.
    version: u64,
    cancelled: Option<(WireCancellation, u64)>,
    /// Index into `pods`.
    pod: Option<usize>,
}

#[derive(Debug, Clone)]
struct StoredPod {
    received: ReceivedPod,
    receipt: PodReceipt,
}

#[derive(Debug, Clone)]
struct StoredImage {
    received: ReceivedImage,
    receipt: ImageReceipt,
}

/// An image upload that passed the HTTP-level checks.
#[derive(Debug, Clone)]
pub struct ImageUpload {
    pub kind: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug)]
pub struct SimState {
    depot: String,
    version: u64,
    entries: Vec<Entry>,
    by_barcode: HashMap<String, usize>,
    pending: VecDeque<WireTrackingEvent>,
    next_event: u64,
    last_event_at: DateTime<Utc>,
    batches: u64,
    pods: Vec<StoredPod>,
    images: Vec<StoredImage>,
    /// (barcode, idempotency key) -> index into `images`.
    image_keys: HashMap<(String, String), usize>,
    attempts: HashMap<(Route, String, String), u32>,
    rejected: Vec<Rejected>,
    next_seq: u64,
    pub access: Access,
    pub faults: FaultDecider,
}

impl SimState {
    /// Generates the depot's consignments for `today` and queues one `BOOKED` event for each.
    pub fn new(
        seed: u64,
        count: usize,
        depot: &str,
        faults: FaultSpec,
        access: Access,
        today: NaiveDate,
    ) -> Self {
        let generated = data::generate(seed, count, depot, today);
        let mut state = Self {
            depot: depot.to_string(),
            version: 0,
            entries: Vec::with_capacity(generated.len()),
            by_barcode: HashMap::with_capacity(generated.len()),
            pending: VecDeque::with_capacity(generated.len()),
            next_event: 1,
            last_event_at: DateTime::<Utc>::MIN_UTC,
            batches: 0,
            pods: Vec::new(),
            images: Vec::new(),
            image_keys: HashMap::new(),
            attempts: HashMap::new(),
            rejected: Vec::new(),
            next_seq: 1,
            access,
            faults: FaultDecider::new(seed, faults),
        };
        for consignment in generated {
            state.version += 1;
            let booked = WireTrackingEvent {
                id: String::new(),
                barcode: consignment.barcode.clone(),
                pallet: None,
                capture_type: "C".into(),
                stage: wire::stage::BOOKED.into(),
                at: consignment.updated_at,
                location: Some(data::address_location(&consignment)),
            };
            state.enqueue(booked);
            state
                .by_barcode
                .insert(consignment.barcode.clone(), state.entries.len());
            state.entries.push(Entry {
                consignment,
                version: state.version,
                cancelled: None,
                pod: None,
            });
        }
        state
    }

    fn enqueue(&mut self, mut event: WireTrackingEvent) {
        event.id = format!("EV{:06}", self.next_event);
        self.next_event += 1;
        if event.at > self.last_event_at {
            self.last_event_at = event.at;
        }
        self.pending.push_back(event);
    }

    fn entry(&self, barcode: &str) -> Option<&Entry> {
        self.by_barcode
            .get(barcode)
            .and_then(|i| self.entries.get(*i))
    }

    /// The open (not cancelled) entry of a barcode, by index.
    fn open_index(&self, barcode: &str) -> Option<usize> {
        let i = *self.by_barcode.get(barcode)?;
        self.entries
            .get(i)
            .filter(|e| e.cancelled.is_none())
            .map(|_| i)
    }

    /// Open consignments, in generation order.
    pub fn open_consignments(&self) -> Vec<WireConsignment> {
        self.entries
            .iter()
            .filter(|e| e.cancelled.is_none())
            .map(|e| e.consignment.clone())
            .collect()
    }

    pub fn cursor(&self) -> String {
        format!("v{}", self.version)
    }

    /// The consignments feed: everything open, or what changed after `since` (`v{n}`).
    pub fn feed(
        &self,
        since: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ConsignmentFeed, Refusal> {
        let after = match since {
            None => None,
            Some(cursor) => Some(parse_cursor(cursor).ok_or_else(|| {
                Refusal::invalid(format!(
                    "since: {cursor:?} is not a cursor from this feed (expected v<number>)"
                ))
            })?),
        };
        let consignments = self
            .entries
            .iter()
            .filter(|e| e.cancelled.is_none() && after.is_none_or(|n| e.version > n))
            .map(|e| e.consignment.clone())
            .collect();
        let cancellations = match after {
            None => Vec::new(),
            Some(n) => self
                .entries
                .iter()
                .filter_map(|e| e.cancelled.as_ref())
                .filter(|(_, v)| *v > n)
                .map(|(c, _)| c.clone())
                .collect(),
        };
        Ok(ConsignmentFeed {
            server_time: now,
            cursor: self.cursor(),
            consignments,
            cancellations,
        })
    }

    /// Hands out up to `max` pending events (clamped to 1..=5000) as a new batch.
    pub fn take_batch(&mut self, max: u64, now: DateTime<Utc>) -> TrackingBatch {
        let n = max.clamp(1, MAX_BATCH) as usize;
        let take = n.min(self.pending.len());
        let events: Vec<WireTrackingEvent> = self.pending.drain(..take).collect();
        let batch_id = if events.is_empty() {
            None
        } else {
            self.batches += 1;
            Some(format!("B{:06}", self.batches))
        };
        TrackingBatch {
            server_time: now,
            batch_id,
            events,
            remaining: self.pending.len() as u64,
        }
    }

    /// Queues events; returns how many were queued.
    pub fn push_events(&mut self, events: Vec<NewEvent>, now: DateTime<Utc>) -> usize {
        let count = events.len();
        let now = now.duration_trunc(Duration::milliseconds(1)).unwrap_or(now);
        for e in events {
            let at = match e.at {
                Some(at) => at,
                None if now > self.last_event_at => now,
                None => self.last_event_at + Duration::milliseconds(1),
            };
            let location = if e.stage == wire::stage::OUT_FOR_DELIVERY {
                Some(data::depot_location(&self.depot))
            } else {
                self.entry(&e.barcode)
                    .map(|entry| data::address_location(&entry.consignment))
            };
            self.enqueue(WireTrackingEvent {
                id: String::new(),
                barcode: e.barcode,
                pallet: e.pallet,
                capture_type: e.capture_type,
                stage: e.stage,
                at,
                location,
            });
        }
        count
    }

    /// Counts one request carrying `key` for `barcode` on `route`.
    pub fn count_attempt(&mut self, route: Route, barcode: &str, key: &str) {
        *self
            .attempts
            .entry((route, barcode.to_string(), key.to_string()))
            .or_insert(0) += 1;
    }

    fn attempts_of(&self, route: Route, barcode: &str, key: &str) -> u32 {
        self.attempts
            .get(&(route, barcode.to_string(), key.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub fn record_rejection(&mut self, route: Route, barcode: Option<&str>, refusal: &Refusal) {
        self.rejected.push(Rejected {
            route: route.name().to_string(),
            barcode: barcode.map(str::to_string),
            status: refusal.status,
            reason: refusal.code.to_string(),
        });
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Stores a POD (201), repeats the stored receipt for the same key (200), or refuses.
    /// `pod` has already been validated (non-empty `signed_by`, valid base64).
    pub fn submit_pod(
        &mut self,
        barcode: &str,
        key: &str,
        pod: &PodSubmission,
        now: DateTime<Utc>,
    ) -> Result<(u16, PodReceipt), Refusal> {
        let index = self
            .open_index(barcode)
            .ok_or_else(|| Refusal::unknown_barcode(barcode))?;
        if let Some(p) = self.entries[index].pod {
            let stored = &self.pods[p];
            if stored.received.idempotency_key == key {
                let mut receipt = stored.receipt.clone();
                receipt.server_time = now;
                receipt.duplicate = true;
                return Ok((200, receipt));
            }
            return Err(Refusal::new(
                409,
                code::ALREADY_DELIVERED,
                format!("{barcode} already has a POD from another capture"),
            ));
        }
        let seq = self.take_seq();
        // What UPN stored, so the client can check it sent these bytes (validated base64).
        let signature = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &pod.signature_png_base64,
        )
        .unwrap_or_default();
        let receipt = PodReceipt {
            server_time: now,
            barcode: barcode.to_string(),
            pod_reference: format!("POD-{barcode}"),
            received_at: now,
            duplicate: false,
            signature_sha256: Some(crate::routes::sha256_hex(&signature)),
            signature_bytes: Some(signature.len() as u64),
            pod_sha256: pod.pod_sha256.clone(),
        };
        self.pods.push(StoredPod {
            received: ReceivedPod {
                barcode: barcode.to_string(),
                idempotency_key: key.to_string(),
                signed_by: pod.signed_by.clone(),
                signed_at: pod.signed_at,
                lat: pod.gps.map(|g| g.lat),
                lon: pod.gps.map(|g| g.lon),
                pod_sha256: pod.pod_sha256.clone(),
                seq,
                attempts: 0,
            },
            receipt: receipt.clone(),
        });
        self.entries[index].pod = Some(self.pods.len() - 1);
        Ok((201, receipt))
    }

    /// Stores an image (201), repeats the stored receipt for a key seen before (200), or refuses.
    pub fn submit_image(
        &mut self,
        barcode: &str,
        key: &str,
        upload: ImageUpload,
        now: DateTime<Utc>,
    ) -> Result<(u16, ImageReceipt), Refusal> {
        let index = self
            .open_index(barcode)
            .ok_or_else(|| Refusal::unknown_barcode(barcode))?;
        if self.entries[index].pod.is_none() {
            return Err(Refusal::new(
                409,
                code::POD_REQUIRED,
                format!("{barcode} has no POD yet: submit the POD before its images"),
            ));
        }
        let map_key = (barcode.to_string(), key.to_string());
        if let Some(i) = self.image_keys.get(&map_key) {
            let mut receipt = self.images[*i].receipt.clone();
            receipt.server_time = now;
            receipt.duplicate = true;
            return Ok((200, receipt));
        }
        let seq = self.take_seq();
        let n = self
            .images
            .iter()
            .filter(|i| i.received.barcode == barcode)
            .count()
            + 1;
        let receipt = ImageReceipt {
            server_time: now,
            barcode: barcode.to_string(),
            image_reference: format!("IMG-{barcode}-{n:02}"),
            sha256: upload.sha256.clone(),
            bytes: upload.bytes,
            duplicate: false,
        };
        self.images.push(StoredImage {
            received: ReceivedImage {
                barcode: barcode.to_string(),
                idempotency_key: key.to_string(),
                sha256: upload.sha256,
                kind: upload.kind,
                bytes: upload.bytes,
                seq,
                attempts: 0,
            },
            receipt: receipt.clone(),
        });
        self.image_keys.insert(map_key, self.images.len() - 1);
        Ok((201, receipt))
    }

    /// Cancels an open consignment (bumps the version). False if unknown or already cancelled.
    pub fn cancel(&mut self, barcode: &str, reason: Option<&str>, now: DateTime<Utc>) -> bool {
        let Some(i) = self.open_index(barcode) else {
            return false;
        };
        self.version += 1;
        self.entries[i].cancelled = Some((
            WireCancellation {
                barcode: barcode.to_string(),
                cancelled_at: now,
                reason: reason.map(str::to_string),
            },
            self.version,
        ));
        true
    }

    /// Replaces the special instructions of an open consignment (bumps the version).
    pub fn update_instructions(
        &mut self,
        barcode: &str,
        text: Option<&str>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(i) = self.open_index(barcode) else {
            return false;
        };
        self.version += 1;
        let entry = &mut self.entries[i];
        entry.consignment.special_instructions = text.map(str::to_string);
        entry.consignment.updated_at = now;
        entry.version = self.version;
        true
    }

    pub fn received(&self) -> Received {
        Received {
            pods: self
                .pods
                .iter()
                .map(|p| {
                    let mut r = p.received.clone();
                    r.attempts = self.attempts_of(Route::Pod, &r.barcode, &r.idempotency_key);
                    r
                })
                .collect(),
            images: self
                .images
                .iter()
                .map(|i| {
                    let mut r = i.received.clone();
                    r.attempts = self.attempts_of(Route::Image, &r.barcode, &r.idempotency_key);
                    r
                })
                .collect(),
            rejected: self.rejected.clone(),
            event_batches_handed_out: self.batches,
        }
    }
}

fn parse_cursor(cursor: &str) -> Option<u64> {
    let digits = cursor.strip_prefix('v')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access {
            integration_enabled: true,
            tracking_enabled: true,
            images_enabled: true,
        }
    }

    fn state(n: usize) -> SimState {
        let today = NaiveDate::from_ymd_opt(2025, 3, 14).unwrap();
        SimState::new(1, n, "042", FaultSpec::none(), access(), today)
    }

    fn pod() -> PodSubmission {
        PodSubmission {
            signed_by: "J. Smith".into(),
            signed_at: Utc::now(),
            clock_offset_ms: None,
            gps: None,
            signature_png_base64: "iVBORw0KGgo=".into(),
            image_count: 1,
            pod_sha256: None,
        }
    }

    fn upload() -> ImageUpload {
        ImageUpload {
            kind: "goods".into(),
            sha256: "ab".into(),
            bytes: 3,
        }
    }

    #[test]
    fn feed_cursor_semantics() {
        let mut s = state(5);
        let now = Utc::now();
        let full = s.feed(None, now).unwrap();
        assert_eq!(full.consignments.len(), 5);
        assert_eq!(full.cursor, "v5");
        assert!(full.cancellations.is_empty());
        assert!(s.feed(Some("v5"), now).unwrap().consignments.is_empty());
        assert_eq!(s.feed(Some("v3"), now).unwrap().consignments.len(), 2);

        let a = full.consignments[1].barcode.clone();
        let b = full.consignments[2].barcode.clone();
        assert!(s.update_instructions(&a, Some("Tail-lift required"), now));
        assert!(s.cancel(&b, Some("customer cancelled"), now));
        assert!(!s.cancel(&b, None, now), "already cancelled");
        assert!(!s.update_instructions(&b, None, now), "cancelled");
        assert!(!s.cancel("UPN0420000000", None, now));

        let delta = s.feed(Some("v5"), now).unwrap();
        assert_eq!(delta.cursor, "v7");
        assert_eq!(delta.consignments.len(), 1);
        assert_eq!(delta.consignments[0].barcode, a);
        assert_eq!(
            delta.consignments[0].special_instructions.as_deref(),
            Some("Tail-lift required")
        );
        assert_eq!(delta.cancellations.len(), 1);
        assert_eq!(delta.cancellations[0].barcode, b);
        assert_eq!(
            delta.cancellations[0].reason.as_deref(),
            Some("customer cancelled")
        );
        // After the update, before the cancel: only the cancellation.
        let tail = s.feed(Some("v6"), now).unwrap();
        assert!(tail.consignments.is_empty());
        assert_eq!(tail.cancellations.len(), 1);
        // The full feed has no cancellations and no cancelled consignment.
        let full = s.feed(None, now).unwrap();
        assert_eq!(full.consignments.len(), 4);
        assert!(full.cancellations.is_empty());
        assert_eq!(s.open_consignments().len(), 4);

        for bad in [
            "5",
            "v",
            "vx",
            "v-1",
            "v1.0",
            "",
            "v99999999999999999999999",
        ] {
            let e = s.feed(Some(bad), now).unwrap_err();
            assert_eq!((e.status, e.code), (400, code::INVALID_REQUEST), "{bad}");
        }
    }

    #[test]
    fn events_are_handed_out_once() {
        let mut s = state(3);
        let now = Utc::now();
        let first = s.take_batch(2, now);
        assert_eq!(first.batch_id.as_deref(), Some("B000001"));
        assert_eq!(first.events.len(), 2);
        assert_eq!(first.events[0].id, "EV000001");
        assert_eq!(first.events[0].stage, "BOOKED");
        assert_eq!(first.events[0].capture_type, "C");
        assert_eq!(first.remaining, 1);
        let second = s.take_batch(500, now);
        assert_eq!(second.batch_id.as_deref(), Some("B000002"));
        assert_eq!(second.events.len(), 1);
        assert_eq!(second.events[0].id, "EV000003");
        assert_eq!(second.remaining, 0);
        let empty = s.take_batch(500, now);
        assert_eq!(empty.batch_id, None);
        assert!(empty.events.is_empty());
        assert_eq!(s.received().event_batches_handed_out, 2);
    }

    #[test]
    fn pushed_events_get_ids_increasing_times_and_locations() {
        let mut s = state(1);
        let barcode = s.open_consignments()[0].barcode.clone();
        s.take_batch(10, Utc::now());
        let given = "2025-03-14T10:00:00Z".parse().unwrap();
        let ev = |stage: &str, at| NewEvent {
            barcode: barcode.clone(),
            pallet: None,
            capture_type: "C".into(),
            stage: stage.into(),
            at,
        };
        let now = Utc::now();
        let n = s.push_events(
            vec![
                ev("OUT_FOR_DELIVERY", None),
                ev("ARRIVED", None),
                ev("WEIRD_NEW", Some(given)),
            ],
            now,
        );
        assert_eq!(n, 3);
        let batch = s.take_batch(10, now);
        assert_eq!(batch.events.len(), 3);
        assert_eq!(batch.events[0].id, "EV000002");
        assert!(
            batch.events[1].at > batch.events[0].at,
            "strictly increasing"
        );
        assert_eq!(batch.events[2].at, given);
        assert_eq!(batch.events[2].stage, "WEIRD_NEW");
        let depot = batch.events[0].location.clone().unwrap();
        assert!(depot.description.unwrap().contains("depot 042"));
        let site = batch.events[1].location.clone().unwrap();
        assert_eq!(
            site.lat,
            Some(s.open_consignments()[0].delivery_address.lat)
        );
    }

    #[test]
    fn pod_is_idempotent_and_exclusive() {
        let mut s = state(2);
        let barcode = s.open_consignments()[0].barcode.clone();
        let now = Utc::now();
        s.count_attempt(Route::Pod, &barcode, "k1");
        let (status, r) = s.submit_pod(&barcode, "k1", &pod(), now).unwrap();
        assert_eq!((status, r.duplicate), (201, false));
        assert_eq!(r.pod_reference, format!("POD-{barcode}"));
        s.count_attempt(Route::Pod, &barcode, "k1");
        let (status, again) = s.submit_pod(&barcode, "k1", &pod(), now).unwrap();
        assert_eq!((status, again.duplicate), (200, true));
        assert_eq!(again.received_at, r.received_at);
        let e = s.submit_pod(&barcode, "k2", &pod(), now).unwrap_err();
        assert_eq!((e.status, e.code), (409, code::ALREADY_DELIVERED));
        let e = s
            .submit_pod("UPN0429999999", "k1", &pod(), now)
            .unwrap_err();
        assert_eq!((e.status, e.code), (404, code::UNKNOWN_BARCODE));
        let received = s.received();
        assert_eq!(received.pods.len(), 1);
        assert_eq!(received.pods[0].attempts, 2);
        assert_eq!(received.pods[0].seq, 1);
        assert_eq!(received.pods[0].lat, None);
    }

    #[test]
    fn images_need_a_pod_and_are_idempotent() {
        let mut s = state(2);
        let barcode = s.open_consignments()[0].barcode.clone();
        let now = Utc::now();
        let e = s.submit_image(&barcode, "i1", upload(), now).unwrap_err();
        assert_eq!((e.status, e.code), (409, code::POD_REQUIRED));
        s.submit_pod(&barcode, "p1", &pod(), now).unwrap();
        let (status, r) = s.submit_image(&barcode, "i1", upload(), now).unwrap();
        assert_eq!((status, r.duplicate), (201, false));
        assert_eq!(r.image_reference, format!("IMG-{barcode}-01"));
        let (status, r) = s.submit_image(&barcode, "i1", upload(), now).unwrap();
        assert_eq!((status, r.duplicate), (200, true));
        let (_, r2) = s.submit_image(&barcode, "i2", upload(), now).unwrap();
        assert_eq!(r2.image_reference, format!("IMG-{barcode}-02"));
        let received = s.received();
        assert_eq!(received.images.len(), 2);
        assert_eq!(
            received.images.iter().map(|i| i.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn cancelled_consignments_refuse_pods() {
        let mut s = state(1);
        let barcode = s.open_consignments()[0].barcode.clone();
        let now = Utc::now();
        assert!(s.cancel(&barcode, None, now));
        let e = s.submit_pod(&barcode, "k", &pod(), now).unwrap_err();
        assert_eq!(e.status, 404);
    }
}
