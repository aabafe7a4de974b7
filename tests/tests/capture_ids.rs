//! Caller-supplied capture ids (issue 12, item 2): an app that repeats `add_photo` or `sign`
//! after a timeout or a process death gets the capture it made, never a second one; the same
//! id with anything different is a typed error and changes nothing.

mod common;

use chrono::Utc;
use common::snapshot;
use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::{flush_until_empty, manual_clock, photo, signature, sim, upn_config};
use upn_sim::{SimConfig, SimHandle};

fn setup() -> (SimHandle, tempfile::TempDir, Driver) {
    let sim = sim(SimConfig {
        seed: 12,
        consignments: 2,
        ..SimConfig::default()
    });
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = DriverConfig::new(data.path(), upn_config(&sim));
    // The folder is compared before and after refused calls: no renderer writing meanwhile.
    config.background_renditions = false;
    let driver = Driver::open(config).expect("open");
    driver.import_now().expect("import");
    (sim, data, driver)
}

fn conflict<T: std::fmt::Debug>(r: upn_core::Result<T>, id: &str, what: &str) {
    match r {
        Err(e @ Error::CaptureIdConflict { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(id) && msg.contains(what), "{msg}");
            assert!(msg.contains("new capture id"), "{msg}");
        }
        other => panic!("expected a conflict on {what}, got {other:?}"),
    }
}

#[test]
fn a_repeated_add_photo_returns_the_same_capture_and_stores_nothing_new() {
    let (sim, data, driver) = setup();
    let barcode = sim.consignments()[0].barcode.clone();
    let uuid = "123E4567-E89B-12D3-A456-426614174000";
    let hex = "123e4567e89b12d3a456426614174000";
    let at = Utc::now();
    let first = driver
        .add_photo_with_id(
            &barcode,
            &photo(1),
            CaptureKind::Goods,
            at,
            None,
            Some(uuid),
        )
        .expect("photo");
    assert_eq!(first.id, hex, "a UUID is kept as 32 lowercase hex digits");
    let before = snapshot(data.path());
    for id in [uuid, hex, "{123e4567-e89b-12d3-a456-426614174000}"] {
        let again = driver
            .add_photo_with_id(
                &barcode,
                &photo(1),
                CaptureKind::Goods,
                Utc::now(),
                None,
                Some(id),
            )
            .expect("the retry");
        assert_eq!(again.id, first.id);
        assert_eq!(again.state, first.state);
    }
    assert_eq!(snapshot(data.path()), before, "a retry stores nothing");

    // The same id with anything different: refused, nothing changed.
    let other = sim.consignments()[1].barcode.clone();
    conflict(
        driver.add_photo_with_id(&barcode, &photo(2), CaptureKind::Goods, at, None, Some(hex)),
        hex,
        "the image bytes",
    );
    conflict(
        driver.add_photo_with_id(&other, &photo(1), CaptureKind::Goods, at, None, Some(hex)),
        hex,
        "the consignment",
    );
    conflict(
        driver.add_photo_with_id(
            &barcode,
            &photo(1),
            CaptureKind::Location,
            at,
            None,
            Some(hex),
        ),
        hex,
        "the kind",
    );
    conflict(
        driver.sign_with_id(&barcode, &photo(1), "A. Name", at, None, Some(hex)),
        hex,
        "the kind",
    );
    assert_eq!(snapshot(data.path()), before, "a conflict changes nothing");

    // Still the same capture once it was sent.
    driver
        .sign(&barcode, &signature(1), "A. Signer", Utc::now(), None)
        .expect("sign");
    flush_until_empty(&upn_e2e::TestDriver { driver, data }, &manual_clock(), 3);
    assert_eq!(sim.received().images.len(), 1);
}

#[test]
fn a_repeated_sign_returns_the_pod_and_replaces_nothing_even_after_it_was_sent() {
    let (sim, data, driver) = setup();
    let barcode = sim.consignments()[0].barcode.clone();
    let id = "00112233445566778899aabbccddeeff";
    let at = Utc::now();
    let signed = driver
        .sign_with_id(&barcode, &signature(1), "Jo Patel", at, None, Some(id))
        .expect("sign");
    assert_eq!(signed.item.id, id);
    let before = snapshot(data.path());
    let again = driver
        .sign_with_id(&barcode, &signature(1), "  Jo   Patel ", at, None, Some(id))
        .expect("the retry (the name normalised the same way)");
    assert_eq!((again.item.id.as_str(), again.replaced), (id, None));
    assert_eq!(snapshot(data.path()), before);
    conflict(
        driver.sign_with_id(&barcode, &signature(1), "Someone Else", at, None, Some(id)),
        id,
        "the printed name",
    );
    conflict(
        driver.sign_with_id(
            &barcode,
            &signature(1),
            "Jo Patel",
            at - chrono::Duration::seconds(5),
            None,
            Some(id),
        ),
        id,
        "the signing time",
    );
    conflict(
        driver.sign_with_id(&barcode, &signature(2), "Jo Patel", at, None, Some(id)),
        id,
        "the image bytes",
    );
    assert_eq!(snapshot(data.path()), before);

    let t = upn_e2e::TestDriver { driver, data };
    flush_until_empty(&t, &manual_clock(), 3);
    // After the POD went, a repeat is still that POD, not AlreadySigned.
    let after = t
        .driver
        .sign_with_id(&barcode, &signature(1), "Jo Patel", at, None, Some(id))
        .expect("the retry after sending");
    assert_eq!(after.item.state, ItemState::Sent);
    assert_eq!(sim.received().pods.len(), 1);
    // A new signature without the id is refused as before.
    assert!(matches!(
        t.driver
            .sign(&barcode, &signature(3), "Jo Patel", Utc::now(), None),
        Err(Error::AlreadySigned { .. })
    ));
}

#[test]
fn a_malformed_capture_id_is_refused_naming_the_field() {
    let (sim, data, driver) = setup();
    let barcode = sim.consignments()[0].barcode.clone();
    let before = snapshot(data.path());
    for bad in [
        "",
        "photo-1",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdeg",
        "../../etc/passwd",
        "0123456789abcdef0123456789abcdef0",
        &"a".repeat(10_000),
    ] {
        for r in [
            driver
                .add_photo_with_id(
                    &barcode,
                    &photo(1),
                    CaptureKind::Goods,
                    Utc::now(),
                    None,
                    Some(bad),
                )
                .map(drop),
            driver
                .sign_with_id(&barcode, &signature(1), "Jo", Utc::now(), None, Some(bad))
                .map(drop),
        ] {
            match r {
                Err(Error::InvalidInput { field, reason }) => {
                    assert_eq!(field, "capture_id");
                    assert!(reason.contains("UUID"), "{reason}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
    assert_eq!(snapshot(data.path()), before);
}
