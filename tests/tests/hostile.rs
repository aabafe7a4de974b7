//! Everything UPN sends is untrusted: small hostile HTTP servers on loopback, written in the
//! test, send what the simulator never would (a huge Retry-After, year-10000 timestamps,
//! redirects, messages that echo the API key), and the core bounds, refuses per record, and
//! keeps the key at its origin.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use upn_core::domain::outbox::ItemState;
use upn_core::upn::wire::ConsignmentFeed;
use upn_core::upn::{ApiKey, UpnConfig, UpnError};
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::serve::{read_request, Request};
use upn_e2e::signature;
use upn_sim::wire::WireConsignment;

const KEY: &str = "hostile-test-key-7f3a";

/// One request as the hostile server read it.
type Handler = dyn Fn(&Request) -> String + Send + Sync;

/// A loopback HTTP/1.1 server that records every request and answers with whatever raw
/// response `handler` writes. One connection at a time; every response closes its connection.
struct Hostile {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Hostile {
    fn start(handler: impl Fn(&Request) -> String + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(request) = read_request(&stream) {
                    seen.lock().unwrap().push(request.clone());
                    let mut stream = stream;
                    let _ = stream.write_all(handler(&request).as_bytes());
                    let _ = stream.flush();
                }
            }
        });
        Self { addr, requests }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path_part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.is(method, path_part))
            .count()
    }
}

/// A raw HTTP response with a JSON body.
fn respond(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

fn error_body(code: &str, message: &str) -> String {
    json!({"server_time": Utc::now(), "error": {"code": code, "message": message}}).to_string()
}

/// Consignments as the simulator makes them, for a hostile server to serve.
fn consignments(n: usize) -> Vec<WireConsignment> {
    upn_sim::data::generate(7, n, "042", Utc::now().date_naive())
}

/// A feed body with these raw consignment and cancellation records.
fn feed(cursor: &str, consignments: Vec<Value>, cancellations: Vec<Value>) -> String {
    json!({
        "server_time": Utc::now(),
        "cursor": cursor,
        "consignments": consignments,
        "cancellations": cancellations,
    })
    .to_string()
}

fn good_feed(consignments: &[WireConsignment]) -> String {
    let values = consignments
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    feed("v1", values, vec![])
}

fn config(endpoint: String) -> UpnConfig {
    UpnConfig {
        endpoint,
        depot: "042".into(),
        api_key: ApiKey::new(KEY),
    }
}

fn open(dir: &std::path::Path, endpoint: String) -> Driver {
    if dir.join(upn_core::testing::store::DB_FILE_NAME).exists() {
        upn_e2e::rebind_folder(dir, &endpoint);
    }
    Driver::open(DriverConfig::new(dir.to_path_buf(), config(endpoint))).expect("open driver")
}

/// Imports `consignments` from a well-behaved server, signs the first, and closes the driver:
/// the data folder then holds one queued POD, ready for a hostile server.
fn signed_pod(dir: &std::path::Path, consignments: &[WireConsignment]) -> String {
    let body = good_feed(consignments);
    let good = Hostile::start(move |_| respond("200 OK", "", &body));
    let driver = open(dir, good.endpoint());
    driver.import_now().expect("import");
    let barcode = consignments[0].barcode.clone();
    driver
        .sign(&barcode, &signature(1), "A. Signer", Utc::now(), None)
        .expect("sign");
    driver.shutdown(Duration::from_secs(5));
    barcode
}

// ---------------------------------------------------------------------------------------------
// Hole 5: a huge Retry-After
// ---------------------------------------------------------------------------------------------

#[test]
fn a_huge_retry_after_is_clamped_and_the_flush_does_not_hammer() {
    for status in ["429 Too Many Requests", "503 Service Unavailable"] {
        let dir = tempfile::tempdir().expect("tempdir");
        signed_pod(dir.path(), &consignments(2));
        let hostile = Hostile::start(move |_| {
            respond(
                status,
                "Retry-After: 99999999999999\r\n",
                &error_body("rate_limited", "slow down"),
            )
        });
        let driver = open(dir.path(), hostile.endpoint());
        let before = Utc::now();
        let report = driver.flush_now().expect("flush does not fail or panic");
        assert_eq!(report.sent, 0, "{status}: {report:?}");
        assert_eq!(
            hostile.count("POST", "/pod"),
            1,
            "{status}: the flush must not hammer UPN: {:?}",
            hostile.requests()
        );
        let items = driver.outbox().expect("outbox reads back");
        assert_eq!(items.len(), 1, "{items:?}");
        let item = &items[0];
        assert_eq!(item.state, ItemState::Queued, "{status}: {item:?}");
        let next = item.next_attempt_at.expect("a next attempt");
        assert!(
            next <= before + chrono::Duration::hours(1) + chrono::Duration::seconds(5),
            "{status}: next attempt {next} is more than an hour out"
        );
        assert!(next > before, "{status}: the wait was honoured: {next}");
        // A second pass right away sends nothing: the item waits.
        driver.flush_now().expect("second flush");
        assert_eq!(hostile.count("POST", "/pod"), 1, "{status}");
    }
}

#[test]
fn a_retry_after_date_is_honoured_and_clamped_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    signed_pod(dir.path(), &consignments(1));
    let hostile = Hostile::start(|_| {
        respond(
            "503 Service Unavailable",
            "Retry-After: Fri, 31 Dec 2088 23:59:59 GMT\r\n",
            &error_body("unavailable", "later"),
        )
    });
    let driver = open(dir.path(), hostile.endpoint());
    let before = Utc::now();
    driver.flush_now().expect("flush");
    let next = driver.outbox().expect("outbox")[0]
        .next_attempt_at
        .expect("next attempt");
    assert!(next <= before + chrono::Duration::hours(1) + chrono::Duration::seconds(5));
    assert!(next >= before + chrono::Duration::minutes(59), "{next}");
}

// ---------------------------------------------------------------------------------------------
// Hole 6: instants out of range
// ---------------------------------------------------------------------------------------------

fn with_field(c: &WireConsignment, field: &str, value: &str) -> Value {
    let mut v = serde_json::to_value(c).unwrap();
    v[field] = Value::String(value.into());
    v
}

#[test]
fn a_consignment_with_a_bad_instant_is_refused_alone_and_later_imports_still_apply() {
    let cs = consignments(4);
    let first = feed(
        "v1",
        vec![
            with_field(&cs[0], "updated_at", "+10000-01-01T00:00:00Z"),
            serde_json::to_value(&cs[1]).unwrap(),
            with_field(&cs[2], "updated_at", "2150-06-01T00:00:00Z"),
            with_field(&cs[3], "barcode", "../../x"),
        ],
        vec![],
    );
    let good = cs[1].barcode.clone();
    let second = feed(
        "v2",
        vec![],
        vec![
            json!({"barcode": cs[0].barcode, "cancelled_at": "+10000-01-01T00:00:00Z"}),
            json!({"barcode": good, "cancelled_at": Utc::now(), "reason": "shipper"}),
        ],
    );
    let hostile = Hostile::start(move |r| {
        let body = if r.path.contains("since=v1") {
            &second
        } else {
            &first
        };
        respond("200 OK", "", body)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = open(dir.path(), hostile.endpoint());

    let report = driver.import_now().expect("the good record imports");
    assert_eq!(report.counts.added, 1, "{report:?}");
    assert_eq!(report.refused.len(), 3, "{report:?}");
    let reasons: Vec<&str> = report.refused.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("updated_at")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("barcode")), "{reasons:?}");
    assert!(
        report
            .refused
            .iter()
            .all(|r| r.barcode.as_deref() != Some("../../x")),
        "an invalid barcode is not echoed: {report:?}"
    );
    let stops = driver.stops().expect("the stop list reads");
    assert_eq!(stops.len(), 1);

    let report = driver.import_now().expect("later imports still work");
    assert_eq!(report.counts.cancelled, 1, "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    let detail = driver.consignment(&good).expect("detail reads");
    assert!(detail.consignment.cancelled.is_some(), "{detail:?}");
    assert_eq!(driver.stops().expect("stops read").len(), 1);
    // And once more: the stored state (cursor included) is readable.
    driver.import_now().expect("a third import");
}

#[test]
fn a_feed_whose_own_server_time_is_out_of_range_changes_nothing() {
    let cs = consignments(2);
    let mut body: Value = serde_json::from_str(&good_feed(&cs)).unwrap();
    body["server_time"] = Value::String("2999-01-01T00:00:00Z".into());
    let body = body.to_string();
    let hostile = Hostile::start(move |_| respond("200 OK", "", &body));
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = open(dir.path(), hostile.endpoint());
    match driver.import_now() {
        Err(Error::Upn(UpnError::BadResponse { reason })) => {
            assert!(reason.contains("server_time"), "{reason}")
        }
        other => panic!("expected a bad response, got {other:?}"),
    }
    assert!(driver.stops().expect("stops").is_empty());
}

#[test]
fn the_wire_feed_keeps_good_records_of_a_bad_response() {
    let cs = consignments(2);
    let body = feed(
        "v9",
        vec![
            with_field(&cs[0], "updated_at", "+275760-09-13T00:00:00Z"),
            serde_json::to_value(&cs[1]).unwrap(),
            json!({"barcode": "X1"}),
        ],
        vec![json!("not an object")],
    );
    let parsed: ConsignmentFeed = serde_json::from_str(&body).expect("the feed itself reads");
    assert_eq!(
        serde_json::to_value(&parsed.consignments).unwrap(),
        serde_json::to_value(vec![cs[1].clone()]).unwrap()
    );
    assert_eq!(parsed.refused.len(), 3, "{:?}", parsed.refused);
    assert!(parsed.refused[1].reason.contains("missing field"));
    assert_eq!(parsed.refused[2].kind, "cancellation");
    assert_eq!(parsed.cursor, "v9");
}

// ---------------------------------------------------------------------------------------------
// Hole 10: the API key never leaves the origin
// ---------------------------------------------------------------------------------------------

#[test]
fn redirects_are_refused_and_never_followed() {
    let elsewhere = Hostile::start(|_| respond("200 OK", "", "{}"));
    let target = elsewhere.endpoint();
    let cs = consignments(2);
    let body = good_feed(&cs);
    let hostile = Hostile::start(move |r| {
        if r.is("GET", "/consignments") {
            respond("200 OK", "", &body)
        } else if r.is("GET", "/tracking-events") {
            respond(
                "302 Found",
                &format!("Location: {target}{}\r\n", r.path),
                "",
            )
        } else {
            respond(
                "307 Temporary Redirect",
                &format!("Location: {target}{}\r\n", r.path),
                "",
            )
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = open(dir.path(), hostile.endpoint());
    driver.import_now().expect("import");
    driver
        .sign(
            &cs[0].barcode,
            &signature(2),
            "R. Edirect",
            Utc::now(),
            None,
        )
        .expect("sign");

    driver.flush_now().expect("flush");
    let item = &driver.outbox().expect("outbox")[0];
    assert_eq!(item.state, ItemState::NeedsAttention, "{item:?}");
    assert!(
        item.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("redirect"),
        "{item:?}"
    );

    let pulled = driver.pull_tracking_now();
    let text = format!("{pulled:?}");
    assert!(text.contains("Redirected"), "{text}");
    assert_eq!(
        hostile.count("GET", "/tracking-events"),
        1,
        "a redirected consuming GET is not re-issued"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the other origin saw requests: {:?}",
        elsewhere.requests()
    );
    // The origin itself did get the key, as it should.
    assert!(hostile.requests().iter().all(|r| r.head.contains(KEY)));
}

#[test]
fn a_server_message_that_echoes_the_key_is_scrubbed_everywhere() {
    let cs = consignments(1);
    let body = good_feed(&cs);
    let echo = error_body(
        "invalid_request",
        &format!("signature rejected for api key {KEY}; key={KEY}"),
    );
    let hostile = Hostile::start(move |r| {
        if r.is("GET", "/consignments") && r.path.contains("since") {
            respond("400 Bad Request", "", &echo)
        } else if r.is("GET", "/consignments") {
            respond("200 OK", "", &body)
        } else {
            respond("400 Bad Request", "", &echo)
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let driver = open(dir.path(), hostile.endpoint());
    driver.import_now().expect("first import");
    let err = driver
        .import_now()
        .expect_err("the second import is refused");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(KEY), "the key leaked into the error: {text}");
    assert!(text.contains("<redacted>"), "{text}");

    driver
        .sign(&cs[0].barcode, &signature(3), "E. Cho", Utc::now(), None)
        .expect("sign");
    driver.flush_now().expect("flush");
    let item = &driver.outbox().expect("outbox")[0];
    assert_eq!(item.state, ItemState::NeedsAttention, "{item:?}");
    let stored = item.last_error.clone().unwrap_or_default();
    assert!(!stored.contains(KEY), "the key was stored: {stored}");
    assert!(stored.contains("<redacted>"), "{stored}");
    driver.shutdown(Duration::from_secs(5));

    // Nothing in the data folder holds the key.
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "{} holds the API key",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Hole 13: bad configuration is bad input, and nothing is sent
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_configuration_is_refused_as_invalid_input_before_anything_is_sent() {
    let listener = Hostile::start(|_| respond("200 OK", "", "{}"));
    let endpoint = listener.endpoint();
    let file = tempfile::NamedTempFile::new().expect("file");
    let cases: Vec<(&str, UpnConfig, Option<std::path::PathBuf>)> = vec![
        (
            "depot",
            UpnConfig {
                depot: "../../x".into(),
                ..config(endpoint.clone())
            },
            None,
        ),
        (
            "depot",
            UpnConfig {
                depot: "042?x=1".into(),
                ..config(endpoint.clone())
            },
            None,
        ),
        (
            "depot",
            UpnConfig {
                depot: "".into(),
                ..config(endpoint.clone())
            },
            None,
        ),
        ("endpoint", config("ftp://127.0.0.1/".into()), None),
        ("endpoint", config("http://upn.example.com".into()), None),
        ("endpoint", config("http://10.0.0.1:8080".into()), None),
        (
            "endpoint",
            config(format!("http://user:pw@{}", listener.addr)),
            None,
        ),
        ("endpoint", config("not a url".into()), None),
        (
            "api key",
            UpnConfig {
                api_key: ApiKey::new(format!("{KEY}\n")),
                ..config(endpoint.clone())
            },
            None,
        ),
        (
            "api key",
            UpnConfig {
                api_key: ApiKey::new("two words"),
                ..config(endpoint.clone())
            },
            None,
        ),
        (
            "data_dir",
            config(endpoint.clone()),
            Some(file.path().to_path_buf()),
        ),
    ];
    for (field, upn, dir) in cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.unwrap_or_else(|| tmp.path().join("data"));
        match Driver::open(DriverConfig::new(data_dir.clone(), upn.clone())) {
            Err(Error::InvalidInput { field: f, reason }) => {
                assert_eq!(f, field, "{upn:?}: {reason}");
                assert!(!reason.contains(KEY), "{reason}");
            }
            other => panic!("{field}: expected invalid input for {upn:?}, got {other:?}"),
        }
        if data_dir != file.path() {
            assert!(
                !data_dir.exists(),
                "{field}: a refused open created {data_dir:?}"
            );
        }
    }
    // Loopback http and localhost are fine.
    for ok in [
        endpoint.clone(),
        format!("http://localhost:{}", listener.addr.port()),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        open(tmp.path(), ok);
    }
    assert!(listener.requests().is_empty(), "{:?}", listener.requests());
}
