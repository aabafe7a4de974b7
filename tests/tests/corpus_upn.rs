//! The bad-input corpus against UPN's side (issue 13, item 4): every body of
//! `tests/corpus/upn/` served by a loopback server to the import, the tracking pull and the
//! flush, plus 1 GB bodies streamed and never read to the end. Each case gets its typed error;
//! the store is unchanged except for what a promise says must be kept (a consumed tracking body
//! goes to the inbox, marked failed; a failed send records its attempt).

mod common;

use std::sync::Arc;

use chrono::Utc;
use common::{snapshot, Snapshot};
use upn_core::digest::sha256_hex;
use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::upn::{ApiKey, UpnConfig, UpnError};
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::corpus;
use upn_e2e::corpus_upn::{good_feed, UpnExpect, BARCODES, SERVER_TIME, UPN_CASES};
use upn_e2e::serve::{Reply, Request, Server};
use upn_e2e::{photo, signature};

const GIB: u64 = 1024 * 1024 * 1024;
/// Tables a failed network call may write: its diagnostics (last attempt, last error).
const DIAGNOSTICS: &[&str] = &["sync_state"];

fn read(file: &str) -> Vec<u8> {
    std::fs::read(corpus::dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn ok(body: Vec<u8>) -> Reply {
    Reply::Json("200 OK", body)
}

fn empty_batch() -> Vec<u8> {
    format!("{{\"server_time\":\"{SERVER_TIME}\",\"events\":[],\"remaining\":0}}").into_bytes()
}

fn pod_receipt() -> Vec<u8> {
    read("upn/pod-receipt.json")
}

/// What the hostile server answers on each route; `None`: a good answer.
#[derive(Clone, Default)]
struct Answers {
    feed_since: Option<Arc<dyn Fn() -> Reply + Send + Sync>>,
    tracking: Option<Arc<dyn Fn() -> Reply + Send + Sync>>,
    pod: Option<Arc<dyn Fn() -> Reply + Send + Sync>>,
    image: Option<Arc<dyn Fn() -> Reply + Send + Sync>>,
}

fn answering(body: Vec<u8>) -> Option<Arc<dyn Fn() -> Reply + Send + Sync>> {
    Some(Arc::new(move || ok(body.clone())))
}

fn streaming(claimed_length: Option<u64>) -> Option<Arc<dyn Fn() -> Reply + Send + Sync>> {
    Some(Arc::new(move || Reply::Stream {
        piece: vec![b' '; 64 * 1024],
        limit: GIB,
        claimed_length,
    }))
}

/// A server answering as `a` says, and a driver on a fresh folder that imported the good feed.
struct Rig {
    server: Server,
    driver: Driver,
    dir: tempfile::TempDir,
}

fn rig(a: Answers) -> Rig {
    let server = Server::start(move |r: &Request| {
        let hostile = if r.is("GET", "/consignments") {
            if !r.path.contains("since=") {
                return ok(good_feed());
            }
            &a.feed_since
        } else if r.is("GET", "/tracking-events") {
            &a.tracking
        } else if r.is("POST", "/pod") {
            &a.pod
        } else {
            &a.image
        };
        match hostile {
            Some(reply) => reply(),
            None if r.is("POST", "/pod") => ok(pod_receipt()),
            None if r.is("GET", "/tracking-events") => ok(empty_batch()),
            None => ok(good_feed()),
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let upn = UpnConfig {
        endpoint: server.endpoint(),
        depot: "042".into(),
        api_key: ApiKey::new("corpus-test-key"),
    };
    let driver = Driver::open(DriverConfig::new(dir.path().to_path_buf(), upn)).expect("open");
    driver.import_now().expect("the good import");
    Rig {
        server,
        driver,
        dir,
    }
}

impl Rig {
    fn snapshot(&self) -> Snapshot {
        snapshot(self.dir.path())
    }
}

fn bad_response(case: &str, result: Result<impl std::fmt::Debug, Error>, reason: &str) {
    match result {
        Err(Error::Upn(UpnError::BadResponse { reason: r })) => {
            assert!(r.contains(reason), "{case}: {r:?} lacks {reason:?}")
        }
        other => panic!("{case}: expected a bad response, got {other:?}"),
    }
}

/// The whole feed refused: nothing but the import's diagnostics changed.
fn feed_refused(case: &str, a: Answers, reason: &str) -> Rig {
    let rig = rig(a);
    let before = rig.snapshot();
    bad_response(case, rig.driver.import_now(), reason);
    let after = rig.snapshot();
    assert_eq!(
        after.without(DIAGNOSTICS),
        before.without(DIAGNOSTICS),
        "{case}"
    );
    assert_eq!(
        after.table("consignments"),
        before.table("consignments"),
        "{case}"
    );
    rig
}

fn feed_records_refused(case: &str, body: Vec<u8>, applied: usize, reasons: &[&str]) {
    let rig = rig(Answers {
        feed_since: answering(body),
        ..Answers::default()
    });
    let before = rig.driver.stops().expect("stops").len();
    let report = rig.driver.import_now().expect("the good records apply");
    assert_eq!(report.counts.added as usize, applied, "{case}: {report:?}");
    assert_eq!(rig.driver.stops().expect("stops").len(), before + applied);
    let got: Vec<&str> = report.refused.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(got.len(), reasons.len(), "{case}: {got:?}");
    for (r, want) in got.iter().zip(reasons) {
        assert!(r.contains(want), "{case}: {r:?} lacks {want:?}");
    }
}

/// The body is in the inbox, byte for byte, marked failed with the reason; nothing else changed.
fn tracking_failed(case: &str, body: Vec<u8>, reason: &str) {
    let rig = rig(Answers {
        tracking: answering(body.clone()),
        ..Answers::default()
    });
    let before = rig.snapshot();
    let report = rig
        .driver
        .pull_tracking_now()
        .expect("the pull itself works");
    assert_eq!(report.failed_batches, 1, "{case}: {report:?}");
    assert_eq!(report.applied, 0, "{case}");
    let after = rig.snapshot();
    let changed = ["tracking_inbox", "tracking_bodies", "sync_state"];
    assert_eq!(after.without(&changed), before.without(&changed), "{case}");
    let inbox = after.table("tracking_inbox");
    assert_eq!(
        inbox.len(),
        before.table("tracking_inbox").len() + 1,
        "{case}"
    );
    let row = inbox.last().expect("the new row");
    let kept = after.table("tracking_bodies").last().expect("its body");
    assert!(
        kept.contains(&format!("blob:{}:{}", body.len(), sha256_hex(&body))),
        "{case}: the body is not kept as read: {kept}"
    );
    assert!(row.contains("\"failed\""), "{case}: {row}");
    assert!(row.contains(reason), "{case}: {row} lacks {reason:?}");
}

fn tracking_events_kept_aside(case: &str, body: Vec<u8>, applied: usize, reasons: &[&str]) {
    let rig = rig(Answers {
        tracking: answering(body),
        ..Answers::default()
    });
    let report = rig.driver.pull_tracking_now().expect("pull");
    let kept = rig.driver.malformed_events().expect("kept aside");
    assert_eq!(
        report.applied as usize, applied,
        "{case}: {report:?} {kept:?}"
    );
    let got: Vec<(u32, &str)> = kept
        .iter()
        .map(|m| (m.position, m.reason.as_str()))
        .collect();
    assert_eq!(got.len(), reasons.len(), "{case}: {got:?}");
    for ((position, r), (i, want)) in got.iter().zip(reasons.iter().enumerate()) {
        assert_eq!(*position as usize, applied + i, "{case}: {got:?}");
        assert!(r.contains(want), "{case}: {r:?} lacks {want:?}");
    }
    let events = rig.snapshot().table("tracking_events").len();
    assert_eq!(events, applied, "{case}");
}

/// A POD (and, for images, a photo) whose receipt is unreadable: not sent, queued again with
/// the reason, nothing recorded as UPN's reference.
fn receipt_refused(case: &str, image: bool, a: Answers, reason: &str) -> Rig {
    let rig = rig(a);
    let now = Utc::now();
    let b = BARCODES[0];
    rig.driver
        .sign(b, &signature(1), "R. Eceipt", now, None)
        .expect("sign");
    if image {
        rig.driver
            .add_photo(b, &photo(1), CaptureKind::Goods, now, None)
            .expect("photo");
    }
    rig.driver.flush_now().expect("the flush itself works");
    let captures = rig.driver.captures(b).expect("captures");
    let refused = captures
        .iter()
        .find(|c| (c.kind != CaptureKind::Pod) == image)
        .expect("the capture");
    assert_eq!(refused.state, ItemState::Queued, "{case}: {refused:?}");
    assert_eq!(refused.upn_reference, None, "{case}");
    assert_eq!(refused.attempts, 1, "{case}");
    let error = refused.last_error.clone().unwrap_or_default();
    assert!(error.contains(reason), "{case}: {error:?} lacks {reason:?}");
    if image {
        let pod = captures.iter().find(|c| c.kind == CaptureKind::Pod);
        assert_eq!(pod.map(|p| p.state), Some(ItemState::Sent), "{case}");
    }
    rig
}

#[test]
fn every_upn_case_gets_its_typed_error_and_changes_only_what_it_must() {
    for case in UPN_CASES {
        let body = read(case.file);
        let name = case.file;
        match case.expect {
            UpnExpect::FeedRefused(reason) => {
                let a = Answers {
                    feed_since: answering(body),
                    ..Answers::default()
                };
                feed_refused(name, a, reason);
            }
            UpnExpect::FeedRecordsRefused { applied, reasons } => {
                feed_records_refused(name, body, applied, reasons)
            }
            UpnExpect::TrackingFailed(reason) => tracking_failed(name, body, reason),
            UpnExpect::TrackingEventsKeptAside { applied, reasons } => {
                tracking_events_kept_aside(name, body, applied, reasons)
            }
            UpnExpect::PodReceiptRefused(reason) => {
                let a = Answers {
                    pod: answering(body),
                    ..Answers::default()
                };
                receipt_refused(name, false, a, reason);
            }
            UpnExpect::ImageReceiptRefused(reason) => {
                let a = Answers {
                    image: answering(body),
                    ..Answers::default()
                };
                receipt_refused(name, true, a, reason);
            }
        }
    }
}

/// Far less than the 1 GB on offer: the 64 MiB cap plus what socket buffers hold.
fn assert_stopped_early(case: &str, server: &Server, at_most: u64) {
    let sent = server.streamed();
    assert!(sent <= at_most, "{case}: the client took {sent} bytes");
}

#[test]
fn a_1_gb_feed_is_refused_without_reading_it_all() {
    let limit = "exceeds the 67108864-byte limit";
    let rig = feed_refused(
        "1 GB feed",
        Answers {
            feed_since: streaming(None),
            ..Answers::default()
        },
        limit,
    );
    assert_stopped_early("1 GB feed", &rig.server, 96 * 1024 * 1024);
    // A body that says it is 1 GB is refused on its header.
    let claimed = Answers {
        feed_since: streaming(Some(GIB)),
        ..Answers::default()
    };
    let rig = feed_refused(
        "1 GB claimed",
        claimed,
        "response of 1073741824 bytes exceeds",
    );
    assert_stopped_early("1 GB claimed", &rig.server, 16 * 1024 * 1024);
}

#[test]
fn a_1_gb_tracking_body_is_refused_without_reading_it_all_and_the_inbox_is_untouched() {
    for (case, claimed) in [("streamed", None), ("claimed", Some(GIB))] {
        let rig = rig(Answers {
            tracking: streaming(claimed),
            ..Answers::default()
        });
        let before = rig.snapshot();
        bad_response(
            case,
            rig.driver.pull_tracking_now(),
            "exceeds the 67108864-byte limit",
        );
        assert_stopped_early(case, &rig.server, 96 * 1024 * 1024);
        let after = rig.snapshot();
        assert_eq!(
            after.without(DIAGNOSTICS),
            before.without(DIAGNOSTICS),
            "{case}"
        );
    }
}

#[test]
fn a_1_gb_receipt_is_refused_without_reading_it_all() {
    let a = Answers {
        pod: streaming(None),
        ..Answers::default()
    };
    let rig = receipt_refused("1 GB receipt", false, a, "exceeds the 67108864-byte limit");
    assert_stopped_early("1 GB receipt", &rig.server, 96 * 1024 * 1024);
    assert_eq!(rig.server.count("POST", "/pod"), 1);
}
