//! Capture at the door and the outbox, as the driver sees them: `add_photo`, `sign`, the
//! outbox listing and stats, explicit retry/discard, `flush_now`, `drain`, and listeners.
//!
//! A capture is durable before its call returns: the original bytes are written and fsynced
//! (file, rename, directory), then the row is committed with `synchronous=FULL`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Driver, Shared, Task};
use crate::cancel::CancelToken;
use crate::digest::sha256_hex;
use crate::domain::capture::{check_captured_at, check_fix, check_name, GpsFix};
use crate::domain::outbox::{resign, CaptureKind, OutboxItem, PauseScope, Pauses, ResignDecision};
use crate::domain::Stage;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::listener::{DriverListener, LiveStops, Subscription, UploadProgress};
use crate::media;
use crate::store::blobs::BlobRef;
use crate::store::captures::{differs, Capture, Inserted, NewCapture, OutboxStats};
use crate::store::keys;
use crate::sync::import::validate_barcode;
use crate::sync::outbox::{Flush, FlushEnd, FlushObserver, FlushReport};

/// What `sign` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    pub item: OutboxItem,
    /// The unsent POD this signature replaced, if any.
    pub replaced: Option<String>,
    /// The GPS fix was older than 30 minutes at capture (kept, flagged).
    pub stale_gps: bool,
}

/// What `drain` managed before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport {
    pub flush: FlushReport,
    /// Items still waiting to reach UPN (including those waiting for attention, and the
    /// photos the data saver holds).
    pub pending: u32,
    /// Of `pending`, the queued photos the data saver holds (not failed: they go on an
    /// unmetered network, or when the budget allows).
    pub held_by_data_saver: u32,
}

/// A capture id from the app: 32 lowercase hex digits as the core writes them, or a UUID in
/// any usual spelling (hyphens, braces, `urn:uuid:`, upper case), written as 32 lowercase hex.
pub fn normalise_capture_id(id: &str) -> Result<String> {
    let bad = || {
        Error::invalid(
            "capture_id",
            "must be 32 hex digits or a UUID (like 123e4567-e89b-12d3-a456-426614174000); omit it to let the core choose one",
        )
    };
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(id.to_ascii_lowercase());
    }
    if id.len() > 45 {
        return Err(bad());
    }
    uuid::Uuid::try_parse(id)
        .map(|u| format!("{:032x}", u.as_u128()))
        .map_err(|_| bad())
}

/// Turns flush events into posts to the listeners' mailbox (never a listener call: those run
/// on the dispatcher thread, so a slow listener never holds the flush up).
struct Notifier(Arc<Shared>);

impl FlushObserver for Notifier {
    fn capture_changed(&self, id: &str) {
        self.0.notify_capture(id);
    }

    fn progress(&self, capture: &Capture, sent: u64, total: u64) {
        if self.0.listeners.is_empty() {
            return;
        }
        self.0.listeners.progress(UploadProgress {
            capture_id: capture.id.clone(),
            barcode: capture.barcode.clone(),
            sent,
            total,
        });
    }
}

impl Shared {
    /// Tells listeners that a capture (and so its stop) changed. Reads the row under the store
    /// lock and posts it under the same lock, so a `subscribe` reading the outbox meanwhile
    /// either sees this state or hears of it.
    pub(crate) fn notify_capture(&self, id: &str) {
        if self.listeners.is_empty() {
            return;
        }
        let Ok(store) = self.store() else { return };
        if let Ok(Some(capture)) = store.capture(id) {
            if let Ok(item) = self.outbox_item(&store, &capture) {
                self.listeners.item_changed(item);
            }
        }
    }

    /// Runs `f` with no row left `sending` unless a flush really is sending it: when no flush
    /// holds the gate, rows left `sending` by a crash are queued again first (and the gate is
    /// held meanwhile, so no flush claims anything under `f`). So `InFlight` means in flight.
    pub(crate) fn settled<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let gate = self.outbox_gate.try_lock().ok();
        if gate.is_some() {
            self.store()?.requeue_in_flight(self.clock.now())?;
        }
        f()
    }

    /// One flush pass, single-flight. `deadline` bounds it; the pass stops cleanly there.
    pub(crate) async fn flush(
        self: &Arc<Self>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<FlushReport> {
        let _gate = match deadline {
            Some(d) => match tokio::time::timeout_at(d, self.outbox_gate.lock()).await {
                Ok(gate) => gate,
                Err(_) => return Ok(FlushReport::empty(FlushEnd::Deadline)),
            },
            None => self.outbox_gate.lock().await,
        };
        let flush = Flush {
            api: &self.api,
            store: &self.store,
            blobs: &self.blobs,
            clock: self.clock.as_ref(),
            media: self.config.media,
            observer: Arc::new(Notifier(self.clone())),
            renders: &self.renders,
            saver: &self.saver,
            assisted: self.config.background_renditions,
        };
        // The assistant renders ahead while the flush runs, as a task of its own, and stops
        // with it however the flush ends (a render under way finishes on its thread; its
        // claim goes with the aborted task).
        let _assistant = flush.assisted.then(|| {
            let shared = self.clone();
            super::task::Task::new(tokio::spawn(
                async move { super::render::assist(&shared).await },
            ))
        });
        match deadline {
            // A hard stop: cancelling at any await leaves rows `sending`, requeued next pass.
            Some(d) => Ok(tokio::time::timeout_at(d, flush.run(Some(d)))
                .await
                .unwrap_or(Ok(FlushReport::empty(FlushEnd::Deadline)))?),
            None => flush.run(None).await,
        }
    }

    /// A flush that also ends when `cancel` fires: the pass (its gate wait, its request in
    /// flight) is dropped at once, which releases the gate; rows it left `sending` are queued
    /// again by the next pass (the same idempotency key makes the repeat safe).
    pub(crate) async fn flush_cancellable(
        self: &Arc<Self>,
        deadline: Option<tokio::time::Instant>,
        cancel: &CancelToken,
    ) -> Result<FlushReport> {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Ok(FlushReport::empty(FlushEnd::Cancelled)),
            report = self.flush(deadline) => report,
        }
    }
}

impl Shared {
    /// One flush pass, and what still waits to reach UPN after it (`drain`, `sync_now`).
    pub(crate) async fn flush_and_count(
        self: &Arc<Self>,
        deadline: Option<tokio::time::Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<DrainReport> {
        let flush = match cancel {
            Some(cancel) => self.flush_cancellable(deadline, cancel).await?,
            None => self.flush(deadline).await?,
        };
        let store = self.store()?;
        let pending = store.pending_captures()?.len();
        let held = store
            .data_saver_holds(self.clock.now(), self.is_metered())?
            .len();
        Ok(DrainReport {
            flush,
            pending: u32::try_from(pending).unwrap_or(u32::MAX),
            held_by_data_saver: u32::try_from(held).unwrap_or(u32::MAX),
        })
    }
}

impl Driver {
    /// Records a delivery photo. Any number, before or after the signature; photos taken before
    /// the signature wait for it. Durable when this returns. The photo is checked from its
    /// header and structure only; its upload rendition is made in the background afterwards
    /// (a photo that cannot be rendered then needs attention, and listeners hear of it).
    pub fn add_photo(
        &self,
        barcode: &str,
        bytes: &[u8],
        kind: CaptureKind,
        captured_at: DateTime<Utc>,
        gps: Option<GpsFix>,
    ) -> Result<OutboxItem> {
        self.add_photo_with_id(barcode, bytes, kind, captured_at, gps, None)
    }

    /// [`Driver::add_photo`] under a capture id of the app's (32 hex digits or a UUID), so a
    /// call repeated after a timeout or a process death returns the capture it made instead of
    /// storing the photo twice. The same id with different content is
    /// [`Error::CaptureIdConflict`], and nothing is recorded.
    pub fn add_photo_with_id(
        &self,
        barcode: &str,
        bytes: &[u8],
        kind: CaptureKind,
        captured_at: DateTime<Utc>,
        gps: Option<GpsFix>,
        capture_id: Option<&str>,
    ) -> Result<OutboxItem> {
        if !kind.is_photo() {
            return Err(Error::invalid(
                "kind",
                "must be goods, location or leave_safe for a photo",
            ));
        }
        let s = &self.shared;
        let barcode = validate_barcode(barcode)?;
        let capture_id = capture_id.map(normalise_capture_id).transpose()?;
        let now = s.clock.now();
        check_captured_at(captured_at, now)?;
        let fix = gps.map(|g| check_fix(g, captured_at)).transpose()?;
        let new = NewCapture {
            id: capture_id.unwrap_or_else(|| self.new_capture_id()),
            barcode: barcode.to_string(),
            kind,
            captured_at,
            clock_offset_ms: self.clock_offset_ms(),
            signed_by: None,
            fix,
            original: Default::default(),
            replaces: None,
        };
        if let Some(existing) = self.retried(&new, bytes)? {
            return Ok(OutboxItem::from(&existing));
        }
        {
            let store = s.store()?;
            let consignment = open_consignment(&store, barcode)?;
            let pod = store.live_pod(barcode)?;
            if pod.is_none() && consignment.stage == Some(Stage::Delivered) {
                return Err(Error::AlreadyDelivered {
                    barcode: barcode.to_string(),
                });
            }
        }
        media::inspect_photo(bytes, &s.config.media)
            .map_err(|e| Error::invalid("photo", e.to_string()))?;
        // Waiting or queued is decided by the store, in the transaction that inserts it.
        let capture = self.record(new, bytes)?;
        let store = s.store()?;
        s.outbox_item(&store, &capture)
    }

    /// Records the consignee's signature, printed name, time and place: the ePOD. One per
    /// consignment; a second is refused unless the first never left the device, in which case
    /// it replaces the first (and the replaced one is kept, marked replaced).
    pub fn sign(
        &self,
        barcode: &str,
        signature: &[u8],
        signed_by: &str,
        captured_at: DateTime<Utc>,
        gps: Option<GpsFix>,
    ) -> Result<Signed> {
        self.sign_with_id(barcode, signature, signed_by, captured_at, gps, None)
    }

    /// [`Driver::sign`] under a capture id of the app's: the same signature, name and time
    /// under the same id returns the POD already recorded (nothing replaced, nothing stored);
    /// anything different under it is [`Error::CaptureIdConflict`].
    pub fn sign_with_id(
        &self,
        barcode: &str,
        signature: &[u8],
        signed_by: &str,
        captured_at: DateTime<Utc>,
        gps: Option<GpsFix>,
        capture_id: Option<&str>,
    ) -> Result<Signed> {
        let s = &self.shared;
        let barcode = validate_barcode(barcode)?;
        let signed_by = check_name(signed_by)?;
        let capture_id = capture_id.map(normalise_capture_id).transpose()?;
        let now = s.clock.now();
        check_captured_at(captured_at, now)?;
        let fix = gps.map(|g| check_fix(g, captured_at)).transpose()?;
        let mut new = NewCapture {
            id: capture_id.unwrap_or_else(|| self.new_capture_id()),
            barcode: barcode.to_string(),
            kind: CaptureKind::Pod,
            captured_at,
            clock_offset_ms: self.clock_offset_ms(),
            signed_by: Some(signed_by),
            fix,
            original: Default::default(),
            replaces: None,
        };
        if let Some(existing) = self.retried(&new, signature)? {
            return Ok(Signed {
                item: OutboxItem::from(&existing),
                replaced: None,
                stale_gps: existing.fix.is_some_and(|f| f.stale),
            });
        }
        new.replaces = s.settled(|| {
            let store = s.store()?;
            let consignment = open_consignment(&store, barcode)?;
            let pod = store.live_pod(barcode)?;
            match resign(pod.as_ref().map(Capture::status), now) {
                ResignDecision::InFlight => Err(Error::InFlight {
                    id: pod.map(|p| p.id).unwrap_or_default(),
                }),
                ResignDecision::Refuse => Err(Error::AlreadySigned {
                    barcode: barcode.to_string(),
                }),
                ResignDecision::Replace => Ok(pod.map(|p| p.id)),
                ResignDecision::Capture => {
                    if consignment.stage == Some(Stage::Delivered) {
                        return Err(Error::AlreadyDelivered {
                            barcode: barcode.to_string(),
                        });
                    }
                    Ok(None)
                }
            }
        })?;
        media::inspect_signature(signature, &s.config.media)
            .map_err(|e| Error::invalid("signature", e.to_string()))?;
        let replaces = new.replaces.clone();
        let capture = self.record(new, signature)?;
        // A concurrent retry may have recorded it first: then nothing was replaced here.
        let replaces = replaces.filter(|r| capture.replaces.as_deref() == Some(r.as_str()));
        if let Some(old) = &replaces {
            tracing::info!(barcode, replaced = %old, "unsent signature replaced");
            s.notify_capture(old);
        }
        Ok(Signed {
            item: OutboxItem::from(&capture),
            replaced: replaces,
            stale_gps: fix.is_some_and(|f| f.stale),
        })
    }

    /// An app's retry: the capture already recorded under `new.id` when it is this one, a
    /// conflict when it is another, `None` when the id is free (the insert decides for good).
    fn retried(&self, new: &NewCapture, bytes: &[u8]) -> Result<Option<Capture>> {
        let Some(existing) = self.shared.store()?.capture(&new.id)? else {
            return Ok(None);
        };
        let probe = NewCapture {
            original: BlobRef {
                name: String::new(),
                sha256: sha256_hex(bytes),
                bytes: bytes.len() as u64,
            },
            ..new.clone()
        };
        match differs(&probe, &existing) {
            None => Ok(Some(existing)),
            Some(what) => Err(Error::CaptureIdConflict {
                id: new.id.clone(),
                differs: what,
            }),
        }
    }

    /// Stages the original durably, then inserts the row and puts the file in place inside
    /// the inserting transaction (a taken id leaves the other capture's file alone); wakes the
    /// outbox and the renderer.
    fn record(&self, mut new: NewCapture, bytes: &[u8]) -> Result<Capture> {
        let s = &self.shared;
        failpoint::hit("capture.before_gate");
        // One capture at a time in this process: a staged file has one temporary name per id.
        let _one = s.capture_gate.lock().unwrap_or_else(|p| p.into_inner());
        s.store()?.note_captures_begun()?;
        let staged = s.blobs.stage(&format!("{}.orig", new.id), bytes)?;
        new.original = staged.blob.clone();
        failpoint::hit("capture.before_insert");
        let published = std::cell::Cell::new(false);
        let inserted = s.store()?.insert_capture(&new, s.clock.now(), || {
            s.blobs.publish(&staged)?;
            published.set(true);
            Ok(())
        });
        let existing = match inserted {
            Ok(Inserted::New) => None,
            Ok(Inserted::Existing(c)) => Some(*c),
            Err(e) => {
                match published.get() {
                    true => s.blobs.remove(&new.original.name),
                    false => s.blobs.unstage(&staged),
                }
                return Err(e);
            }
        };
        if let Some(existing) = existing {
            s.blobs.unstage(&staged);
            return Ok(existing);
        }
        failpoint::hit("capture.after_commit");
        let capture = s.store()?.capture(&new.id)?.ok_or_else(|| Error::Storage {
            reason: "a capture vanished right after it was recorded".into(),
            disk_full: false,
        })?;
        s.notify_capture(&capture.id);
        s.outbox_wake.notify_one();
        if capture.kind.is_photo() {
            s.render_wake.notify_one();
        }
        Ok(capture)
    }

    /// A fresh capture id: also the idempotency key UPN sees, so it must never repeat.
    fn new_capture_id(&self) -> String {
        format!("{:032x}", self.shared.ids.next_id())
    }

    fn clock_offset_ms(&self) -> Option<i64> {
        self.shared
            .store()
            .ok()?
            .sync_state(keys::CLOCK_OFFSET_MS)
            .ok()
            .flatten()?
            .parse()
            .ok()
    }

    /// Everything not yet acknowledged by UPN, oldest first (a photo the data saver holds
    /// carries the hold as its reason).
    pub fn outbox(&self) -> Result<Vec<OutboxItem>> {
        let store = self.shared.store()?;
        self.shared.outbox_items(&store, &store.pending_captures()?)
    }

    pub fn outbox_stats(&self) -> Result<OutboxStats> {
        self.shared.store()?.outbox_stats()
    }

    /// Every capture of a consignment (sent ones included), in capture order.
    pub fn captures(&self, barcode: &str) -> Result<Vec<Capture>> {
        let barcode = validate_barcode(barcode)?;
        self.shared.store()?.captures_of(barcode)
    }

    /// Sends an item that needs attention again (or a queued one now). A pause holding it
    /// back probes at once. Refused with `InFlight` while it is being sent.
    pub fn retry(&self, capture_id: &str) -> Result<OutboxItem> {
        let capture = self.shared.settled(|| {
            let mut store = self.shared.store()?;
            let capture = store.retry_capture(capture_id, self.shared.clock.now())?;
            probe_pauses_now(&mut store, Some(capture.kind))?;
            Ok(capture)
        })?;
        self.shared.notify_capture(capture_id);
        self.shared.outbox_wake.notify_one();
        let store = self.shared.store()?;
        self.shared.outbox_item(&store, &capture)
    }

    /// Retries everything that needs attention (and releases photos whose POD was sent), and
    /// lets every pause probe at once. Returns the retried items.
    pub fn retry_all(&self) -> Result<Vec<OutboxItem>> {
        let ids = self.shared.settled(|| {
            let mut store = self.shared.store()?;
            let ids = store.retry_all(self.shared.clock.now())?;
            probe_pauses_now(&mut store, None)?;
            Ok(ids)
        })?;
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            self.shared.notify_capture(id);
            if let Some(c) = self.shared.store()?.capture(id)? {
                items.push(OutboxItem::from(&c));
            }
        }
        self.shared.outbox_wake.notify_one();
        Ok(items)
    }

    /// The account refusals holding the outbox (or its photos) back, with their reasons.
    pub fn outbox_pauses(&self) -> Result<Pauses> {
        self.shared.store()?.outbox_pauses()
    }

    /// Gives up on an unsent item; its files are removed. Refused with `InFlight` while it is
    /// being sent.
    pub fn discard(&self, capture_id: &str) -> Result<OutboxItem> {
        let now = self.shared.clock.now();
        let capture = self
            .shared
            .settled(|| self.shared.store()?.discard_capture(capture_id, now))?;
        self.shared.blobs.remove(&capture.original.name);
        if let Some(upload) = &capture.upload {
            self.shared.blobs.remove(&upload.name);
        }
        self.shared.notify_capture(capture_id);
        Ok(OutboxItem::from(&capture))
    }

    /// When the outbox next has something due (a backoff or a pause ending), if anything waits:
    /// when the background task would wake. A simulation moves its clock here.
    pub fn next_outbox_wake(&self) -> Result<Option<DateTime<Utc>>> {
        self.shared
            .store()?
            .next_due_at(self.shared.clock.now(), self.shared.is_metered())
    }

    /// One flush pass now, whatever the connectivity flag says.
    pub fn flush_now(&self) -> Result<FlushReport> {
        let shared = self.shared.clone();
        self.runtime
            .block_on(async move { shared.flush(None).await })
    }

    /// Does as much outbox work as fits in `budget` (a background task's window) and stops
    /// cleanly: whatever was cut short is left consistent and resumes later.
    pub fn drain(&self, budget: Duration) -> Result<DrainReport> {
        self.drain_cancellable(budget, &CancelToken::new())
    }

    /// [`Driver::drain`] that also stops, within moments, when `cancel` is cancelled (WorkManager
    /// stopped the worker, the BGTask expired): the outbox is released at once, so the next
    /// drain does not wait behind this one. A cancelled drain reports `FlushEnd::Cancelled`
    /// with zero counts (what it sent before is sent; `pending` says what is left).
    pub fn drain_cancellable(&self, budget: Duration, cancel: &CancelToken) -> Result<DrainReport> {
        let deadline = tokio::time::Instant::now() + budget;
        self.runtime
            .block_on(self.shared.flush_and_count(Some(deadline), Some(cancel)))
    }

    /// [`Driver::drain_cancellable`] as a [`Task`] on the core's runtime, for async callers.
    /// Dropping the task stops the drain at its next await, as cancelling does (rows left
    /// `sending` are queued again).
    pub fn drain_task(&self, budget: Duration, cancel: CancelToken) -> Task<Result<DrainReport>> {
        let deadline = tokio::time::Instant::now() + budget;
        let shared = self.shared.clone();
        self.spawn(async move { shared.flush_and_count(Some(deadline), Some(&cancel)).await })
    }

    /// Registers a listener and returns, with the subscription, the stop list and outbox it
    /// starts from: the listener then hears every later version of the stop list (`seq`
    /// greater than the snapshot's, none missed, none repeated) and every outbox item change
    /// after the snapshot. Calls come from the core's dispatcher thread. Dropping the returned
    /// subscription unregisters it.
    pub fn subscribe(
        &self,
        listener: Arc<dyn DriverListener>,
    ) -> Result<(LiveStops, Subscription)> {
        let shared = &self.shared;
        shared.listeners.subscribe(
            listener,
            || shared.stops(),
            || {
                let store = shared.store()?;
                shared.outbox_items(&store, &store.pending_captures()?)
            },
        )
    }
}

/// A person asked to retry: the pauses covering `kind` (all, for `None`) probe at the next pass.
fn probe_pauses_now(store: &mut crate::store::Store, kind: Option<CaptureKind>) -> Result<()> {
    let pauses = store.outbox_pauses()?;
    for scope in [PauseScope::Outbox, PauseScope::Images] {
        if kind.is_some_and(|k| !scope.covers(k)) {
            continue;
        }
        if let Some(pause) = pauses.get(scope) {
            store.set_outbox_pause(scope, Some(&pause.clone().probe_now()))?;
        }
    }
    Ok(())
}

fn open_consignment(
    store: &crate::store::Store,
    barcode: &str,
) -> Result<crate::domain::Consignment> {
    let consignment = store.consignment(barcode)?.ok_or_else(|| Error::NotFound {
        barcode: barcode.to_string(),
    })?;
    if consignment.cancelled.is_some() {
        return Err(Error::Cancelled {
            barcode: barcode.to_string(),
        });
    }
    Ok(consignment)
}
