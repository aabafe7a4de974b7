//! The bad-input corpus against the capture API (issue 13, item 4): every file of
//! `tests/corpus/images/` through `add_photo` and `sign`, names, GPS fixes, capture times and
//! barcodes. Each refused case gets its typed error, and the database and the data folder are
//! exactly as before the call.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::snapshot;
use upn_core::clock::{Clock, ManualClock};
use upn_core::domain::capture::GpsFix;
use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::media::{self, MediaLimits};
use upn_core::Error;
use upn_e2e::corpus::{self, Expect, FieldExpect, FixTime, Refusal, IMAGE_CASES};
use upn_e2e::{
    driver_with_clock, flush_until_empty, manual_clock, photo, signature, sim, TestDriver,
};
use upn_sim::{NewEvent, SimConfig, SimHandle};

fn setup(consignments: usize) -> (SimHandle, std::sync::Arc<ManualClock>, TestDriver) {
    let sim = sim(SimConfig {
        seed: 13,
        consignments,
        ..SimConfig::default()
    });
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    (sim, clock, t)
}

fn barcode(sim: &SimHandle, i: usize) -> String {
    sim.consignments()[i].barcode.clone()
}

/// Asserts `result` is `InvalidInput` for `field` with a reason containing `reason`.
fn assert_invalid<T: std::fmt::Debug>(
    case: &str,
    result: upn_core::Result<T>,
    field: &str,
    reason: &str,
) {
    match result {
        Err(Error::InvalidInput {
            field: f,
            reason: r,
        }) => {
            assert_eq!(f, field, "{case}: {r}");
            assert!(r.contains(reason), "{case}: {r:?} lacks {reason:?}");
        }
        other => panic!("{case}: expected invalid {field}, got {other:?}"),
    }
}

/// Runs `call`; when `refused` is `Some`, asserts the typed refusal and that nothing changed.
fn check<T: std::fmt::Debug>(
    t: &TestDriver,
    case: &str,
    refused: Option<(&str, &str)>,
    call: impl FnOnce() -> upn_core::Result<T>,
) -> Option<T> {
    // A photo accepted before is rendered in the background: let that finish first.
    t.driver.render_pending().expect("render pending");
    let before = snapshot(t.data.path());
    let result = call();
    match refused {
        Some((field, reason)) => {
            assert_invalid(case, result, field, reason);
            assert_eq!(snapshot(t.data.path()), before, "{case}: the store changed");
            None
        }
        None => Some(result.unwrap_or_else(|e| panic!("{case}: refused: {e}"))),
    }
}

fn read(file: &str) -> Vec<u8> {
    let path = corpus::dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn refusal(field: &'static str, e: Expect) -> Option<(&'static str, &'static str)> {
    match e {
        Expect::Accepted | Expect::RenderFails(_) => None,
        Expect::Refused(reason) => Some((field, reason)),
    }
}

#[test]
fn corpus_files_are_what_the_generator_makes() {
    let bless = std::env::var_os("UPN_CORPUS_BLESS").is_some();
    let files = corpus::files();
    for (name, bytes) in &files {
        let path = corpus::dir().join(name);
        if bless {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, bytes).expect("write");
        }
        let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{name}: {e}; run with UPN_CORPUS_BLESS=1 to write the corpus")
        });
        assert!(
            on_disk == *bytes,
            "{name} differs from what the generator makes"
        );
    }
    // Nothing in the corpus the generator does not know (README.md aside).
    assert!(corpus::dir().join("README.md").is_file());
    for sub in ["images", "upn"] {
        for entry in std::fs::read_dir(corpus::dir().join(sub))
            .expect("corpus dir")
            .flatten()
        {
            let name = format!("{sub}/{}", entry.file_name().to_string_lossy());
            assert!(
                files.iter().any(|(n, _)| *n == name),
                "{name} is not generated"
            );
        }
    }
    // Every image case names a corpus file (generated, or a fuzz finding kept verbatim), and
    // every finding is a case.
    for case in IMAGE_CASES {
        let generated = files.iter().any(|(n, _)| n == case.file);
        assert!(
            generated || case.file.starts_with("findings/"),
            "{}",
            case.file
        );
        assert!(corpus::dir().join(case.file).is_file(), "{}", case.file);
    }
    for entry in std::fs::read_dir(corpus::dir().join("findings"))
        .expect("findings")
        .flatten()
    {
        let name = format!("findings/{}", entry.file_name().to_string_lossy());
        assert!(
            IMAGE_CASES.iter().any(|c| c.file == name),
            "{name} is no case"
        );
    }
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(total < 1024 * 1024, "the corpus is {total} bytes");
}

#[test]
fn every_image_case_gets_its_typed_error_and_changes_nothing() {
    let (sim, clock, t) = setup(2);
    let b = barcode(&sim, 0);
    for case in IMAGE_CASES {
        let bytes = read(case.file);
        if let Some(e) = case.photo {
            let item = check(&t, case.file, refusal("photo", e), || {
                t.driver
                    .add_photo(&b, &bytes, CaptureKind::Goods, clock.now(), None)
            });
            if let (Expect::RenderFails(reason), Some(item)) = (e, item) {
                assert_render_failed(&t, case.file, &item.id, reason);
            }
        }
        if let Some(e) = case.signature {
            check(&t, case.file, refusal("signature", e), || {
                t.driver.sign(&b, &bytes, "A. Signer", clock.now(), None)
            });
        }
    }
}

/// A photo accepted at capture whose background rendition fails: needs attention with the
/// reason, at once (no flush).
fn assert_render_failed(t: &TestDriver, case: &str, id: &str, reason: &str) {
    t.driver.render_pending().expect("render");
    let item = t
        .driver
        .outbox()
        .expect("outbox")
        .into_iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("{case}: not in the outbox"));
    assert_eq!(item.state, ItemState::NeedsAttention, "{case}: {item:?}");
    let error = item.last_error.unwrap_or_default();
    assert!(error.contains(reason), "{case}: {error}");
}

#[test]
fn a_40_mb_photo_or_signature_is_refused_as_too_large_and_changes_nothing() {
    let (sim, clock, t) = setup(1);
    let b = barcode(&sim, 0);
    let huge = corpus::photo_40mb();
    let reason = "more than the 31457280-byte limit";
    check(&t, "40 MB photo", Some(("photo", reason)), || {
        t.driver
            .add_photo(&b, &huge, CaptureKind::LeaveSafe, clock.now(), None)
    });
    check(&t, "40 MB signature", Some(("signature", reason)), || {
        t.driver.sign(&b, &huge, "A. Signer", clock.now(), None)
    });
}

#[test]
fn every_exif_orientation_is_accepted_and_uploaded_upright() {
    let (sim, clock, t) = setup(1);
    let b = barcode(&sim, 0);
    let (w, h) = corpus::ORIENTATION_SIZE;
    let mut ids = Vec::new();
    for o in 1..=8u8 {
        let bytes = read(&format!("images/orientation-{o}.jpg"));
        let info = media::inspect_photo(&bytes, &MediaLimits::default()).expect("inspect");
        assert_eq!((info.width, info.height, info.orientation), (w, h, o));
        let upright = if o >= 5 { (h, w) } else { (w, h) };
        let r = media::photo_rendition(&bytes, &MediaLimits::default()).expect("rendition");
        assert_eq!((r.width, r.height), upright, "orientation {o}");
        let item = t
            .driver
            .add_photo(&b, &bytes, CaptureKind::Goods, clock.now(), None)
            .expect("accepted");
        ids.push((item.id, upright));
    }
    t.driver
        .sign(&b, &signature(1), "A. Signer", clock.now(), None)
        .expect("sign");
    t.driver.set_online(true);
    flush_until_empty(&t, &clock, 5);
    // What UPN received is the upload rendition kept beside the original: upright, no EXIF.
    let received = sim.received();
    assert_eq!(received.images.len(), 8, "{received:?}");
    for capture in t.driver.captures(&b).expect("captures") {
        let Some((_, upright)) = ids.iter().find(|(id, _)| *id == capture.id) else {
            continue;
        };
        let upload = capture.upload.expect("an upload rendition");
        let bytes = std::fs::read(t.data.path().join("blobs").join(&upload.name)).expect("read");
        let info = media::inspect_photo(&bytes, &MediaLimits::default()).expect("inspect");
        assert_eq!((info.width, info.height), *upright, "{}", capture.id);
        assert_eq!(
            info.orientation, 1,
            "the rendition carries no EXIF orientation"
        );
        assert!(received.images.iter().any(|i| i.sha256 == upload.sha256));
    }
}

#[test]
fn printed_names_are_stored_verbatim_or_refused_by_rule() {
    let (sim, clock, t) = setup(1);
    let b = barcode(&sim, 0);
    for (name, expect) in corpus::name_cases() {
        let case = format!("name {:?}", name.chars().take(40).collect::<String>());
        let (refused, want) = match &expect {
            FieldExpect::Stored(s) => (None, Some(s.clone())),
            FieldExpect::Refused { field, reason } => (Some((*field, *reason)), None),
        };
        let signed = check(&t, &case, refused, || {
            t.driver.sign(&b, &signature(2), &name, clock.now(), None)
        });
        if let (Some(signed), Some(want)) = (signed, want) {
            let stored = t
                .driver
                .captures(&b)
                .expect("captures")
                .into_iter()
                .find(|c| c.id == signed.item.id)
                .and_then(|c| c.signed_by);
            assert_eq!(stored.as_deref(), Some(want.as_str()), "{case}");
        }
    }
    // The SQL stayed data: every table is still there and readable.
    assert_eq!(t.driver.stops().expect("stops").len(), 1);
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a corpus instant")
        .with_timezone(&Utc)
}

fn at(base: DateTime<Utc>, when: FixTime) -> DateTime<Utc> {
    match when {
        FixTime::Minutes(m) => base + Duration::minutes(m),
        FixTime::At(text) => instant(text),
    }
}

#[test]
fn gps_fixes_out_of_range_are_refused_naming_the_field() {
    let (sim, clock, t) = setup(1);
    let b = barcode(&sim, 0);
    for (label, lat, lon, acc, when, refused) in corpus::gps_cases() {
        let now = clock.now();
        let fix = Some(GpsFix::new(lat, lon, acc, at(now, when)));
        check(&t, label, refused, || {
            t.driver.sign(&b, &signature(3), "G. Ps", now, fix)
        });
        check(&t, label, refused, || {
            t.driver
                .add_photo(&b, &photo(3), CaptureKind::Location, now, fix)
        });
    }
}

#[test]
fn capture_times_outside_what_the_store_can_hold_are_refused() {
    let (sim, clock, t) = setup(1);
    let b = barcode(&sim, 0);
    for (label, when, refused) in corpus::captured_at_cases() {
        let captured_at = at(clock.now(), when);
        let refused: Refusal = refused;
        check(&t, label, refused, || {
            t.driver
                .sign(&b, &signature(4), "T. Ime", captured_at, None)
        });
        check(&t, label, refused, || {
            t.driver
                .add_photo(&b, &photo(4), CaptureKind::Goods, captured_at, None)
        });
    }
    // Everything accepted reads back: the last POD (each replaced the one before) and 3 photos.
    assert_eq!(t.driver.outbox().expect("the outbox reads back").len(), 4);
}

#[test]
fn bad_unknown_cancelled_and_delivered_barcodes_get_their_typed_errors() {
    let (sim, clock, t) = setup(3);
    for bad in corpus::bad_barcodes() {
        let case = format!("barcode {:?}", bad.chars().take(20).collect::<String>());
        check(&t, &case, Some(("barcode", "")), || {
            t.driver
                .sign(&bad, &signature(5), "B. Code", clock.now(), None)
        });
        check(&t, &case, Some(("barcode", "")), || {
            t.driver
                .add_photo(&bad, &photo(5), CaptureKind::Goods, clock.now(), None)
        });
    }
    let (cancelled, delivered) = (barcode(&sim, 0), barcode(&sim, 1));
    assert!(sim.cancel(&cancelled, Some("shipper cancelled")));
    t.driver.import_now().expect("import the cancellation");
    sim.push_events(vec![NewEvent {
        barcode: delivered.clone(),
        pallet: None,
        capture_type: "C".into(),
        stage: "DELIVERED".into(),
        at: None,
    }]);
    t.driver.pull_tracking_now().expect("pull");
    let expect = |case: &str, barcode: &str, r: upn_core::Result<()>| match (case, r) {
        ("unknown", Err(Error::NotFound { barcode: b }))
        | ("cancelled", Err(Error::Cancelled { barcode: b }))
        | ("delivered", Err(Error::AlreadyDelivered { barcode: b })) => assert_eq!(b, barcode),
        (case, other) => panic!("{case}: {other:?}"),
    };
    for (case, b) in [
        ("unknown", "UPN0429999999".to_string()),
        ("cancelled", cancelled),
        ("delivered", delivered),
    ] {
        let before = snapshot(t.data.path());
        let signed = t
            .driver
            .sign(&b, &signature(6), "N. Body", clock.now(), None);
        expect(case, &b, signed.map(drop));
        let added = t
            .driver
            .add_photo(&b, &photo(6), CaptureKind::Goods, clock.now(), None);
        expect(case, &b, added.map(drop));
        assert_eq!(snapshot(t.data.path()), before, "{case}: the store changed");
    }
}
