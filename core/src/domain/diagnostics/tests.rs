use chrono::TimeZone;

use super::*;
use crate::domain::capture::GpsFix;
use crate::domain::invoice::{MatchedLine, NearMiss, NearMissReason};
use crate::domain::outbox::{AccountPause, Pause};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn minutes_ago(m: i64) -> DateTime<Utc> {
    now() - Duration::minutes(m)
}

fn healthy() -> Facts {
    Facts {
        now: now(),
        limits: Limits::default(),
        barcode: None,
        import: ImportFacts {
            last_success: Some(minutes_ago(2)),
            last_failure: None,
            consignments: 3,
        },
        tracking: TrackingFacts {
            last_success: Some(minutes_ago(3)),
            ..TrackingFacts::default()
        },
        connectivity: Connectivity {
            online: Some(true),
            offline_since: None,
        },
        pauses: Pauses::default(),
        clock_offset_ms: Some(400),
        consignments: vec![],
        invoice: None,
    }
}

fn item(kind: CaptureKind, state: ItemState) -> OutboxItem {
    OutboxItem {
        id: format!("{:?}-{:?}", kind, state).to_lowercase(),
        barcode: "UPN0001".into(),
        kind,
        state,
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        reason: None,
        captured_at: minutes_ago(20),
        bytes: 1000,
        sent_at: None,
        upn_reference: None,
    }
}

/// A delivery point in Birmingham, and a fix `metres_north` of it.
fn stop(pod: Option<OutboxItem>, photos: Vec<OutboxItem>, metres_north: f64) -> ConsignmentFacts {
    let point = Point::new(-1.8904, 52.4862);
    let fix = |captured: DateTime<Utc>, age_min: i64| CheckedFix {
        fix: GpsFix::new(
            52.4862 + metres_north / 111_195.0,
            -1.8904,
            8.0,
            captured - Duration::minutes(age_min),
        ),
        stale: age_min >= 30,
        ahead_ms: 0,
    };
    ConsignmentFacts {
        barcode: "UPN0001".into(),
        delivery_point: point,
        cancelled: false,
        delivered: false,
        pod: pod.map(|item| CaptureFacts {
            fix: Some(fix(item.captured_at, 1)),
            clock_offset_ms: Some(500),
            item,
        }),
        photos: photos
            .into_iter()
            .map(|item| CaptureFacts {
                fix: Some(fix(item.captured_at, 45)),
                clock_offset_ms: None,
                item,
            })
            .collect(),
    }
}

fn status(d: &Diagnosis, id: CheckId) -> CheckStatus {
    d.check(id).unwrap().status
}

#[test]
fn a_healthy_device_is_ok_on_every_check_and_every_row_is_there() {
    let d = diagnose(&healthy());
    assert_eq!(d.worst(), CheckStatus::Ok, "{d:#?}");
    let ids: Vec<_> = d.checks.iter().map(|c| c.id.code()).collect();
    assert_eq!(
        ids,
        [
            "consignments_import",
            "tracking",
            "pod",
            "images",
            "invoice",
            "geofence",
            "gps_fix",
            "device_clock"
        ]
    );
    assert!(d.checks.iter().all(|c| !c.evidence.is_empty()));
}

#[test]
fn import_refusals_are_problems_with_the_action_to_take() {
    for (code, words) in [
        ("unauthorized", "credentials"),
        ("integration_disabled", "Configuration → Integrations"),
    ] {
        let mut f = healthy();
        f.import.last_failure = Some(LastFailure {
            code: code.into(),
            message: "UPN said no".into(),
            at: minutes_ago(1),
        });
        let d = diagnose(&f);
        let c = d.check(CheckId::ConsignmentsImport).unwrap();
        assert_eq!(c.status, CheckStatus::Problem);
        assert!(c.action.as_deref().unwrap().contains(words), "{c:#?}");
        assert!(c.evidence.iter().any(|e| e.value.contains("UPN said no")));
    }
    let mut f = healthy();
    f.import.last_success = None;
    assert_eq!(
        status(&diagnose(&f), CheckId::ConsignmentsImport),
        CheckStatus::Warning
    );
}

#[test]
fn tracking_follows_the_ten_and_fifteen_minute_rule() {
    for (age, expected) in [
        (9, CheckStatus::Ok),
        (12, CheckStatus::Warning),
        (16, CheckStatus::Problem),
    ] {
        let mut f = healthy();
        f.tracking.last_success = Some(minutes_ago(age));
        assert_eq!(
            status(&diagnose(&f), CheckId::Tracking),
            expected,
            "{age} min"
        );
    }
    let mut f = healthy();
    f.tracking.action_disabled = true;
    let d = diagnose(&f);
    let c = d.check(CheckId::Tracking).unwrap();
    assert_eq!(c.status, CheckStatus::Problem);
    assert!(c.action.as_deref().unwrap().contains("tracking action"));
    let mut f = healthy();
    f.tracking.malformed_events = 2;
    f.tracking.failed_batches = 1;
    let d = diagnose(&f);
    assert_eq!(status(&d, CheckId::Tracking), CheckStatus::Warning);
    assert!(d
        .check(CheckId::Tracking)
        .unwrap()
        .summary
        .contains("2 event(s)"));
}

#[test]
fn a_pod_not_in_upn_says_why_unsigned_queued_offline_paused_or_refused() {
    // Not signed (asked about one consignment).
    let mut f = healthy();
    f.barcode = Some("UPN0001".into());
    f.consignments = vec![stop(None, vec![], 0.0)];
    let c = diagnose(&f).check(CheckId::Pod).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Warning);
    assert!(c.summary.contains("no signature"), "{c:#?}");

    // Signed, still queued after attempts, with the last error and the next attempt.
    let mut pod = item(CaptureKind::Pod, ItemState::Queued);
    pod.attempts = 3;
    pod.last_error = Some("UPN failed (503)".into());
    pod.next_attempt_at = Some(now() + Duration::minutes(2));
    f.consignments = vec![stop(Some(pod.clone()), vec![], 0.0)];
    let c = diagnose(&f).check(CheckId::Pod).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Warning);
    assert!(c.summary.contains("3 attempt(s)"));
    let evidence = &c
        .evidence
        .iter()
        .find(|e| e.label.contains("queued"))
        .unwrap()
        .value;
    assert!(
        evidence.contains("UPN failed (503)") && evidence.contains("next attempt"),
        "{evidence}"
    );

    // Offline since.
    f.connectivity = Connectivity {
        online: Some(false),
        offline_since: Some(minutes_ago(40)),
    };
    let c = diagnose(&f).check(CheckId::Pod).cloned().unwrap();
    assert!(c.summary.contains("offline"));
    assert!(c
        .evidence
        .iter()
        .any(|e| e.label == "device offline since" && e.value.contains("40 min ago")));

    // Paused by an account refusal: a problem, whatever else.
    f.pauses.outbox = Some(Pause {
        reason: AccountPause::IntegrationDisabled,
        message: "the UPN integration is not enabled".into(),
        since: minutes_ago(5),
        probes: 1,
        next_probe_at: None,
        wait_ms: None,
    });
    let c = diagnose(&f).check(CheckId::Pod).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Problem);
    assert!(c.action.unwrap().contains("enable the UPN integration"));

    // Needs attention with UPN's reason.
    let mut f = healthy();
    let mut pod = item(CaptureKind::Pod, ItemState::NeedsAttention);
    pod.last_error = Some("UPN already holds a POD for this consignment (409)".into());
    f.consignments = vec![stop(Some(pod), vec![], 0.0)];
    let c = diagnose(&f).check(CheckId::Pod).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Problem);
    assert!(c.summary.contains("409"));
    assert!(c.action.unwrap().contains("retry"));
}

#[test]
fn images_wait_for_a_signature_and_a_disabled_image_action_is_a_problem() {
    let mut f = healthy();
    f.consignments = vec![stop(
        None,
        vec![item(CaptureKind::Goods, ItemState::Waiting)],
        0.0,
    )];
    let c = diagnose(&f).check(CheckId::Images).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Warning);
    assert!(
        c.summary
            .contains("only sent to UPN once a signature exists"),
        "{c:#?}"
    );

    f.pauses.images = Some(Pause {
        reason: AccountPause::ImageActionDisabled,
        message: "image action not enabled".into(),
        since: minutes_ago(5),
        probes: 2,
        next_probe_at: None,
        wait_ms: None,
    });
    let c = diagnose(&f).check(CheckId::Images).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Problem);
    assert!(c.action.unwrap().contains("image action"));
}

#[test]
fn photos_held_by_the_data_saver_are_named_as_the_cause_and_not_a_problem() {
    use crate::domain::reason::OutboxReason;
    let mut f = healthy();
    let held = |reason| OutboxItem {
        reason: Some(reason),
        ..item(CaptureKind::Goods, ItemState::Queued)
    };
    let pod = Some(item(CaptureKind::Pod, ItemState::Sent));
    for (reason, why) in [
        (OutboxReason::HeldUntilUnmetered, "only on Wi-Fi"),
        (OutboxReason::HeldByBudget, "budget"),
    ] {
        f.consignments = vec![stop(pod.clone(), vec![held(reason)], 0.0)];
        let c = diagnose(&f).check(CheckId::Images).cloned().unwrap();
        assert_eq!(c.status, CheckStatus::Warning, "not a problem: {c:#?}");
        assert!(c.summary.contains("held by the data saver"), "{c:#?}");
        assert!(c.summary.contains(why), "{c:#?}");
        assert!(c.action.unwrap().contains("data saver"));
    }
}

#[test]
fn a_pod_far_from_the_address_is_flagged_at_the_configured_distance() {
    let sent = || {
        let mut pod = item(CaptureKind::Pod, ItemState::Sent);
        pod.sent_at = Some(minutes_ago(10));
        pod
    };
    let mut f = healthy();
    f.consignments = vec![stop(Some(sent()), vec![], 200.0)];
    assert_eq!(status(&diagnose(&f), CheckId::Geofence), CheckStatus::Ok);
    f.consignments = vec![stop(Some(sent()), vec![], 300.0)];
    let c = diagnose(&f).check(CheckId::Geofence).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Warning);
    assert!(c.summary.contains("300 m"), "{}", c.summary);
    f.limits.geofence_m = 500.0;
    assert_eq!(status(&diagnose(&f), CheckId::Geofence), CheckStatus::Ok);
}

#[test]
fn haversine_matches_a_known_distance() {
    // London (51.5074, -0.1278) to Birmingham (52.4862, -1.8904): about 163 km.
    let d = distance_m(Point::new(-0.1278, 51.5074), Point::new(-1.8904, 52.4862));
    assert!((d - 163_000.0).abs() < 1_500.0, "{d}");
    assert_eq!(distance_m(Point::new(1.0, 1.0), Point::new(1.0, 1.0)), 0.0);
}

#[test]
fn a_stale_fix_and_a_skewed_clock_are_warnings() {
    let mut f = healthy();
    f.consignments = vec![stop(
        None,
        vec![item(CaptureKind::Goods, ItemState::Waiting)],
        0.0,
    )];
    let c = diagnose(&f).check(CheckId::GpsFix).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Warning);
    assert!(c.summary.contains("45 minutes old"), "{}", c.summary);

    let mut f = healthy();
    f.clock_offset_ms = Some(-(3 * 60 * 1000));
    let c = diagnose(&f).check(CheckId::DeviceClock).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Warning);
    assert!(c.summary.contains("180.0 s behind"), "{}", c.summary);
    f.clock_offset_ms = Some(119_000);
    assert_eq!(status(&diagnose(&f), CheckId::DeviceClock), CheckStatus::Ok);
}

#[test]
fn invoice_near_misses_and_unmatched_lines_are_warnings_naming_the_line() {
    let mut f = healthy();
    f.invoice = Some(InvoiceMatch {
        matched: vec![MatchedLine {
            line: 2,
            barcode: "UPN0001".into(),
        }],
        near_misses: vec![NearMiss {
            line: 3,
            barcode: "upn0001".into(),
            candidate: "UPN0001".into(),
            reason: NearMissReason::Case,
        }],
        unmatched: vec![MatchedLine {
            line: 4,
            barcode: "ZZZ".into(),
        }],
    });
    let c = diagnose(&f).check(CheckId::Invoice).cloned().unwrap();
    assert_eq!(c.status, CheckStatus::Warning);
    assert!(c.summary.contains("line 3"), "{}", c.summary);
    assert!(c.evidence.iter().any(|e| e.label == "line 4"));
    // Asked about one consignment: only its lines count.
    f.barcode = Some("UPN0002".into());
    assert_eq!(status(&diagnose(&f), CheckId::Invoice), CheckStatus::Ok);
}
