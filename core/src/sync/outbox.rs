//! The flush: sends due PODs and photos to UPN, following the outbox state machine in
//! `domain::outbox`. Per consignment the POD goes first; its photos are released in the same
//! transaction that records the POD as sent, and go after it. Every request carries the
//! capture's id as its idempotency key, so whatever was cut short is simply sent again.
//!
//! Each item is claimed (`queued → sending`, compare-and-set) before anything of it is read or
//! rendered: an item replaced, discarded or claimed since the due list was read is skipped, and
//! while it is `sending` nobody else may change it (`Error::InFlight`). UPN's errors become the
//! domain's `SendFailure` here, in [`failure_of`], and nowhere else.
//!
//! Pipelined: while one item uploads, the next due item is claimed and its upload prepared
//! (read, or rendered when the background renderer has not made it yet), so the radio does not
//! wait for the CPU. With an assistant rendering ahead, the next item is the first ready one
//! (a POD, or a photo whose rendition is made): photos may go out of capture order among
//! themselves, never before their POD (they are not queued until it is sent). At most the
//! upload in flight and one prepared item are held in memory. A
//! prepared item whose request never left when the pass ends (offline, a pause, the deadline)
//! is released (`Event::Release`: queued again, the claim uncounted); a pass cut short at an
//! await leaves it `sending`, and the next pass re-queues it.
//!
//! The caller holds the outbox gate: one flush at a time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::digest::sha256_hex;
use crate::domain::outbox::{
    check_pod_hash_receipt, check_receipt, AccountPause, CaptureKind, Event, FailureKind,
    OutboxReason, Pause, PauseScope, Receipted, SendFailure,
};
use crate::domain::pod_hash;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::media::{self, MediaLimits};
use crate::store::blobs::Blobs;
use crate::store::captures::{Capture, Outcome};
use crate::store::Store;
use crate::sync::import::lock;
use crate::sync::render::{Claimant, Maker, Published, RenderClaims};
use crate::upn::wire::{ImageQuery, PodSubmission, WireGpsFix};
use crate::upn::{Progress, UpnApi, UpnError};

/// What the flush reports to whoever listens (the driver turns these into listener calls).
pub trait FlushObserver: Send + Sync {
    /// A capture's row changed.
    fn capture_changed(&self, id: &str);
    fn progress(&self, capture: &Capture, sent: u64, total: u64);
}

/// Why a flush pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushEnd {
    /// Nothing is due any more (items may wait on a backoff, a pause or for attention).
    Done,
    /// The device could not reach UPN; the rest waits for connectivity.
    Offline,
    /// The deadline came first.
    Deadline,
    /// The caller cancelled (a background task stopped); the rest goes next time.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FlushReport {
    pub sent: u32,
    pub retrying: u32,
    pub needs_attention: u32,
    /// Items kept queued because UPN refused the depot's account (the outbox paused).
    pub paused: u32,
    pub ended: FlushEnd,
}

impl FlushReport {
    pub fn empty(ended: FlushEnd) -> Self {
        Self {
            sent: 0,
            retrying: 0,
            needs_attention: 0,
            paused: 0,
            ended,
        }
    }
}

pub struct Flush<'a, A: UpnApi> {
    pub api: &'a A,
    pub store: &'a Mutex<Store>,
    pub blobs: &'a Blobs,
    pub clock: &'a dyn Clock,
    pub media: MediaLimits,
    pub observer: Arc<dyn FlushObserver>,
    /// Shared with the background renderer: one maker of a capture's rendition at a time.
    pub renders: &'a RenderClaims,
    /// An assistant renders photos ahead of this flush (`driver::render::assist`): photos
    /// whose rendition is made go first, so the uploads never wait for a render while one is
    /// ready. Without one the flush keeps strict sending order.
    pub assisted: bool,
    /// What the data saver decides on that is not in the store: the network.
    pub saver: &'a SaverInputs,
}

/// The data saver's inputs outside the store: whether the app reports a metered network, and
/// a count of changes to it or to the policy, so a pass notices that its due list is stale.
#[derive(Debug, Default)]
pub struct SaverInputs {
    metered: AtomicBool,
    changes: AtomicU64,
}

impl SaverInputs {
    pub fn metered(&self) -> bool {
        self.metered.load(Ordering::SeqCst)
    }

    /// Records the network's metered flag; true when it changed.
    pub fn set_metered(&self, metered: bool) -> bool {
        let changed = self.metered.swap(metered, Ordering::SeqCst) != metered;
        if changed {
            self.changed();
        }
        changed
    }

    /// The policy (or the network) changed: passes listed before decide again.
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    fn version(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }
}

/// How one claimed item's attempt ended, already recorded in the store.
enum Attempt {
    Sent,
    Retry,
    Offline,
    NeedsAttention,
    Paused(PauseScope),
    /// The row moved under the flush (it should not, while claimed): nothing recorded.
    Skipped,
}

/// The one mapping from UPN's errors to what the outbox state machine needs to know.
pub fn failure_of(error: &UpnError) -> SendFailure {
    let kind = match error {
        UpnError::Unauthorized => FailureKind::Account(AccountPause::CredentialsRejected),
        UpnError::IntegrationDisabled => FailureKind::Account(AccountPause::IntegrationDisabled),
        UpnError::ImageActionDisabled => FailureKind::Account(AccountPause::ImageActionDisabled),
        e if e.is_connectivity() => FailureKind::Connectivity,
        e if e.is_recoverable() => FailureKind::Recoverable,
        _ => FailureKind::Permanent,
    };
    SendFailure {
        kind,
        retry_after: error.retry_after(),
        code: OutboxReason::from_code(error.code()).unwrap_or(OutboxReason::Other),
        reason: error.to_string(),
    }
}

/// An image that cannot be rendered, as an error of the capture.
pub(crate) fn rendition_error(e: media::MediaError) -> Error {
    Error::invalid("capture", e.to_string())
}

/// A local problem preparing an upload: a full disk or a busy database is retried later; a file that cannot be
/// rendered, or is missing or damaged, needs a person. (The background renderer words a
/// rendition failure with this too, so it reads the same whoever found it.)
pub(crate) fn local_failure(e: &Error) -> SendFailure {
    let passing = match e {
        Error::Io { source, .. } => crate::error::is_disk_full(source),
        Error::Storage { disk_full, .. } => *disk_full,
        // Another writer held the database: as passing as a full disk, retried the same way.
        Error::Busy => true,
        _ => false,
    };
    if passing {
        SendFailure {
            kind: FailureKind::Recoverable,
            retry_after: Some(std::time::Duration::from_secs(5 * 60)),
            code: if matches!(e, Error::Busy) {
                OutboxReason::Other
            } else {
                OutboxReason::DiskFull
            },
            reason: e.to_string(),
        }
    } else {
        SendFailure {
            kind: FailureKind::Permanent,
            retry_after: None,
            code: OutboxReason::RenditionFailed,
            reason: format!("the capture could not be prepared for upload: {e}"),
        }
    }
}

/// Spreads retries of different items (and of one item's attempts) without a random source.
fn jitter(id: &str, attempts: u32) -> f64 {
    let digest = sha256_hex(format!("{id}/{attempts}").as_bytes());
    u16::from_str_radix(&digest[..4], 16).unwrap_or(0) as f64 / 65_536.0
}

/// A claimed item with its upload bytes made (or why they could not be).
struct Prepared {
    capture: Capture,
    upload: Result<Vec<u8>>,
}

/// What one pass was listed under: its deadline and what the data saver decided on.
#[derive(Debug, Clone, Copy)]
struct Pass {
    deadline: Option<tokio::time::Instant>,
    metered: bool,
    /// [`SaverInputs`]' change count when the list was made.
    version: u64,
}

/// A photo whose rendition, made after the due list was read, is larger than the size the
/// list was decided with (the original's).
fn grew(listed: &Capture, upload: &Result<Vec<u8>>) -> bool {
    listed.kind.is_photo()
        && listed.upload.is_none()
        && upload
            .as_ref()
            .is_ok_and(|bytes| bytes.len() as u64 > listed.bytes_to_send())
}

/// How long the flush waits for the niced background renderer's rendition of a photo it is
/// about to send before making its own: enough for a render under way on an idle phone (the
/// photo just taken at the door, so it is not rendered twice), little enough that a starved
/// renderer never holds an upload up for long.
pub const NICED_RENDER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

fn past(deadline: Option<tokio::time::Instant>) -> bool {
    deadline.is_some_and(|d| tokio::time::Instant::now() >= d)
}

impl<A: UpnApi> Flush<'_, A> {
    /// Sends whatever is due until nothing is, the device is offline, or `deadline` passes.
    pub async fn run(&self, deadline: Option<tokio::time::Instant>) -> Result<FlushReport> {
        let mut report = FlushReport::empty(FlushEnd::Done);
        // Nothing is in flight when a flush starts: a row left `sending` was cut short.
        lock(self.store)?.requeue_in_flight(self.clock.now())?;
        loop {
            // The data saver's photos are left out here: never claimed, no attempt counted.
            // (The version is read first: a change after it makes the pass decide again.)
            let version = self.saver.version();
            let metered = self.saver.metered();
            let due = lock(self.store)?.due_captures(self.clock.now(), metered)?;
            if due.is_empty() {
                return Ok(report);
            }
            if past(deadline) {
                report.ended = FlushEnd::Deadline;
                return Ok(report);
            }
            let pass = Pass {
                deadline,
                metered,
                version,
            };
            if self.pass(due, pass, &mut report).await? {
                return Ok(report);
            }
            // Loop: photos released by a POD just sent are due now; failures wait on backoff.
        }
    }

    /// One pass over a due list, pipelined: while one item uploads, the next is claimed and its
    /// upload prepared (rendered if not made yet), so at most the upload in flight and one
    /// prepared item are in memory. True when the pass ends the flush (offline, paused).
    async fn pass(&self, due: Vec<Capture>, pass: Pass, report: &mut FlushReport) -> Result<bool> {
        let deadline = pass.deadline;
        let mut due = std::collections::VecDeque::from(due);
        let mut images_paused = false;
        let mut next = self.prepare_next(&mut due, false, pass).await?;
        while let Some(current) = next.take() {
            if past(deadline) {
                self.release(&current.capture)?;
                report.ended = FlushEnd::Deadline;
                return Ok(true);
            }
            let (attempt, prepared) = match current.upload {
                Ok(bytes) => {
                    let (attempt, prepared) = tokio::join!(
                        self.deliver(&current.capture, bytes),
                        self.prepare_next(&mut due, images_paused, pass)
                    );
                    (attempt?, prepared?)
                }
                Err(e) => {
                    let attempt = self.record_prepare_failure(&current.capture, &e)?;
                    (
                        attempt,
                        self.prepare_next(&mut due, images_paused, pass).await?,
                    )
                }
            };
            next = prepared;
            match attempt {
                Attempt::Sent => report.sent += 1,
                Attempt::Retry => report.retrying += 1,
                Attempt::NeedsAttention => report.needs_attention += 1,
                Attempt::Skipped => {}
                Attempt::Offline => {
                    report.retrying += 1;
                    report.ended = FlushEnd::Offline;
                    self.release_prepared(next)?;
                    return Ok(true);
                }
                Attempt::Paused(scope) => {
                    report.paused += 1;
                    match scope {
                        // Every other request would be refused too.
                        PauseScope::Outbox => {
                            self.release_prepared(next)?;
                            return Ok(true);
                        }
                        PauseScope::Images => {
                            images_paused = true;
                            if next.as_ref().is_some_and(|p| p.capture.kind.is_photo()) {
                                self.release_prepared(next)?;
                                next = self.prepare_next(&mut due, true, pass).await?;
                            }
                        }
                    }
                }
            }
        }
        Ok(false)
    }

    /// Claims the next due item (`queued → sending`, only when it applies: the due list may be
    /// stale) and prepares its upload. `None` when nothing is left or the deadline passed.
    async fn prepare_next(
        &self,
        due: &mut std::collections::VecDeque<Capture>,
        images_paused: bool,
        pass: Pass,
    ) -> Result<Option<Prepared>> {
        while let Some(queued) = self.pick(due).await? {
            if past(pass.deadline) {
                return Ok(None);
            }
            if images_paused && queued.kind.is_photo() {
                continue;
            }
            if queued.kind.is_photo() && self.saver.version() != pass.version {
                // The network or the policy changed since the due list was made: the data
                // saver decides again over a new list (`run` loops), so no photo goes on the
                // wrong terms.
                return Ok(None);
            }
            failpoint::hit("outbox.before_claim");
            let Some(capture) = lock(self.store)?.claim(&queued.id, self.clock.now())? else {
                continue;
            };
            self.observer.capture_changed(&capture.id);
            failpoint::hit("outbox.after_claim");
            let upload = self.upload_bytes(&capture).await;
            if pass.metered && grew(&queued, &upload) {
                // Made just now and larger than the original the budget counted: released
                // (uncounted) and decided again with its real size.
                self.release(&capture)?;
                return Ok(None);
            }
            return Ok(Some(Prepared { capture, upload }));
        }
        Ok(None)
    }

    /// Takes the next item to send off the due list: the first, unless it is a photo whose
    /// rendition is not made and an assistant is rendering ahead. Then the first ready item
    /// (a POD, or a photo whose rendition is made) goes ahead of it; with none ready, it is
    /// taken once the assistant is done with it (or at once, when nobody or the niced
    /// renderer is making it: then the flush renders it).
    async fn pick(&self, due: &mut std::collections::VecDeque<Capture>) -> Result<Option<Capture>> {
        let Some(first) = due.front() else {
            return Ok(None);
        };
        if !self.assisted || !first.kind.is_photo() || first.upload.is_some() {
            return Ok(due.pop_front());
        }
        let first_id = first.id.clone();
        let ready = lock(self.store)?.rendered_queued_photo_ids()?;
        if !ready.contains(&first_id) {
            let ahead = due
                .iter()
                .position(|c| !c.kind.is_photo() || c.upload.is_some() || ready.contains(&c.id));
            if let Some(ready_one) = ahead.and_then(|i| due.remove(i)) {
                return Ok(Some(ready_one));
            }
            if self.renders.holder(&first_id) == Some(Claimant::Assist) {
                self.wait_for_assistant(&first_id).await;
            }
        }
        Ok(due.pop_front())
    }

    /// Until the assistant is done with `id` (it renders at normal priority, already under way).
    async fn wait_for_assistant(&self, id: &str) {
        failpoint::hit("outbox.waits_for_assistant");
        self.renders.released_by(id, Claimant::Assist).await;
    }

    /// A claimed item whose request never left: queued again, its claim uncounted.
    fn release(&self, capture: &Capture) -> Result<()> {
        let outcome =
            lock(self.store)?.apply_event(&capture.id, &Event::Release, self.clock.now())?;
        if matches!(outcome, Outcome::Applied(_)) {
            self.observer.capture_changed(&capture.id);
        }
        Ok(())
    }

    fn release_prepared(&self, prepared: Option<Prepared>) -> Result<()> {
        match prepared {
            Some(p) => self.release(&p.capture),
            None => Ok(()),
        }
    }

    /// Preparing the upload failed: recorded as the state machine decides (nothing was sent).
    fn record_prepare_failure(&self, capture: &Capture, e: &Error) -> Result<Attempt> {
        tracing::warn!(capture = %capture.id, error = %e, "could not prepare an upload");
        let failure = local_failure(e);
        let event = Event::PrepareFailed {
            failure: &failure,
            jitter: jitter(&capture.id, capture.attempts),
        };
        self.record_failure(capture, &failure, &event)
    }

    /// Sends one claimed, prepared capture. The outer `Result` is a local failure (storage);
    /// the inner outcome with UPN is already recorded.
    async fn deliver(&self, capture: &Capture, upload: Vec<u8>) -> Result<Attempt> {
        let (metered_before, bytes) = (self.saver.metered(), upload.len() as u64);
        let result = match capture.kind {
            CaptureKind::Pod => {
                let pod = self.pod_body(capture, &upload)?;
                let sent = (sha256_hex(&upload), upload.len() as u64);
                self.send_pod(capture, &pod, sent).await
            }
            _ => self.send_photo(capture, upload).await,
        };
        failpoint::hit("outbox.after_upload_before_mark");
        match result {
            Ok(reference) => {
                // Over a metered network if it was one when the request left or answered.
                let metered = metered_before || self.saver.metered();
                self.record_sent(capture, &reference, metered.then_some(bytes))
            }
            Err(failure) => {
                tracing::info!(capture = %capture.id, barcode = %capture.barcode, error = %failure.reason, "send failed");
                let event = Event::Failed {
                    failure: &failure,
                    jitter: jitter(&capture.id, capture.attempts),
                };
                self.record_failure(capture, &failure, &event)
            }
        }
    }

    /// UPN has it: the row becomes sent (its photos released), and a pause it proves over lifts.
    fn record_sent(
        &self,
        capture: &Capture,
        reference: &str,
        metered_bytes: Option<u64>,
    ) -> Result<Attempt> {
        let now = self.clock.now();
        let mut store = lock(self.store)?;
        let Some(released) = store.mark_sent(&capture.id, now, reference, metered_bytes)? else {
            tracing::warn!(capture = %capture.id, "a claimed capture moved while it was sent");
            return Ok(Attempt::Skipped);
        };
        let pauses = store.outbox_pauses()?;
        for scope in pauses.lifted_by_success(capture.kind) {
            tracing::info!(
                ?scope,
                "UPN accepted a request again: the outbox pause is lifted"
            );
            store.set_outbox_pause(scope, None)?;
        }
        drop(store);
        self.observer.capture_changed(&capture.id);
        for id in &released {
            self.observer.capture_changed(id);
        }
        Ok(Attempt::Sent)
    }

    /// Records a failed attempt as the state machine decides; an account refusal also pauses
    /// the outbox (or its photos), with a growing probe interval.
    fn record_failure(
        &self,
        capture: &Capture,
        failure: &SendFailure,
        event: &Event<'_>,
    ) -> Result<Attempt> {
        let now = self.clock.now();
        let mut store = lock(self.store)?;
        if !matches!(
            store.apply_event(&capture.id, event, now)?,
            Outcome::Applied(_)
        ) {
            tracing::warn!(capture = %capture.id, "a claimed capture moved while it was sent");
            return Ok(Attempt::Skipped);
        }
        let outcome = match failure.kind {
            FailureKind::Recoverable => Attempt::Retry,
            FailureKind::Connectivity => Attempt::Offline,
            FailureKind::Permanent => Attempt::NeedsAttention,
            FailureKind::Account(reason) => {
                let scope = reason.scope();
                let pauses = store.outbox_pauses()?;
                let pause = Pause::after_refusal(
                    pauses.get(scope),
                    reason,
                    &failure.reason,
                    now,
                    jitter(scope_name(scope), capture.attempts),
                );
                store.set_outbox_pause(scope, Some(&pause))?;
                Attempt::Paused(scope)
            }
        };
        drop(store);
        self.observer.capture_changed(&capture.id);
        Ok(outcome)
    }

    /// The upload rendition, made now (off the capture path) if it is not made yet. Another
    /// maker's rendition under way is waited for: the assistant's (normal priority) until it is
    /// done, the niced background renderer's for at most [`NICED_RENDER_PATIENCE`]: under CPU
    /// pressure it may be starved, and the upload must not stall behind it. Past that the flush
    /// renders the photo too, at normal priority, and the first rendition published is the one
    /// uploaded (`RenderClaims::publish`). The flush's own claim keeps the others from starting
    /// it.
    async fn upload_bytes(&self, capture: &Capture) -> Result<Vec<u8>> {
        if let Some(upload) = &capture.upload {
            return self.blobs.read_verified(&upload.name, &upload.sha256);
        }
        let mut claim = self.renders.try_claim(&capture.id, Claimant::Flush);
        let mut waited_for_renderer = false;
        while claim.is_none() {
            match self.renders.holder(&capture.id) {
                Some(Claimant::Assist) => self.wait_for_assistant(&capture.id).await,
                Some(Claimant::Background) if !waited_for_renderer => {
                    waited_for_renderer = true;
                    failpoint::hit("outbox.waits_for_renderer");
                    let done = self.renders.released_by(&capture.id, Claimant::Background);
                    let _in_time = tokio::time::timeout(NICED_RENDER_PATIENCE, done).await;
                }
                // The niced renderer is still on it after the wait: made here too.
                _ => break,
            }
            let made = lock(self.store)?
                .capture(&capture.id)?
                .and_then(|c| c.upload);
            if let Some(upload) = made {
                return self.blobs.read_verified(&upload.name, &upload.sha256);
            }
            claim = self.renders.try_claim(&capture.id, Claimant::Flush);
        }
        let _claim = claim;
        let original = self
            .blobs
            .read_verified(&capture.original.name, &capture.original.sha256)?;
        let limits = self.media;
        let kind = capture.kind;
        let rendition = tokio::task::spawn_blocking(move || match kind {
            CaptureKind::Pod => media::signature_rendition(&original, &limits),
            _ => media::photo_rendition(original, &limits),
        })
        .await
        .map_err(|_| Error::Storage {
            reason: "preparing an upload was interrupted".into(),
            disk_full: false,
        })?
        .map_err(rendition_error)?;
        failpoint::hit("outbox.rendition_made");
        let published = self.renders.publish(
            self.store,
            self.blobs,
            &capture.id,
            &rendition.bytes,
            Maker::Flush,
        )?;
        match published {
            Published::Won(_) => Ok(rendition.bytes),
            // The renderer's was recorded first: upload that file, which the row names.
            Published::Lost(blob) => self.blobs.read_verified(&blob.name, &blob.sha256),
            Published::Refused => Err(Error::Storage {
                reason: "the capture changed while its upload was prepared".into(),
                disk_full: false,
            }),
        }
    }

    /// The POD body. Every field comes from the stored row, and `image_count` is frozen at
    /// the first attempt, so every request under this idempotency key carries the same bytes.
    fn pod_body(&self, capture: &Capture, png: &[u8]) -> Result<PodSubmission> {
        let (image_count, pod_sha256) = match capture.pod_image_count {
            Some(n) => (n, capture.pod_sha256.clone()),
            None => {
                let mut store = lock(self.store)?;
                // Photos known now; more may follow after the POD (the count is informational,
                // and the hash covers these).
                let content = capture.pod_content(&store.captures_of(&capture.barcode)?);
                let known = u32::try_from(content.photos.len()).unwrap_or(u32::MAX);
                let manifest = content.manifest();
                let hash = pod_hash::hash_manifest(&manifest);
                store
                    .freeze_pod_body(&capture.id, known, Some((&hash, &manifest)))?
                    .unwrap_or((known, Some(hash)))
            }
        };
        Ok(PodSubmission {
            signed_by: capture.signed_by.clone().unwrap_or_default(),
            signed_at: capture.captured_at,
            clock_offset_ms: capture.clock_offset_ms,
            gps: capture.fix.map(|f| WireGpsFix {
                lat: f.fix.lat(),
                lon: f.fix.lon(),
                accuracy_m: f.fix.accuracy_m,
                fix_at: f.fix.fix_at,
            }),
            signature_png_base64: base64::engine::general_purpose::STANDARD.encode(png),
            image_count,
            pod_sha256,
        })
    }

    /// `sent` is the signature PNG's (sha256, size): UPN's receipt is checked against it when
    /// UPN reports what it stored.
    async fn send_pod(
        &self,
        capture: &Capture,
        pod: &PodSubmission,
        sent: (String, u64),
    ) -> std::result::Result<String, SendFailure> {
        let total = sent.1;
        self.observer.progress(capture, 0, total);
        let receipt = self
            .api
            .submit_pod(&capture.barcode, &capture.id, pod)
            .await
            .map_err(|e| failure_of(&e))?;
        self.observer.progress(capture, total, total);
        if let (Some(sha256), Some(bytes)) = (&receipt.signature_sha256, receipt.signature_bytes) {
            check_receipt(Receipted::Signature, &sent.0, sent.1, sha256, bytes)?;
        }
        check_pod_hash_receipt(pod.pod_sha256.as_deref(), receipt.pod_sha256.as_deref())?;
        Ok(receipt.pod_reference)
    }

    async fn send_photo(
        &self,
        capture: &Capture,
        jpeg: Vec<u8>,
    ) -> std::result::Result<String, SendFailure> {
        let query = ImageQuery {
            kind: capture.kind.code().to_string(),
            captured_at: capture.captured_at,
            lat: capture.fix.map(|f| f.fix.lat()),
            lon: capture.fix.map(|f| f.fix.lon()),
            accuracy_m: capture.fix.map(|f| f.fix.accuracy_m),
        };
        let (sha256, bytes) = (sha256_hex(&jpeg), jpeg.len() as u64);
        let progress = self.progress_callback(capture);
        let receipt = self
            .api
            .upload_image(&capture.barcode, &capture.id, &query, jpeg, progress)
            .await
            .map_err(|e| failure_of(&e))?;
        check_receipt(
            Receipted::Photo,
            &sha256,
            bytes,
            &receipt.sha256,
            receipt.bytes,
        )?;
        Ok(receipt.image_reference)
    }

    fn progress_callback(&self, capture: &Capture) -> Progress {
        let observer = self.observer.clone();
        let capture = capture.clone();
        Arc::new(move |sent, total| {
            observer.progress(&capture, sent, total);
            if sent > 0 && sent < total {
                failpoint::hit("outbox.mid_upload");
            }
        })
    }
}

fn scope_name(scope: PauseScope) -> &'static str {
    match scope {
        PauseScope::Outbox => "outbox",
        PauseScope::Images => "images",
    }
}

/// Time until `at`, for scheduling the next pass.
pub fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> std::time::Duration {
    (at - now).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upn_errors_map_to_send_failures_in_one_place() {
        let kind = |e: UpnError| failure_of(&e).kind;
        assert_eq!(
            kind(UpnError::Unauthorized),
            FailureKind::Account(AccountPause::CredentialsRejected)
        );
        assert_eq!(
            kind(UpnError::IntegrationDisabled),
            FailureKind::Account(AccountPause::IntegrationDisabled)
        );
        assert_eq!(
            kind(UpnError::ImageActionDisabled),
            FailureKind::Account(AccountPause::ImageActionDisabled)
        );
        assert_eq!(kind(UpnError::Timeout), FailureKind::Connectivity);
        assert_eq!(
            kind(UpnError::RateLimited { retry_after: None }),
            FailureKind::Recoverable
        );
        for permanent in [
            UpnError::AlreadyDelivered,
            UpnError::TooLarge,
            UpnError::Invalid {
                status: 400,
                message: "bad".into(),
            },
        ] {
            assert_eq!(kind(permanent), FailureKind::Permanent);
        }
        let limited = UpnError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(7)),
        };
        assert_eq!(
            failure_of(&limited).retry_after,
            Some(std::time::Duration::from_secs(7))
        );
    }
}
