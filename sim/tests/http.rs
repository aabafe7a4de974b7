//! The simulator seen from an HTTP client (reqwest) over loopback: every test starts its own
//! simulator on 127.0.0.1:0, so they are hermetic and run in parallel.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use upn_core::upn::wire::{
    self, ConsignmentFeed, ErrorBody, ImageReceipt, PodReceipt, PodSubmission, TrackingBatch,
    WireGpsFix,
};
use upn_sim::{FaultSpec, NewEvent, Received, SimConfig, SimHandle, Simulator};

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

async fn start(config: SimConfig) -> SimHandle {
    Simulator::start(config, local())
        .await
        .expect("simulator starts")
}

/// A client for one simulator, speaking as the depot.
struct Api {
    http: Client,
    base: String,
    depot: String,
    key: String,
}

impl Api {
    fn new(sim: &SimHandle) -> Self {
        Self {
            http: Client::new(),
            base: sim.endpoint(),
            depot: sim.depot(),
            key: sim.api_key(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn feed(&self, since: Option<&str>) -> reqwest::Result<Response> {
        let mut req = self
            .http
            .get(self.url(&wire::consignments_path(&self.depot)))
            .header(wire::API_KEY_HEADER, &self.key);
        if let Some(since) = since {
            req = req.query(&[("since", since)]);
        }
        req.send().await
    }

    async fn events(&self, max: Option<u32>) -> reqwest::Result<Response> {
        let mut req = self
            .http
            .get(self.url(&wire::tracking_events_path(&self.depot)))
            .header(wire::API_KEY_HEADER, &self.key);
        if let Some(max) = max {
            req = req.query(&[("max", max)]);
        }
        req.send().await
    }

    async fn pod(
        &self,
        barcode: &str,
        key: &str,
        pod: &PodSubmission,
    ) -> reqwest::Result<Response> {
        self.http
            .post(self.url(&wire::pod_path(&self.depot, barcode)))
            .header(wire::API_KEY_HEADER, &self.key)
            .header(wire::IDEMPOTENCY_KEY_HEADER, key)
            .json(pod)
            .send()
            .await
    }

    async fn image(
        &self,
        barcode: &str,
        key: &str,
        kind: &str,
        jpeg: Vec<u8>,
    ) -> reqwest::Result<Response> {
        self.http
            .post(self.url(&wire::images_path(&self.depot, barcode)))
            .header(wire::API_KEY_HEADER, &self.key)
            .header(wire::IDEMPOTENCY_KEY_HEADER, key)
            .header(wire::CONTENT_SHA256_HEADER, sha256_hex(&jpeg))
            .header("Content-Type", "image/jpeg")
            .query(&[
                ("kind", kind),
                ("captured_at", "2025-03-14T10:15:00Z"),
                ("lat", "52.48"),
            ])
            .body(jpeg)
            .send()
            .await
    }

    async fn sim_post(&self, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("control route answers")
    }

    async fn received(&self) -> Received {
        self.http
            .get(self.url("/_sim/received"))
            .send()
            .await
            .expect("received")
            .json()
            .await
            .expect("received json")
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn pod_body(signed_by: &str) -> PodSubmission {
    PodSubmission {
        signed_by: signed_by.into(),
        signed_at: Utc::now(),
        clock_offset_ms: Some(-120),
        gps: Some(WireGpsFix {
            lat: 52.4862,
            lon: -1.8904,
            accuracy_m: 8.0,
            fix_at: Utc::now(),
        }),
        signature_png_base64: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==".into(),
        image_count: 1,
        pod_sha256: None,
    }
}

fn jpeg(n: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..n).map(|i| (i % 251) as u8));
    bytes.extend([0xFF, 0xD9]);
    bytes
}

fn assert_server_time(response: &Response) {
    let value = response
        .headers()
        .get(wire::SERVER_TIME_HEADER)
        .expect("server time header")
        .to_str()
        .expect("ascii");
    chrono::DateTime::parse_from_rfc3339(value).expect("RFC 3339");
}

/// Asserts a refusal's status and code, and returns its body.
async fn refused(response: Response, status: u16, code: &str) -> ErrorBody {
    assert_eq!(response.status().as_u16(), status);
    assert_server_time(&response);
    let body: ErrorBody = response.json().await.expect("error body");
    assert_eq!(body.error.code, code, "{}", body.error.message);
    body
}

fn first_barcode(sim: &SimHandle) -> String {
    sim.consignments()[0].barcode.clone()
}

#[tokio::test]
async fn feed_and_cursor_over_http() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let response = api.feed(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_server_time(&response);
    let feed: ConsignmentFeed = response.json().await.unwrap();
    assert_eq!(feed.consignments.len(), 12);
    // The client's types read back exactly what the simulator's own types wrote.
    assert_eq!(
        serde_json::to_value(&feed.consignments).unwrap(),
        serde_json::to_value(sim.consignments()).unwrap()
    );
    assert_eq!(feed.cursor, "v12");
    assert!(feed.cancellations.is_empty());

    let (a, b) = (&feed.consignments[3].barcode, &feed.consignments[7].barcode);
    let r = api
        .sim_post(
            &format!("/_sim/consignments/{a}/update"),
            json!({"special_instructions": "Call ahead"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = api
        .sim_post(
            &format!("/_sim/consignments/{b}/cancel"),
            json!({"reason": "booked in error"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = api
        .sim_post("/_sim/consignments/UPN0420000000/cancel", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let delta: ConsignmentFeed = api
        .feed(Some(&feed.cursor))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(delta.cursor, "v14");
    assert_eq!(delta.consignments.len(), 1);
    assert_eq!(&delta.consignments[0].barcode, a);
    assert_eq!(
        delta.consignments[0].special_instructions.as_deref(),
        Some("Call ahead")
    );
    assert_eq!(delta.cancellations.len(), 1);
    assert_eq!(&delta.cancellations[0].barcode, b);
    assert_eq!(
        delta.cancellations[0].reason.as_deref(),
        Some("booked in error")
    );

    let nothing: ConsignmentFeed = api.feed(Some("v14")).await.unwrap().json().await.unwrap();
    assert!(nothing.consignments.is_empty() && nothing.cancellations.is_empty());
    assert_eq!(sim.consignments().len(), 11);

    refused(
        api.feed(Some("yesterday")).await.unwrap(),
        400,
        wire::code::INVALID_REQUEST,
    )
    .await;
    let received = sim.received();
    assert_eq!(received.rejected.len(), 1);
    assert_eq!(received.rejected[0].route, "consignments");
    assert_eq!(received.rejected[0].status, 400);
}

#[tokio::test]
async fn handle_changes_show_in_the_feed() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let barcode = first_barcode(&sim);
    assert!(sim.update_instructions(&barcode, Some("Forklift on site")));
    assert!(sim.cancel(&sim.consignments()[1].barcode.clone(), None));
    assert!(!sim.cancel("nope", None));
    let delta: ConsignmentFeed = api.feed(Some("v12")).await.unwrap().json().await.unwrap();
    assert_eq!(delta.consignments.len(), 1);
    assert_eq!(delta.cancellations.len(), 1);
}

#[tokio::test]
async fn events_are_handed_out_once() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let first: TrackingBatch = api.events(Some(5)).await.unwrap().json().await.unwrap();
    assert_eq!(first.batch_id.as_deref(), Some("B000001"));
    assert_eq!(first.events.len(), 5);
    assert_eq!(first.remaining, 7);
    assert!(first
        .events
        .iter()
        .all(|e| e.stage == "BOOKED" && e.capture_type == "C"));
    let rest: TrackingBatch = api.events(None).await.unwrap().json().await.unwrap();
    assert_eq!(rest.batch_id.as_deref(), Some("B000002"));
    assert_eq!(rest.events.len(), 7);
    assert_eq!(rest.remaining, 0);
    let ids: Vec<&str> = first
        .events
        .iter()
        .chain(&rest.events)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(ids.first(), Some(&"EV000001"));
    assert_eq!(ids.last(), Some(&"EV000012"));
    let empty: TrackingBatch = api.events(None).await.unwrap().json().await.unwrap();
    assert_eq!(empty.batch_id, None);
    assert!(empty.events.is_empty());

    let barcode = first_barcode(&sim);
    let r = api
        .sim_post(
            "/_sim/events",
            json!([
                {"barcode": barcode, "capture_type": "C", "stage": "OUT_FOR_DELIVERY"},
                {"barcode": barcode, "pallet": format!("{barcode}01"), "capture_type": "P", "stage": "SOMETHING_NEW"}
            ]),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"queued": 2}));
    let queued = sim.push_events(vec![NewEvent {
        barcode: barcode.clone(),
        pallet: None,
        capture_type: "C".into(),
        stage: "DELIVERED".into(),
        at: None,
    }]);
    assert_eq!(queued, 1);
    let more: TrackingBatch = api.events(None).await.unwrap().json().await.unwrap();
    let stages: Vec<&str> = more.events.iter().map(|e| e.stage.as_str()).collect();
    assert_eq!(stages, ["OUT_FOR_DELIVERY", "SOMETHING_NEW", "DELIVERED"]);
    assert_eq!(more.events[0].id, "EV000013");
    assert_eq!(
        more.events[1].pallet.as_deref(),
        Some(format!("{barcode}01").as_str())
    );
    assert!(more.events[0].at < more.events[1].at && more.events[1].at < more.events[2].at);
    assert_eq!(sim.received().event_batches_handed_out, 3);

    let r = api
        .sim_post("/_sim/events", json!({"not": "an array"}))
        .await;
    refused(r, 400, wire::code::INVALID_REQUEST).await;
    refused(
        api.http
            .get(api.url(&wire::tracking_events_path("042")))
            .header(wire::API_KEY_HEADER, &api.key)
            .query(&[("max", "lots")])
            .send()
            .await
            .unwrap(),
        400,
        wire::code::INVALID_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn pod_is_idempotent_and_exclusive() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let barcode = first_barcode(&sim);
    let response = api
        .pod(&barcode, "key-1", &pod_body("J. Patel"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_server_time(&response);
    let receipt: PodReceipt = response.json().await.unwrap();
    assert!(!receipt.duplicate);
    assert_eq!(receipt.pod_reference, format!("POD-{barcode}"));

    let again = api
        .pod(&barcode, "key-1", &pod_body("J. Patel"))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: PodReceipt = again.json().await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.received_at, receipt.received_at);

    refused(
        api.pod(&barcode, "key-2", &pod_body("Someone Else"))
            .await
            .unwrap(),
        409,
        wire::code::ALREADY_DELIVERED,
    )
    .await;

    let received = api.received().await;
    assert_eq!(received, sim.received());
    assert_eq!(received.pods.len(), 1);
    let pod = &received.pods[0];
    assert_eq!(
        (pod.idempotency_key.as_str(), pod.attempts, pod.seq),
        ("key-1", 2, 1)
    );
    assert_eq!(pod.signed_by, "J. Patel");
    assert_eq!((pod.lat, pod.lon), (Some(52.4862), Some(-1.8904)));
    assert_eq!(received.rejected.len(), 1);
    assert_eq!(received.rejected[0].reason, "already_delivered");
}

#[tokio::test]
async fn pod_validation_refusals_are_recorded() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let barcode = first_barcode(&sim);
    let url = api.url(&wire::pod_path("042", &barcode));

    let no_key = api
        .http
        .post(&url)
        .header(wire::API_KEY_HEADER, &api.key)
        .json(&pod_body("A"))
        .send()
        .await
        .unwrap();
    refused(no_key, 400, wire::code::INVALID_REQUEST).await;
    let malformed = api
        .http
        .post(&url)
        .header(wire::API_KEY_HEADER, &api.key)
        .header(wire::IDEMPOTENCY_KEY_HEADER, "k")
        .body("{\"signed_by\": ")
        .send()
        .await
        .unwrap();
    refused(malformed, 400, wire::code::INVALID_REQUEST).await;
    refused(
        api.pod(&barcode, "k", &pod_body("  ")).await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    let mut bad_signature = pod_body("A");
    bad_signature.signature_png_base64 = "not base64!".into();
    refused(
        api.pod(&barcode, "k", &bad_signature).await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    refused(
        api.pod("UPN0429999999", "k", &pod_body("A")).await.unwrap(),
        404,
        wire::code::UNKNOWN_BARCODE,
    )
    .await;
    let cancelled = sim.consignments()[1].barcode.clone();
    assert!(sim.cancel(&cancelled, Some("refused by customer")));
    refused(
        api.pod(&cancelled, "k", &pod_body("A")).await.unwrap(),
        404,
        wire::code::UNKNOWN_BARCODE,
    )
    .await;

    let received = sim.received();
    assert!(received.pods.is_empty());
    let statuses: Vec<u16> = received.rejected.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 400, 400, 400, 404, 404]);
    assert!(received.rejected.iter().all(|r| r.route == "pod"));
    assert_eq!(
        received.rejected[5].barcode.as_deref(),
        Some(cancelled.as_str())
    );
}

#[tokio::test]
async fn images_need_a_pod_and_are_checked() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let barcode = first_barcode(&sim);

    refused(
        api.image(&barcode, "img-1", "goods", jpeg(2000))
            .await
            .unwrap(),
        409,
        wire::code::POD_REQUIRED,
    )
    .await;
    let rejected = sim.received().rejected;
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (
            rejected[0].route.as_str(),
            rejected[0].barcode.as_deref(),
            rejected[0].status,
            rejected[0].reason.as_str()
        ),
        ("image", Some(barcode.as_str()), 409, "pod_required")
    );

    assert_eq!(
        api.pod(&barcode, "pod-1", &pod_body("A"))
            .await
            .unwrap()
            .status(),
        201
    );
    let first = api
        .image(&barcode, "img-1", "goods", jpeg(2000))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: ImageReceipt = first.json().await.unwrap();
    assert_eq!(first.sha256, sha256_hex(&jpeg(2000)));
    assert_eq!(first.bytes, 2006);
    assert!(!first.duplicate);
    let again = api
        .image(&barcode, "img-1", "goods", jpeg(2000))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: ImageReceipt = again.json().await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.image_reference, first.image_reference);

    refused(
        api.image(&barcode, "img-2", "selfie", jpeg(10))
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    let mismatch = api
        .http
        .post(api.url(&wire::images_path("042", &barcode)))
        .header(wire::API_KEY_HEADER, &api.key)
        .header(wire::IDEMPOTENCY_KEY_HEADER, "img-3")
        .header(wire::CONTENT_SHA256_HEADER, sha256_hex(b"something else"))
        .query(&[
            ("kind", "location"),
            ("captured_at", "2025-03-14T10:15:00Z"),
        ])
        .body(jpeg(10))
        .send()
        .await
        .unwrap();
    refused(mismatch, 400, "invalid_request").await;
    let too_big = vec![0u8; wire::MAX_IMAGE_BYTES as usize + 1];
    refused(
        api.image(&barcode, "img-4", "goods", too_big)
            .await
            .unwrap(),
        413,
        wire::code::PAYLOAD_TOO_LARGE,
    )
    .await;
    refused(
        api.image("UPN0429999999", "img-5", "goods", jpeg(10))
            .await
            .unwrap(),
        404,
        "unknown_barcode",
    )
    .await;

    let received = sim.received();
    assert_eq!(received.images.len(), 1);
    let image = &received.images[0];
    // img-1 was also sent before the POD (refused 409): that request counts too.
    assert_eq!(
        (image.kind.as_str(), image.bytes, image.seq, image.attempts),
        ("goods", 2006, 2, 3)
    );
    let statuses: Vec<u16> = received.rejected.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [409, 400, 400, 413, 404]);
}

#[tokio::test]
async fn wrong_or_missing_key_is_401() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let wrong = api
        .http
        .get(api.url(&wire::consignments_path("042")))
        .header(wire::API_KEY_HEADER, "not-the-key")
        .send()
        .await
        .unwrap();
    let body = refused(wrong, 401, wire::code::UNAUTHORIZED).await;
    assert!(!body.error.message.contains("sim-key-042"));
    let missing = api
        .http
        .get(api.url(&wire::consignments_path("042")))
        .send()
        .await
        .unwrap();
    refused(missing, 401, wire::code::UNAUTHORIZED).await;
    let received = sim.received();
    assert_eq!(received.rejected.len(), 2);
    assert!(received
        .rejected
        .iter()
        .all(|r| r.status == 401 && r.reason == "unauthorized"));
}

#[tokio::test]
async fn each_access_switch_has_its_403() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let barcode = first_barcode(&sim);

    let other_depot = Api {
        depot: "043".into(),
        ..Api::new(&sim)
    };
    refused(
        other_depot.feed(None).await.unwrap(),
        403,
        wire::code::INTEGRATION_DISABLED,
    )
    .await;

    sim.set_access(false, true, true);
    refused(
        api.feed(None).await.unwrap(),
        403,
        wire::code::INTEGRATION_DISABLED,
    )
    .await;
    refused(
        api.pod(&barcode, "k", &pod_body("A")).await.unwrap(),
        403,
        wire::code::INTEGRATION_DISABLED,
    )
    .await;

    sim.set_access(true, false, true);
    refused(
        api.events(None).await.unwrap(),
        403,
        wire::code::TRACKING_ACTION_DISABLED,
    )
    .await;
    assert_eq!(api.feed(None).await.unwrap().status(), 200);

    let r = api
        .sim_post(
            "/_sim/config",
            json!({"tracking_enabled": true, "images_enabled": false}),
        )
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"integration_enabled": true, "tracking_enabled": true, "images_enabled": false})
    );
    assert_eq!(api.events(None).await.unwrap().status(), 200);
    refused(
        api.image(&barcode, "i", "goods", jpeg(10)).await.unwrap(),
        403,
        wire::code::IMAGE_ACTION_DISABLED,
    )
    .await;
    let r = api
        .sim_post("/_sim/config", json!({"image_enabled": true}))
        .await;
    refused(r, 400, "invalid_request").await;

    let started_off = start(SimConfig {
        tracking_enabled: false,
        ..SimConfig::default()
    })
    .await;
    refused(
        Api::new(&started_off).events(None).await.unwrap(),
        403,
        "tracking_action_disabled",
    )
    .await;

    let reasons: Vec<String> = sim
        .received()
        .rejected
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            "integration_disabled",
            "integration_disabled",
            "integration_disabled",
            "tracking_action_disabled",
            "image_action_disabled"
        ]
    );
}

#[tokio::test]
async fn fault_spec_control_route() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let bad = api
        .sim_post(
            "/_sim/faults",
            json!({"spec": "pod:500:0.5,image:explode:1"}),
        )
        .await;
    let body = refused(bad, 400, "invalid_request").await;
    assert!(
        body.error.message.contains("image:explode:1"),
        "{}",
        body.error.message
    );
    assert!(
        body.error.message.contains("lost-response"),
        "{}",
        body.error.message
    );
    let ok = api
        .sim_post("/_sim/faults", json!({"spec": "consignments:503:1"}))
        .await;
    assert_eq!(
        ok.json::<Value>().await.unwrap(),
        json!({"spec": "consignments:503:1"})
    );
    assert_eq!(api.feed(None).await.unwrap().status(), 503);
    // Control routes are never faulted.
    assert_eq!(
        api.http
            .get(api.url("/_sim/received"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    api.sim_post("/_sim/faults", json!({"spec": ""})).await;
    assert_eq!(api.feed(None).await.unwrap().status(), 200);
}

#[tokio::test]
async fn injected_status_faults_store_nothing_but_count_attempts() {
    let sim = start(SimConfig {
        faults: "pod:503:1,events:429:1,consignments:500:1".parse().unwrap(),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let barcode = first_barcode(&sim);

    let r = api.pod(&barcode, "k", &pod_body("A")).await.unwrap();
    assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    refused(r, 503, wire::code::UNAVAILABLE).await;
    let r = api.events(None).await.unwrap();
    assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    refused(r, 429, wire::code::RATE_LIMITED).await;
    let r = api.feed(None).await.unwrap();
    assert!(r.headers().get("retry-after").is_none());
    refused(r, 500, wire::code::INTERNAL).await;

    let received = sim.received();
    assert!(received.pods.is_empty());
    assert!(
        received.rejected.is_empty(),
        "injected faults are not refusals"
    );
    assert_eq!(received.event_batches_handed_out, 0);

    sim.set_faults(FaultSpec::none());
    assert_eq!(
        api.pod(&barcode, "k", &pod_body("A"))
            .await
            .unwrap()
            .status(),
        201
    );
    let batch: TrackingBatch = api.events(None).await.unwrap().json().await.unwrap();
    assert_eq!(batch.events.len(), 12, "the 429 consumed nothing");
    assert_eq!(sim.received().pods[0].attempts, 2);
}

#[tokio::test]
async fn drop_closes_the_connection_before_handling() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let barcode = first_barcode(&sim);
    sim.set_faults("pod:drop:1".parse().unwrap());
    let err = api.pod(&barcode, "k", &pod_body("A")).await.unwrap_err();
    assert!(err.is_request() && !err.is_status(), "{err:?}");
    assert!(sim.received().pods.is_empty(), "nothing stored");

    sim.set_faults(FaultSpec::none());
    assert_eq!(
        api.pod(&barcode, "k", &pod_body("A"))
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(sim.received().pods[0].attempts, 2);
}

#[tokio::test]
async fn lost_response_still_stores_the_pod() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let barcode = first_barcode(&sim);
    sim.set_faults("*:lost-response:1".parse().unwrap());
    assert!(api.pod(&barcode, "k", &pod_body("A")).await.is_err());
    let received = sim.received();
    assert_eq!(received.pods.len(), 1, "handled and committed");
    assert_eq!(received.pods[0].attempts, 1);

    sim.set_faults(FaultSpec::none());
    let retry = api.pod(&barcode, "k", &pod_body("A")).await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    assert!(retry.json::<PodReceipt>().await.unwrap().duplicate);
    assert_eq!(sim.received().pods[0].attempts, 2);
}

#[tokio::test]
async fn truncate_breaks_the_body() {
    let sim = start(SimConfig {
        faults: "consignments:truncate:1".parse().unwrap(),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let response = api.feed(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let announced = response.content_length().expect("content length");
    assert!(announced > 1000);
    let err = response.bytes().await.expect_err("body cut short");
    assert!(err.is_body() || err.is_decode(), "{err:?}");
}

#[tokio::test]
async fn garbage_is_200_json_that_does_not_parse() {
    let sim = start(SimConfig {
        faults: "events:garbage:1".parse().unwrap(),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let response = api.events(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_server_time(&response);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json"
    );
    let body = response.bytes().await.unwrap();
    assert!(serde_json::from_slice::<TrackingBatch>(&body).is_err());
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    // Handled: the batch was consumed even though the client could not read it.
    assert_eq!(sim.received().event_batches_handed_out, 1);
}

#[tokio::test]
async fn slow_waits_then_answers() {
    let sim = start(SimConfig {
        faults: "consignments:slow:1".parse().unwrap(),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let started = Instant::now();
    let response = api.feed(None).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(response.status(), StatusCode::OK);
    let feed: ConsignmentFeed = response.json().await.unwrap();
    assert_eq!(feed.consignments.len(), 12);
}

#[tokio::test]
async fn throttle_paces_both_directions() {
    let rate = 40_000;
    let sim = start(SimConfig {
        throttle_bytes_per_s: Some(rate),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let started = Instant::now();
    let body = api.feed(None).await.unwrap().bytes().await.unwrap();
    let expected = body.len() as f64 / rate as f64;
    assert!(expected > 0.05, "feed of {} bytes", body.len());
    assert!(
        started.elapsed().as_secs_f64() >= expected * 0.8,
        "{:?} for {} bytes",
        started.elapsed(),
        body.len()
    );
    serde_json::from_slice::<ConsignmentFeed>(&body).expect("complete JSON");

    let barcode = first_barcode(&sim);
    assert_eq!(
        api.pod(&barcode, "p", &pod_body("A"))
            .await
            .unwrap()
            .status(),
        201
    );
    let started = Instant::now();
    let r = api
        .image(&barcode, "i", "goods", jpeg(12_000))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        started.elapsed().as_secs_f64() >= 0.8 * 12_000.0 / rate as f64,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn same_seed_same_depot_other_seed_other_depot() {
    let a = start(SimConfig::default()).await;
    let b = start(SimConfig::default()).await;
    let c = start(SimConfig {
        seed: 2,
        ..SimConfig::default()
    })
    .await;
    let feed = |sim: &SimHandle| {
        let api = Api::new(sim);
        async move {
            api.feed(None)
                .await
                .unwrap()
                .json::<ConsignmentFeed>()
                .await
                .unwrap()
                .consignments
        }
    };
    let (fa, fb, fc) = (feed(&a).await, feed(&b).await, feed(&c).await);
    assert_eq!(fa, fb);
    assert_ne!(fa, fc);
    assert!(fa[0].barcode.starts_with("UPN042"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    let r = api.http.get(api.url("/v2/nothing")).send().await.unwrap();
    refused(r, 404, "not_found").await;
    let r = api
        .http
        .delete(api.url(&wire::consignments_path("042")))
        .send()
        .await
        .unwrap();
    refused(r, 405, "method_not_allowed").await;
    assert!(sim.received().rejected.is_empty());
}

/// Raw HTTP/1.1 over std, so this test needs no runtime at all.
fn raw_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

#[test]
fn background_simulator_serves_sync_callers_and_stops_on_drop() {
    let sim = Simulator::start_background(SimConfig::default(), local()).expect("starts");
    assert!(sim.endpoint().starts_with("http://127.0.0.1:"));
    let addr = sim.addr();
    let text = raw_get(addr, "/_sim/received").expect("answers");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-upn-server-time:"),
        "{text}"
    );
    assert!(text.contains("\"event_batches_handed_out\":0"), "{text}");
    assert_eq!(sim.consignments().len(), 12);
    sim.shutdown();
    assert!(raw_get(addr, "/_sim/received").is_err(), "stopped");
}

/// The project's own client classifies every fault the way the sync engine expects.
#[tokio::test]
async fn the_core_client_classifies_every_fault() {
    use upn_core::upn::http::HttpUpn;
    use upn_core::upn::{ApiKey, UpnApi, UpnConfig, UpnError};

    let sim = start(SimConfig::default()).await;
    let client = HttpUpn::new(UpnConfig {
        endpoint: sim.endpoint(),
        depot: sim.depot(),
        api_key: ApiKey::new(sim.api_key()),
    })
    .unwrap();
    let barcode = first_barcode(&sim);
    type Expect = fn(&UpnError) -> bool;
    let cases: [(&str, Expect); 6] = [
        ("pod:500:1", |e| {
            matches!(e, UpnError::Server { status: 500, .. })
        }),
        ("pod:503:1", |e| {
            matches!(e, UpnError::Server { status: 503, .. })
        }),
        (
            "pod:429:1",
            |e| matches!(e, UpnError::RateLimited { retry_after: Some(d) } if d.as_secs() == 1),
        ),
        ("pod:drop:1", |e| matches!(e, UpnError::Unreachable { .. })),
        ("pod:truncate:1", |e| {
            matches!(e, UpnError::BadResponse { .. })
        }),
        ("pod:garbage:1", |e| {
            matches!(e, UpnError::BadResponse { .. })
        }),
    ];
    for (spec, expected) in cases {
        sim.set_faults(spec.parse().unwrap());
        let err = client
            .submit_pod(&barcode, "k", &pod_body("A"))
            .await
            .unwrap_err();
        assert!(expected(&err), "{spec}: {err:?}");
        assert!(err.is_recoverable(), "{spec}: {err:?}");
    }
    sim.set_faults(FaultSpec::none());
    let receipt = client
        .submit_pod(&barcode, "k", &pod_body("A"))
        .await
        .unwrap();
    assert!(
        receipt.duplicate,
        "truncate and garbage were handled, so the POD was already stored"
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_serving() {
    let sim = start(SimConfig::default()).await;
    let api = Api::new(&sim);
    assert_eq!(api.feed(None).await.unwrap().status(), 200);
    drop(sim);
    tokio::task::yield_now().await;
    let fresh = Client::new();
    assert!(fresh.get(api.url("/_sim/received")).send().await.is_err());
    // A kept-alive connection is closed too.
    assert!(api.feed(None).await.is_err());
}

#[tokio::test]
async fn background_simulator_can_be_started_and_dropped_from_async_code() {
    let sim = Simulator::start_background(SimConfig::default(), local()).expect("starts");
    let api = Api::new(&sim);
    assert_eq!(api.feed(None).await.unwrap().status(), 200);
    drop(sim);
    assert!(Client::new()
        .get(api.url("/_sim/received"))
        .send()
        .await
        .is_err());
    // An address in use is an error, not a panic, even from async code.
    let taken = std::net::TcpListener::bind(local()).unwrap();
    let err = Simulator::start_background(SimConfig::default(), taken.local_addr().unwrap())
        .expect_err("address in use");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let err = Simulator::start(SimConfig::default(), taken.local_addr().unwrap())
        .await
        .expect_err("address in use");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[tokio::test]
async fn same_seed_same_fault_sequence() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let sim = start(SimConfig {
            seed,
            faults: "consignments:503:0.5".parse().unwrap(),
            ..SimConfig::default()
        })
        .await;
        let api = Api::new(&sim);
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(api.feed(None).await.unwrap().status().as_u16());
        }
        out
    }
    let a = statuses(11).await;
    assert_eq!(a, statuses(11).await);
    assert_ne!(a, statuses(12).await);
    assert!(a.contains(&200) && a.contains(&503), "{a:?}");
}
