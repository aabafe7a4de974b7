//! The handlers: the four UPN routes (auth, access switches, validation, faults) and the
//! `/_sim/*` inspection and control routes (no key, never faulted).

use std::sync::Arc;
use std::time::Duration;

use crate::wire::{
    self, code, ConsignmentsQuery, ErrorBody, ErrorDetail, EventsQuery, ImageQuery, PodSubmission,
    MAX_IMAGE_BYTES,
};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::faults::{FaultKind, FaultSpec, Route};
use crate::server::{self, read_body, BodyRead, ConnAbort, Delivery, Shared};
use crate::state::{Access, ImageUpload, NewEvent, Refusal, DEFAULT_BATCH, MAX_BATCH};

/// How long the `slow` fault waits before handling.
const SLOW_DELAY: Duration = Duration::from_secs(2);
/// Largest body accepted on UPN routes other than images.
const MAX_OTHER_BODY: u64 = MAX_IMAGE_BYTES + 1024 * 1024;
/// Largest body accepted on `/_sim/*` routes.
const MAX_SIM_BODY: u64 = 16 * 1024 * 1024;
/// Image kinds UPN accepts.
const IMAGE_KINDS: [&str; 3] = ["goods", "location", "leave_safe"];

type Shr = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/depots/{depot}/consignments", get(consignments))
        .route("/v1/depots/{depot}/tracking-events", get(tracking_events))
        .route("/v1/depots/{depot}/consignments/{barcode}/pod", post(pod))
        .route(
            "/v1/depots/{depot}/consignments/{barcode}/images",
            post(images),
        )
        .route("/_sim/received", get(sim_received))
        .route("/_sim/events", post(sim_events))
        .route("/_sim/faults", post(sim_faults))
        .route("/_sim/config", post(sim_config))
        .route("/_sim/consignments/{barcode}/cancel", post(sim_cancel))
        .route("/_sim/consignments/{barcode}/update", post(sim_update))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// UPN routes
// ---------------------------------------------------------------------------------------------

async fn consignments(
    State(shared): Shr,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response<Body> {
    match path {
        Ok(Path(depot)) => upn(shared, Route::Consignments, depot, None, request).await,
        Err(e) => bad_path(e),
    }
}

async fn tracking_events(
    State(shared): Shr,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response<Body> {
    match path {
        Ok(Path(depot)) => upn(shared, Route::Events, depot, None, request).await,
        Err(e) => bad_path(e),
    }
}

async fn pod(
    State(shared): Shr,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response<Body> {
    match path {
        Ok(Path((depot, barcode))) => upn(shared, Route::Pod, depot, Some(barcode), request).await,
        Err(e) => bad_path(e),
    }
}

async fn images(
    State(shared): Shr,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response<Body> {
    match path {
        Ok(Path((depot, barcode))) => {
            upn(shared, Route::Image, depot, Some(barcode), request).await
        }
        Err(e) => bad_path(e),
    }
}

/// A request that passed every check, ready to apply to the state.
enum Action {
    Feed(Option<String>),
    Batch(u64),
    Pod {
        key: String,
        pod: Box<PodSubmission>,
    },
    Image {
        key: String,
        upload: ImageUpload,
    },
}

/// Every UPN request: count the attempt, draw the fault, read the body, check, apply, answer.
async fn upn(
    shared: Arc<Shared>,
    route: Route,
    depot: String,
    barcode: Option<String>,
    request: Request,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let abort = parts.extensions.get::<ConnAbort>().cloned();
    let key = header_text(&parts.headers, wire::IDEMPOTENCY_KEY_HEADER);

    let fault = {
        let mut state = shared.lock();
        if let (Some(barcode), Some(key)) = (&barcode, &key) {
            state.count_attempt(route, barcode, key);
        }
        state.faults.decide(route)
    };
    if let Some(kind) = fault {
        tracing::debug!(
            route = route.name(),
            fault = kind.name(),
            "upn-sim: injecting fault"
        );
    }

    let limit = if route == Route::Image {
        MAX_IMAGE_BYTES
    } else {
        MAX_OTHER_BODY
    };
    match fault {
        Some(FaultKind::Drop) => return close(abort).await,
        Some(kind @ (FaultKind::Status500 | FaultKind::Status503 | FaultKind::Status429)) => {
            // Read what the client sends, so it sees the status rather than a reset.
            let _ = read_body(body, &parts.headers, limit, shared.throttle).await;
            return injected_status(kind);
        }
        Some(FaultKind::Slow) => tokio::time::sleep(SLOW_DELAY).await,
        _ => {}
    }

    let body = read_body(body, &parts.headers, limit, shared.throttle).await;
    let access = shared.lock().access;
    let prepared = prepare(&shared, access, route, &depot, key, &parts, body);
    let now = server::now();
    let result = {
        let mut state = shared.lock();
        let result = prepared.and_then(|action| {
            let barcode = barcode.as_deref().unwrap_or_default();
            Ok(match action {
                Action::Feed(since) => (200, to_json(&state.feed(since.as_deref(), now)?)),
                Action::Batch(max) => (200, to_json(&state.take_batch(max, now))),
                Action::Pod { key, pod } => {
                    let (status, receipt) = state.submit_pod(barcode, &key, &pod, now)?;
                    (status, to_json(&receipt))
                }
                Action::Image { key, upload } => {
                    let (status, receipt) = state.submit_image(barcode, &key, upload, now)?;
                    (status, to_json(&receipt))
                }
            })
        });
        if let Err(refusal) = &result {
            state.record_rejection(route, barcode.as_deref(), refusal);
        }
        result
    };
    let (status, json) = match result {
        Ok(ok) => ok,
        Err(refusal) => {
            tracing::debug!(
                route = route.name(),
                status = refusal.status,
                code = refusal.code,
                "upn-sim: refused"
            );
            (refusal.status, error_json(now, &refusal))
        }
    };

    let delivery = Delivery {
        throttle: shared.throttle,
        truncate: false,
    };
    match fault {
        Some(FaultKind::LostResponse) => close(abort).await,
        Some(FaultKind::Garbage) => garbage(now),
        Some(FaultKind::Truncate) => server::json_response(
            status,
            json,
            now,
            Delivery {
                truncate: true,
                ..delivery
            },
        ),
        _ => server::json_response(status, json, now, delivery),
    }
}

/// The checks in the order UPN makes them: key, depot and integration, action switch, size,
/// then the route's own validation.
fn prepare(
    shared: &Shared,
    access: Access,
    route: Route,
    depot: &str,
    key: Option<String>,
    parts: &Parts,
    body: BodyRead,
) -> Result<Action, Refusal> {
    let presented = header_text(&parts.headers, wire::API_KEY_HEADER);
    if presented.as_deref() != Some(shared.api_key.as_str()) {
        return Err(Refusal::new(
            401,
            code::UNAUTHORIZED,
            format!("missing or wrong {} header", wire::API_KEY_HEADER),
        ));
    }
    if depot != shared.depot || !access.integration_enabled {
        return Err(Refusal::new(
            403,
            code::INTEGRATION_DISABLED,
            format!("the UPN integration is not enabled for depot {depot}"),
        ));
    }
    if route == Route::Events && !access.tracking_enabled {
        return Err(Refusal::new(
            403,
            code::TRACKING_ACTION_DISABLED,
            format!("the tracking action is not enabled for depot {depot}"),
        ));
    }
    if route == Route::Image && !access.images_enabled {
        return Err(Refusal::new(
            403,
            code::IMAGE_ACTION_DISABLED,
            format!("the image action is not enabled for depot {depot}"),
        ));
    }
    let bytes = match body {
        BodyRead::Complete(bytes) => bytes,
        BodyRead::TooLarge => {
            let limit = if route == Route::Image {
                MAX_IMAGE_BYTES
            } else {
                MAX_OTHER_BODY
            };
            return Err(Refusal::new(
                413,
                code::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {limit} bytes"),
            ));
        }
        BodyRead::Broken => return Err(Refusal::invalid("the request body could not be read")),
    };
    match route {
        Route::Consignments => {
            let query = Query::<ConsignmentsQuery>::try_from_uri(&parts.uri)
                .map_err(|e| Refusal::invalid(format!("query: {}", e.body_text())))?;
            Ok(Action::Feed(query.0.since))
        }
        Route::Events => {
            let query = Query::<EventsQuery>::try_from_uri(&parts.uri)
                .map_err(|e| Refusal::invalid(format!("query: {}", e.body_text())))?;
            let max = match query.0.max {
                None => DEFAULT_BATCH,
                Some(text) => text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_BATCH).contains(n))
                    .ok_or_else(|| {
                        Refusal::invalid(format!(
                            "max: {text:?} is not a whole number from 1 to {MAX_BATCH}"
                        ))
                    })?,
            };
            Ok(Action::Batch(max))
        }
        Route::Pod => {
            let key = require_key(key)?;
            let pod: PodSubmission = serde_json::from_slice(&bytes)
                .map_err(|e| Refusal::invalid(format!("the body is not a POD submission: {e}")))?;
            if pod.signed_by.trim().is_empty() {
                return Err(Refusal::invalid("signed_by is empty"));
            }
            if base64::engine::general_purpose::STANDARD
                .decode(pod.signature_png_base64.as_bytes())
                .is_err()
            {
                return Err(Refusal::invalid(
                    "signature_png_base64 is not base64 (standard alphabet, padded)",
                ));
            }
            if pod
                .pod_sha256
                .as_deref()
                .is_some_and(|h| !wire::is_sha256_hex(h))
            {
                return Err(Refusal::invalid(
                    "pod_sha256 must be 64 lowercase hex characters (a sha256)",
                ));
            }
            Ok(Action::Pod {
                key,
                pod: Box::new(pod),
            })
        }
        Route::Image => {
            let key = require_key(key)?;
            let declared =
                header_text(&parts.headers, wire::CONTENT_SHA256_HEADER).ok_or_else(|| {
                    Refusal::invalid(format!(
                        "the {} header is required",
                        wire::CONTENT_SHA256_HEADER
                    ))
                })?;
            let query = Query::<ImageQuery>::try_from_uri(&parts.uri)
                .map_err(|e| Refusal::invalid(format!("query: {}", e.body_text())))?
                .0;
            if !IMAGE_KINDS.contains(&query.kind.as_str()) {
                return Err(Refusal::invalid(format!(
                    "kind: {:?} is not one of goods, location, leave_safe",
                    query.kind
                )));
            }
            let sha256 = sha256_hex(&bytes);
            if !declared.eq_ignore_ascii_case(&sha256) {
                return Err(Refusal::invalid(format!(
                    "{} does not match the body (body sha256 is {sha256})",
                    wire::CONTENT_SHA256_HEADER
                )));
            }
            Ok(Action::Image {
                key,
                upload: ImageUpload {
                    kind: query.kind,
                    sha256,
                    bytes: bytes.len() as u64,
                },
            })
        }
    }
}

fn require_key(key: Option<String>) -> Result<String, Refusal> {
    key.ok_or_else(|| {
        Refusal::invalid(format!(
            "the {} header is required",
            wire::IDEMPOTENCY_KEY_HEADER
        ))
    })
}

/// A header as trimmed, non-empty text.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

fn error_json(now: DateTime<Utc>, refusal: &Refusal) -> Vec<u8> {
    to_json(&ErrorBody {
        server_time: now,
        error: ErrorDetail {
            code: refusal.code.to_string(),
            message: refusal.message.clone(),
        },
    })
}

fn refusal_response(refusal: Refusal) -> Response<Body> {
    let now = server::now();
    server::json_response(
        refusal.status,
        error_json(now, &refusal),
        now,
        Delivery::default(),
    )
}

fn bad_path(e: PathRejection) -> Response<Body> {
    refusal_response(Refusal::invalid(format!("path: {}", e.body_text())))
}

async fn close(abort: Option<ConnAbort>) -> Response<Body> {
    match abort {
        Some(abort) => abort.close_connection().await,
        // Only outside the simulator's own server (never in practice): answer 500 instead.
        None => injected_status(FaultKind::Status500),
    }
}

fn injected_status(kind: FaultKind) -> Response<Body> {
    let (status, code) = match kind {
        FaultKind::Status503 => (503, code::UNAVAILABLE),
        FaultKind::Status429 => (429, code::RATE_LIMITED),
        _ => (500, code::INTERNAL),
    };
    let now = server::now();
    let refusal = Refusal::new(status, code, format!("injected fault: {}", kind.name()));
    let mut response =
        server::json_response(status, error_json(now, &refusal), now, Delivery::default());
    if status != 500 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// 200 `application/json` whose body is not JSON: cut off mid-document, with stray bytes.
fn garbage(now: DateTime<Utc>) -> Response<Body> {
    let mut body = format!(
        "{{\"server_time\":\"{}\",\"cursor\":\"v1\",\"consignments\":[{{\"barcode\":\"UPN0",
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
    .into_bytes();
    body.extend_from_slice(b"\x00\xff\xfe<html><body>502 Bad Gateway</body></html>");
    server::json_response(200, body, now, Delivery::default())
}

// ---------------------------------------------------------------------------------------------
// /_sim routes
// ---------------------------------------------------------------------------------------------

fn ok_json<T: Serialize>(value: &T) -> Response<Body> {
    let now = server::now();
    server::json_response(200, to_json(value), now, Delivery::default())
}

/// The body of a `/_sim` request as JSON; an empty body reads as `empty`.
async fn sim_body<T: for<'de> Deserialize<'de>>(
    request: Request,
    empty: Option<T>,
) -> Result<T, Response<Body>> {
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), MAX_SIM_BODY as usize)
        .await
        .map_err(|_| {
            refusal_response(Refusal::new(
                413,
                code::PAYLOAD_TOO_LARGE,
                format!("the body is missing, broken or larger than {MAX_SIM_BODY} bytes"),
            ))
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if let Some(empty) = empty {
            return Ok(empty);
        }
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| refusal_response(Refusal::invalid(format!("body: {e}"))))
}

async fn sim_received(State(shared): Shr) -> Response<Body> {
    let received = shared.lock().received();
    ok_json(&received)
}

async fn sim_events(State(shared): Shr, request: Request) -> Response<Body> {
    let events: Vec<NewEvent> = match sim_body(request, None).await {
        Ok(events) => events,
        Err(response) => return response,
    };
    let queued = shared.lock().push_events(events, Utc::now());
    ok_json(&serde_json::json!({ "queued": queued }))
}

async fn sim_faults(State(shared): Shr, request: Request) -> Response<Body> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SetFaults {
        spec: String,
    }
    let body: SetFaults = match sim_body(request, None).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match body.spec.parse::<FaultSpec>() {
        Ok(spec) => {
            let text = spec.to_string();
            shared.lock().faults.set(spec);
            ok_json(&serde_json::json!({ "spec": text }))
        }
        Err(e) => refusal_response(Refusal::invalid(e.to_string())),
    }
}

async fn sim_config(State(shared): Shr, request: Request) -> Response<Body> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Switches {
        integration_enabled: Option<bool>,
        tracking_enabled: Option<bool>,
        images_enabled: Option<bool>,
    }
    let switches: Switches = match sim_body(request, Some(Switches::default())).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let access = {
        let mut state = shared.lock();
        let a = &mut state.access;
        if let Some(v) = switches.integration_enabled {
            a.integration_enabled = v;
        }
        if let Some(v) = switches.tracking_enabled {
            a.tracking_enabled = v;
        }
        if let Some(v) = switches.images_enabled {
            a.images_enabled = v;
        }
        *a
    };
    ok_json(&access)
}

async fn sim_cancel(
    State(shared): Shr,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response<Body> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Cancel {
        reason: Option<String>,
    }
    let barcode = match path {
        Ok(Path(barcode)) => barcode,
        Err(e) => return bad_path(e),
    };
    let body: Cancel = match sim_body(request, Some(Cancel::default())).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let done = shared
        .lock()
        .cancel(&barcode, body.reason.as_deref(), Utc::now());
    if done {
        ok_json(&serde_json::json!({ "cancelled": barcode }))
    } else {
        refusal_response(Refusal::unknown_barcode(&barcode))
    }
}

async fn sim_update(
    State(shared): Shr,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response<Body> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Update {
        special_instructions: Option<String>,
    }
    let barcode = match path {
        Ok(Path(barcode)) => barcode,
        Err(e) => return bad_path(e),
    };
    let body: Update = match sim_body(request, Some(Update::default())).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let done = shared.lock().update_instructions(
        &barcode,
        body.special_instructions.as_deref(),
        Utc::now(),
    );
    if done {
        ok_json(&serde_json::json!({ "updated": barcode }))
    } else {
        refusal_response(Refusal::unknown_barcode(&barcode))
    }
}

async fn not_found(request: Request) -> Response<Body> {
    refusal_response(Refusal::new(
        404,
        "not_found",
        format!("no route for {}", request.uri().path()),
    ))
}

async fn method_not_allowed(request: Request) -> Response<Body> {
    refusal_response(Refusal::new(
        405,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    ))
}
