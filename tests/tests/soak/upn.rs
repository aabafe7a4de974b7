//! The in-process UPN: the simulator's state (`upn_sim::state::SimState`) behind the core's
//! object-safe `DynUpnApi`, with the simulator's seeded faults, and no sockets. This is the
//! only module that touches simulator types; it talks to the core through JSON bytes and the
//! client's own reading (`http::parse_json`, `http::refusal_of`), so the core's real parse
//! paths run.
//!
//! It also records what the invariants need: every attempt per idempotency key (with the step
//! and a digest of its body), and the tracking batches delivered intact to the device.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use upn_core::clock::{Clock, ManualClock};
use upn_core::digest::sha256_hex;
use upn_core::upn::http::{parse_json, parse_retry_after, refusal_of, with_barcode};
use upn_core::upn::wire::{
    code, ConsignmentFeed, ErrorBody, ErrorDetail, ImageQuery, ImageReceipt, PodReceipt,
    PodSubmission,
};
use upn_core::upn::{ApiKey, BoxFuture, DynUpnApi, Progress, RawTrackingResponse, UpnError};
use upn_sim::state::{ImageUpload, Refusal, SimState};
use upn_sim::{Access, FaultKind, FaultSpec, NewEvent, Received, Route};

pub const DEPOT: &str = "042";
pub const KEY: &str = "soak-key";

/// One request that carried an idempotency key.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub step: usize,
    pub key: String,
    pub route: &'static str,
    /// sha256 of what identifies the body: the POD JSON without its per-attempt nothing (the
    /// whole JSON), or the image bytes.
    pub body: String,
}

/// A tracking batch UPN handed out and the device received whole.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub step: usize,
    pub body_sha256: String,
    pub event_ids: Vec<String>,
}

#[derive(Default)]
pub struct Log {
    pub attempts: Vec<Attempt>,
    pub delivered: Vec<Delivered>,
    pub faults: BTreeMap<&'static str, u64>,
    /// 409 `pod_required`: an image sent before UPN had its POD.
    pub pod_required: u32,
}

pub struct InProcessUpn {
    state: Mutex<SimState>,
    clock: Arc<ManualClock>,
    online: AtomicBool,
    step: AtomicU64,
    pub log: Mutex<Log>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl InProcessUpn {
    pub fn new(seed: u64, stops: usize, clock: Arc<ManualClock>, today: NaiveDate) -> Self {
        let access = Access {
            integration_enabled: true,
            tracking_enabled: true,
            images_enabled: true,
        };
        Self {
            state: Mutex::new(SimState::new(
                seed,
                stops,
                DEPOT,
                FaultSpec::none(),
                access,
                today,
            )),
            clock,
            online: AtomicBool::new(true),
            step: AtomicU64::new(0),
            log: Mutex::new(Log::default()),
        }
    }

    pub fn set_step(&self, step: usize) {
        self.step.store(step as u64, Ordering::SeqCst);
    }

    fn step(&self) -> usize {
        self.step.load(Ordering::SeqCst) as usize
    }

    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::SeqCst);
    }

    pub fn set_faults(&self, spec: &str) {
        let spec: FaultSpec = spec.parse().unwrap_or_else(|_| FaultSpec::none());
        lock(&self.state).faults.set(spec);
    }

    pub fn set_images_enabled(&self, on: bool) {
        lock(&self.state).access.images_enabled = on;
    }

    pub fn barcodes(&self) -> Vec<String> {
        lock(&self.state)
            .open_consignments()
            .into_iter()
            .map(|c| c.barcode)
            .collect()
    }

    /// Pallet barcodes of a consignment (open ones only).
    pub fn pallets(&self, barcode: &str) -> Vec<String> {
        lock(&self.state)
            .open_consignments()
            .into_iter()
            .find(|c| c.barcode == barcode)
            .map(|c| c.pallets.into_iter().map(|p| p.barcode).collect())
            .unwrap_or_default()
    }

    pub fn cancel(&self, barcode: &str) -> bool {
        lock(&self.state).cancel(barcode, Some("soak"), self.clock.now())
    }

    pub fn update(&self, barcode: &str, text: &str) -> bool {
        lock(&self.state).update_instructions(barcode, Some(text), self.clock.now())
    }

    /// Queues an event; `at`: a time in the past for a late, out-of-order event.
    pub fn push_event(
        &self,
        barcode: &str,
        pallet: Option<String>,
        stage: &str,
        at: Option<DateTime<Utc>>,
    ) {
        let event = NewEvent {
            barcode: barcode.to_string(),
            capture_type: if pallet.is_some() { "P" } else { "C" }.into(),
            pallet,
            stage: stage.to_string(),
            at,
        };
        lock(&self.state).push_events(vec![event], self.clock.now());
    }

    /// Whether a consignment is cancelled at UPN (open_consignments lists only open ones).
    pub fn is_open(&self, barcode: &str) -> bool {
        lock(&self.state)
            .open_consignments()
            .iter()
            .any(|c| c.barcode == barcode)
    }

    pub fn received(&self) -> Received {
        lock(&self.state).received()
    }

    /// Every fault drawn and counted by kind; `None` when the device is offline.
    fn begin(
        &self,
        route: Route,
        barcode: &str,
        key: Option<&str>,
    ) -> Result<Option<FaultKind>, UpnError> {
        if !self.online.load(Ordering::SeqCst) {
            return Err(UpnError::Unreachable {
                reason: "could not connect (simulated: no signal)".into(),
            });
        }
        let mut state = lock(&self.state);
        if let Some(key) = key {
            state.count_attempt(route, barcode, key);
        }
        let fault = state.faults.decide(route);
        if let Some(kind) = fault {
            *lock(&self.log).faults.entry(kind.name()).or_default() += 1;
        }
        Ok(fault)
    }

    /// The response as the client would read it: status and body through the client's code.
    fn answer(
        &self,
        route: Route,
        barcode: Option<&str>,
        fault: Option<FaultKind>,
        handled: impl FnOnce(&mut SimState, DateTime<Utc>) -> Result<(u16, Vec<u8>), Refusal>,
    ) -> Result<Vec<u8>, UpnError> {
        let now = self.clock.now();
        let retry = |s: &str| parse_retry_after(s, now);
        match fault {
            Some(FaultKind::Drop) => {
                return Err(UpnError::Unreachable {
                    reason: "the connection was closed (simulated)".into(),
                })
            }
            Some(kind @ (FaultKind::Status500 | FaultKind::Status503 | FaultKind::Status429)) => {
                let (status, c, after) = match kind {
                    FaultKind::Status503 => (503, code::UNAVAILABLE, retry("1")),
                    FaultKind::Status429 => (429, code::RATE_LIMITED, retry("1")),
                    _ => (500, code::INTERNAL, None),
                };
                let body = error_json(now, c, "injected fault");
                return Err(refusal(status, &body, after));
            }
            Some(FaultKind::Slow) => self.clock.advance(chrono::Duration::seconds(2)),
            _ => {}
        }
        let result = {
            let mut state = lock(&self.state);
            let result = handled(&mut state, now);
            if let Err(r) = &result {
                state.record_rejection(route, barcode, r);
            }
            result
        };
        let (status, body) = match result {
            Ok(ok) => ok,
            Err(r) => {
                if r.code == code::POD_REQUIRED {
                    lock(&self.log).pod_required += 1;
                }
                (r.status, error_json(now, r.code, &r.message))
            }
        };
        match fault {
            Some(FaultKind::LostResponse) => {
                return Err(UpnError::Unreachable {
                    reason: "the connection was closed before the answer (simulated)".into(),
                })
            }
            Some(FaultKind::Truncate) => {
                return Err(UpnError::BadResponse {
                    reason: "the connection broke while reading the response".into(),
                })
            }
            _ => {}
        }
        let body = if fault == Some(FaultKind::Garbage) {
            garbage(now)
        } else {
            body
        };
        if !(200..300).contains(&status) {
            let e = refusal(status, &body, None);
            return Err(match barcode {
                Some(b) => with_barcode(e, b),
                None => e,
            });
        }
        Ok(body)
    }

    fn note_attempt(&self, route: &'static str, key: &str, body: &[u8]) {
        lock(&self.log).attempts.push(Attempt {
            step: self.step(),
            key: key.to_string(),
            route,
            body: sha256_hex(body),
        });
    }
}

fn refusal(status: u16, body: &[u8], retry_after: Option<Duration>) -> UpnError {
    let status =
        reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    refusal_of(status, Some(body), retry_after, &ApiKey::new(KEY))
}

/// What the simulator would send: its JSON (serialising these types cannot fail).
macro_rules! to_json {
    ($v:expr) => {
        serde_json::to_vec($v).unwrap_or_default()
    };
}

fn error_json(now: DateTime<Utc>, code: &str, message: &str) -> Vec<u8> {
    to_json!(&ErrorBody {
        server_time: now,
        error: ErrorDetail {
            code: code.to_string(),
            message: message.to_string(),
        },
    })
}

/// The simulator's garbage body: 200 JSON cut off, with stray bytes.
fn garbage(now: DateTime<Utc>) -> Vec<u8> {
    let mut body = format!(
        "{{\"server_time\":\"{}\",\"events\":[{{\"id\":\"EV0",
        now.to_rfc3339()
    )
    .into_bytes();
    body.extend_from_slice(b"\x00\xff\xfe<html>502 Bad Gateway</html>");
    body
}

impl DynUpnApi for InProcessUpn {
    fn fetch_consignments<'a>(
        &'a self,
        since: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ConsignmentFeed, UpnError>> {
        Box::pin(async move {
            let fault = self.begin(Route::Consignments, "", None)?;
            let body = self.answer(Route::Consignments, None, fault, |s, now| {
                Ok((200, to_json!(&s.feed(since, now)?)))
            })?;
            parse_json::<ConsignmentFeed>(&body)
        })
    }

    fn take_tracking_batch(
        &self,
        max_events: u32,
    ) -> BoxFuture<'_, Result<RawTrackingResponse, UpnError>> {
        Box::pin(async move {
            let fault = self.begin(Route::Events, "", None)?;
            let mut ids = Vec::new();
            let out = self.answer(Route::Events, None, fault, |s, now| {
                let batch = s.take_batch(u64::from(max_events), now);
                ids = batch.events.iter().map(|e| e.id.clone()).collect();
                Ok((200, to_json!(&batch)))
            });
            // Garbage parses as neither: the device stores it, marked failed; the real batch
            // is gone (UPN hands each batch out once), as over HTTP.
            let body = out?;
            if fault != Some(FaultKind::Garbage) && !ids.is_empty() {
                lock(&self.log).delivered.push(Delivered {
                    step: self.step(),
                    body_sha256: sha256_hex(&body),
                    event_ids: ids,
                });
            }
            Ok(RawTrackingResponse {
                body,
                server_time: Some(self.clock.now()),
            })
        })
    }

    fn submit_pod<'a>(
        &'a self,
        barcode: &'a str,
        idempotency_key: &'a str,
        pod: &'a PodSubmission,
    ) -> BoxFuture<'a, Result<PodReceipt, UpnError>> {
        Box::pin(async move {
            let json = to_json!(pod);
            let fault = self.begin(Route::Pod, barcode, Some(idempotency_key))?;
            self.note_attempt("pod", idempotency_key, &json);
            let body = self.answer(Route::Pod, Some(barcode), fault, |s, now| {
                // The simulator reads the client's bytes with its own types, as over HTTP
                // (an unknown field is its 400).
                let pod: upn_sim::wire::PodSubmission = serde_json::from_slice(&json)
                    .map_err(|e| Refusal::invalid(format!("the POD body: {e}")))?;
                let (status, receipt) = s.submit_pod(barcode, idempotency_key, &pod, now)?;
                Ok((status, to_json!(&receipt)))
            })?;
            parse_json::<PodReceipt>(&body)
        })
    }

    fn upload_image<'a>(
        &'a self,
        barcode: &'a str,
        idempotency_key: &'a str,
        query: &'a ImageQuery,
        jpeg: Vec<u8>,
        progress: Progress,
    ) -> BoxFuture<'a, Result<ImageReceipt, UpnError>> {
        Box::pin(async move {
            let fault = self.begin(Route::Image, barcode, Some(idempotency_key))?;
            self.note_attempt("image", idempotency_key, &jpeg);
            let total = jpeg.len() as u64;
            progress(total, total);
            let body = self.answer(Route::Image, Some(barcode), fault, |s, now| {
                if !s.access.images_enabled {
                    return Err(Refusal::new(
                        403,
                        code::IMAGE_ACTION_DISABLED,
                        "the image action is not enabled for depot 042",
                    ));
                }
                let upload = ImageUpload {
                    kind: query.kind.clone(),
                    sha256: sha256_hex(&jpeg),
                    bytes: total,
                };
                let (status, receipt) = s.submit_image(barcode, idempotency_key, upload, now)?;
                Ok((status, to_json!(&receipt)))
            })?;
            parse_json::<ImageReceipt>(&body)
        })
    }
}
