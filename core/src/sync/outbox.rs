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
//! The caller holds the outbox gate: one flush at a time.

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

/// A local problem preparing an upload: a full disk is retried later; a file that cannot be
/// rendered, or is missing or damaged, needs a person.
fn local_failure(e: &Error) -> SendFailure {
    let disk_full = match e {
        Error::Io { source, .. } => crate::error::is_disk_full(source),
        Error::Storage { disk_full, .. } => *disk_full,
        _ => false,
    };
    if disk_full {
        SendFailure {
            kind: FailureKind::Recoverable,
            retry_after: Some(std::time::Duration::from_secs(5 * 60)),
            code: OutboxReason::DiskFull,
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

impl<A: UpnApi> Flush<'_, A> {
    /// Sends whatever is due until nothing is, the device is offline, or `deadline` passes.
    pub async fn run(&self, deadline: Option<tokio::time::Instant>) -> Result<FlushReport> {
        let mut report = FlushReport::empty(FlushEnd::Done);
        // Nothing is in flight when a flush starts: a row left `sending` was cut short.
        lock(self.store)?.requeue_in_flight(self.clock.now())?;
        loop {
            let due = lock(self.store)?.due_captures(self.clock.now())?;
            if due.is_empty() {
                return Ok(report);
            }
            let mut images_paused = false;
            for queued in due {
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    report.ended = FlushEnd::Deadline;
                    return Ok(report);
                }
                if images_paused && queued.kind.is_photo() {
                    continue;
                }
                failpoint::hit("outbox.before_claim");
                // The due list may be stale: only a claim that applies lets the item go.
                let Some(capture) = lock(self.store)?.claim(&queued.id, self.clock.now())? else {
                    continue;
                };
                self.observer.capture_changed(&capture.id);
                failpoint::hit("outbox.after_claim");
                match self.send(&capture).await? {
                    Attempt::Sent => report.sent += 1,
                    Attempt::Retry => report.retrying += 1,
                    Attempt::NeedsAttention => report.needs_attention += 1,
                    Attempt::Skipped => {}
                    Attempt::Offline => {
                        report.retrying += 1;
                        report.ended = FlushEnd::Offline;
                        return Ok(report);
                    }
                    Attempt::Paused(scope) => {
                        report.paused += 1;
                        match scope {
                            // Every other request would be refused too.
                            PauseScope::Outbox => return Ok(report),
                            PauseScope::Images => images_paused = true,
                        }
                    }
                }
            }
            // Loop: photos released by a POD just sent are due now; failures wait on backoff.
        }
    }

    /// Sends one claimed capture. The outer `Result` is a local failure (storage); the inner
    /// outcome with UPN is already recorded.
    async fn send(&self, capture: &Capture) -> Result<Attempt> {
        let upload = match self.upload_bytes(capture).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(capture = %capture.id, error = %e, "could not prepare an upload");
                let failure = local_failure(&e);
                let event = Event::PrepareFailed {
                    failure: &failure,
                    jitter: jitter(&capture.id, capture.attempts),
                };
                return self.record_failure(capture, &failure, &event);
            }
        };
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
            Ok(reference) => self.record_sent(capture, &reference),
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
    fn record_sent(&self, capture: &Capture, reference: &str) -> Result<Attempt> {
        let now = self.clock.now();
        let mut store = lock(self.store)?;
        let Some(released) = store.mark_sent(&capture.id, now, reference)? else {
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

    /// The upload rendition, made now (off the capture path) if it is not made yet.
    async fn upload_bytes(&self, capture: &Capture) -> Result<Vec<u8>> {
        if let Some(upload) = &capture.upload {
            return self.blobs.read_verified(&upload.name, &upload.sha256);
        }
        let original = self
            .blobs
            .read_verified(&capture.original.name, &capture.original.sha256)?;
        let limits = self.media;
        let kind = capture.kind;
        let rendition = tokio::task::spawn_blocking(move || match kind {
            CaptureKind::Pod => media::signature_rendition(&original, &limits),
            _ => media::photo_rendition(&original, &limits),
        })
        .await
        .map_err(|_| Error::Storage {
            reason: "preparing an upload was interrupted".into(),
            disk_full: false,
        })?
        .map_err(|e| Error::invalid("capture", e.to_string()))?;
        let name = format!("{}.upload", capture.id);
        let blob = self.blobs.write(&name, &rendition.bytes)?;
        lock(self.store)?.set_upload_rendition(&capture.id, &blob)?;
        Ok(rendition.bytes)
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
