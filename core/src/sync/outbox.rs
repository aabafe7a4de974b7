//! The flush: sends due PODs and photos to UPN, following the outbox state machine in
//! `domain::outbox`. Per consignment the POD goes first; its photos are released in the same
//! transaction that records the POD as sent, and go after it. Every request carries the
//! capture's id as its idempotency key, so whatever was cut short is simply sent again.
//!
//! The caller holds the outbox gate: one flush at a time.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::digest::sha256_hex;
use crate::domain::outbox::{on_failure, CaptureKind, FailureDecision};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::media::{self, MediaLimits};
use crate::store::blobs::Blobs;
use crate::store::captures::Capture;
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
    /// Nothing is due any more (items may wait on a backoff or for attention).
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
    pub ended: FlushEnd,
}

pub struct Flush<'a, A: UpnApi> {
    pub api: &'a A,
    pub store: &'a Mutex<Store>,
    pub blobs: &'a Blobs,
    pub clock: &'a dyn Clock,
    pub media: MediaLimits,
    pub observer: Arc<dyn FlushObserver>,
}

/// A failed send, already recorded in the store.
enum Failed {
    Retry,
    Offline,
    NeedsAttention,
}

/// Spreads retries of different items (and of one item's attempts) without a random source.
fn jitter(id: &str, attempts: u32) -> f64 {
    let digest = sha256_hex(format!("{id}/{attempts}").as_bytes());
    u16::from_str_radix(&digest[..4], 16).unwrap_or(0) as f64 / 65_536.0
}

impl<A: UpnApi> Flush<'_, A> {
    /// Sends whatever is due until nothing is, the device is offline, or `deadline` passes.
    pub async fn run(&self, deadline: Option<tokio::time::Instant>) -> Result<FlushReport> {
        let mut report = FlushReport {
            sent: 0,
            retrying: 0,
            needs_attention: 0,
            ended: FlushEnd::Done,
        };
        // Nothing is in flight when a flush starts: a row left `sending` was cut short.
        lock(self.store)?.requeue_in_flight()?;
        loop {
            let due = lock(self.store)?.due_captures(self.clock.now())?;
            if due.is_empty() {
                return Ok(report);
            }
            for capture in due {
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    report.ended = FlushEnd::Deadline;
                    return Ok(report);
                }
                match self.send(&capture).await? {
                    Ok(()) => report.sent += 1,
                    Err(Failed::Retry) => report.retrying += 1,
                    Err(Failed::NeedsAttention) => report.needs_attention += 1,
                    Err(Failed::Offline) => {
                        report.retrying += 1;
                        report.ended = FlushEnd::Offline;
                        return Ok(report);
                    }
                }
            }
            // Loop: photos released by a POD just sent are due now; failures wait on backoff.
        }
    }

    /// Sends one capture. The outer `Result` is a local failure (storage); the inner one the
    /// outcome with UPN, already recorded.
    async fn send(&self, capture: &Capture) -> Result<std::result::Result<(), Failed>> {
        let upload = match self.upload_bytes(capture).await {
            Ok(bytes) => bytes,
            // One capture's local problem never blocks the others: a full disk is retried
            // later; a file that cannot be rendered, or is missing or damaged, needs a person.
            Err(e) => {
                let disk_full = match &e {
                    Error::Io { source, .. } => crate::error::is_disk_full(source),
                    Error::Storage { disk_full, .. } => *disk_full,
                    _ => false,
                };
                let now = self.clock.now();
                let decision = if disk_full {
                    FailureDecision::Retry {
                        at: now + chrono::Duration::minutes(5),
                    }
                } else {
                    FailureDecision::NeedsAttention {
                        reason: format!("the capture could not be prepared for upload: {e}"),
                    }
                };
                tracing::warn!(capture = %capture.id, error = %e, "could not prepare an upload");
                lock(self.store)?.mark_failed(&capture.id, &decision, &e.to_string())?;
                self.observer.capture_changed(&capture.id);
                return Ok(Err(if disk_full {
                    Failed::Retry
                } else {
                    Failed::NeedsAttention
                }));
            }
        };

        lock(self.store)?.mark_sending(&capture.id)?;
        self.observer.capture_changed(&capture.id);
        let attempts = capture.attempts + 1;

        let result = match capture.kind {
            CaptureKind::Pod => self.send_pod(capture, upload).await,
            _ => self.send_photo(capture, upload).await,
        };
        failpoint::hit("outbox.after_upload_before_mark");

        let now = self.clock.now();
        match result {
            Ok(reference) => {
                let released = lock(self.store)?.mark_sent(&capture.id, now, &reference)?;
                self.observer.capture_changed(&capture.id);
                for id in &released {
                    self.observer.capture_changed(id);
                }
                Ok(Ok(()))
            }
            Err(error) => {
                let decision = on_failure(&error, attempts, now, jitter(&capture.id, attempts));
                tracing::info!(capture = %capture.id, barcode = %capture.barcode, error = %error, "send failed");
                lock(self.store)?.mark_failed(&capture.id, &decision, &error.to_string())?;
                self.observer.capture_changed(&capture.id);
                Ok(Err(match decision {
                    FailureDecision::Retry { .. } => Failed::Retry,
                    FailureDecision::Offline { .. } => Failed::Offline,
                    FailureDecision::NeedsAttention { .. } => Failed::NeedsAttention,
                }))
            }
        }
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

    async fn send_pod(
        &self,
        capture: &Capture,
        png: Vec<u8>,
    ) -> std::result::Result<String, UpnError> {
        // Photos known now; more may follow after the POD (the count is informational).
        let image_count = lock(self.store)
            .and_then(|s| s.captures_of(&capture.barcode))
            .map(|all| {
                all.iter()
                    .filter(|c| c.kind.is_photo() && c.state.is_live())
                    .count()
            })
            .unwrap_or(0);
        let image_count = u32::try_from(image_count).unwrap_or(u32::MAX);
        let pod = PodSubmission {
            signed_by: capture.signed_by.clone().unwrap_or_default(),
            signed_at: capture.captured_at,
            clock_offset_ms: capture.clock_offset_ms,
            gps: capture.fix.map(|f| WireGpsFix {
                lat: f.fix.lat(),
                lon: f.fix.lon(),
                accuracy_m: f.fix.accuracy_m,
                fix_at: f.fix.fix_at,
            }),
            signature_png_base64: base64::engine::general_purpose::STANDARD.encode(&png),
            image_count,
        };
        let total = png.len() as u64;
        self.observer.progress(capture, 0, total);
        let receipt = self
            .api
            .submit_pod(&capture.barcode, &capture.id, &pod)
            .await?;
        self.observer.progress(capture, total, total);
        Ok(receipt.pod_reference)
    }

    async fn send_photo(
        &self,
        capture: &Capture,
        jpeg: Vec<u8>,
    ) -> std::result::Result<String, UpnError> {
        let query = ImageQuery {
            kind: capture.kind.code().to_string(),
            captured_at: capture.captured_at,
            lat: capture.fix.map(|f| f.fix.lat()),
            lon: capture.fix.map(|f| f.fix.lon()),
            accuracy_m: capture.fix.map(|f| f.fix.accuracy_m),
        };
        let progress = self.progress_callback(capture);
        let receipt = self
            .api
            .upload_image(&capture.barcode, &capture.id, &query, jpeg, progress)
            .await?;
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

/// Seconds until `at`, for scheduling the next pass.
pub fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> std::time::Duration {
    (at - now).to_std().unwrap_or_default()
}
