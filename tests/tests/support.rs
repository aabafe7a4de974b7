//! Depot support through the core against the simulator: the troubleshooting checks, the
//! support bundle (and what it must never hold), the POD receipt and its tamper-evident hash.

use std::io::Read as _;

use upn_core::domain::capture::GpsFix;
use upn_core::domain::diagnostics::{CheckId, CheckStatus};
use upn_core::domain::outbox::CaptureKind;
use upn_core::Error;
use upn_e2e::{driver, photo, signature, sim, TestDriver};
use upn_sim::{SimConfig, SimHandle};

fn day(seed: u64, consignments: usize) -> (SimHandle, TestDriver) {
    let sim = sim(SimConfig {
        seed,
        consignments,
        ..SimConfig::default()
    });
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    (sim, t)
}

/// A fix `metres_north` of the consignment's delivery address, taken a minute ago.
fn fix_near(sim: &SimHandle, barcode: &str, metres_north: f64) -> GpsFix {
    let c = sim
        .consignments()
        .into_iter()
        .find(|c| c.barcode == barcode)
        .expect("consignment");
    let lat = c.delivery_address.lat + metres_north / 111_195.0;
    GpsFix::new(
        lat,
        c.delivery_address.lon,
        6.0,
        chrono::Utc::now() - chrono::Duration::minutes(1),
    )
}

fn check(
    t: &TestDriver,
    barcode: Option<&str>,
    id: CheckId,
) -> upn_core::domain::diagnostics::Check {
    t.driver
        .diagnose(barcode, None)
        .expect("diagnose")
        .check(id)
        .cloned()
        .expect("check present")
}

#[test]
fn diagnostics_explain_an_import_refusal_a_queued_pod_and_a_pod_far_from_the_address() {
    let (sim, t) = day(71, 2);
    let barcode = sim.consignments()[0].barcode.clone();
    assert_eq!(
        check(&t, None, CheckId::ConsignmentsImport).status,
        CheckStatus::Ok
    );

    // UPN disables the integration: the next import fails and the check says what to do.
    sim.set_access(false, true, true);
    assert!(t.driver.import_now().is_err());
    let c = check(&t, None, CheckId::ConsignmentsImport);
    assert_eq!(c.status, CheckStatus::Problem, "{c:#?}");
    assert!(c.action.unwrap().contains("Configuration → Integrations"));
    sim.set_access(true, true, true);
    t.driver.import_now().expect("import again");
    assert_eq!(
        check(&t, None, CheckId::ConsignmentsImport).status,
        CheckStatus::Ok,
        "a success clears the failure"
    );

    // Signed offline, 400 m from the address: queued, and flagged by the geofence.
    t.driver.set_online(false);
    let now = chrono::Utc::now();
    t.driver
        .sign(
            &barcode,
            &signature(1),
            "Far Away",
            now,
            Some(fix_near(&sim, &barcode, 400.0)),
        )
        .expect("sign");
    let pod = check(&t, Some(&barcode), CheckId::Pod);
    assert_eq!(pod.status, CheckStatus::Warning, "{pod:#?}");
    assert!(pod.summary.contains("offline"), "{}", pod.summary);
    assert!(pod
        .evidence
        .iter()
        .any(|e| e.label == "device offline since"));
    let fence = check(&t, Some(&barcode), CheckId::Geofence);
    assert_eq!(fence.status, CheckStatus::Warning);
    assert!(fence.summary.contains("400 m"), "{}", fence.summary);

    // A photo of the other consignment waits for its signature.
    let other = sim.consignments()[1].barcode.clone();
    t.driver
        .add_photo(&other, &photo(2), CaptureKind::Goods, now, None)
        .expect("photo");
    let images = check(&t, Some(&other), CheckId::Images);
    assert_eq!(images.status, CheckStatus::Warning);
    assert!(
        images.summary.contains("once a signature exists"),
        "{}",
        images.summary
    );

    // An unknown barcode is a typed error.
    assert!(matches!(
        t.driver.diagnose(Some("NOPE0000000"), None),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn the_support_bundle_holds_the_history_and_never_the_key_the_images_or_the_gps() {
    let (sim, t) = day(72, 2);
    let barcode = sim.consignments()[0].barcode.clone();
    let now = chrono::Utc::now();
    let fix = fix_near(&sim, &barcode, 30.0);
    let jpeg = photo(3);
    let png = signature(3);
    t.driver
        .add_photo(&barcode, &jpeg, CaptureKind::Goods, now, Some(fix))
        .expect("photo");
    t.driver
        .sign(&barcode, &png, "Bundle Person", now, Some(fix))
        .expect("sign");
    // UPN refuses images for the depot: the photo stays queued, the outbox pauses its images.
    sim.set_access(true, true, false);
    t.driver.flush_now().expect("flush");

    let zip_bytes = t
        .driver
        .support_bundle(&[], Some("test-app 1.2.3"))
        .expect("bundle");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("a zip");
    let mut files = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("entry");
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).expect("read entry");
        files.insert(f.name().expect("entry name").to_string(), bytes);
    }
    for name in [
        "README.txt",
        "manifest.json",
        "diagnostics.json",
        "outbox.json",
        "tracking.json",
        "sync_state.json",
        "log.txt",
    ] {
        assert!(files.contains_key(name), "{name} in {:?}", files.keys());
    }
    let per_consignment = format!("consignments/{barcode}.json");
    assert!(
        files.contains_key(&per_consignment),
        "the consignment with a problem is chosen"
    );

    let key = sim.api_key();
    let lat = format!("{:.4}", fix.lat());
    let b64 =
        |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &b[..48]);
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(&key), "{name} holds the API key");
        assert!(!text.contains(&lat), "{name} holds the GPS fix");
        assert!(
            !bytes.windows(8).any(|w| w == &png[..8]),
            "{name} holds a PNG"
        );
        assert!(
            !bytes.windows(3).any(|w| w == [0xFF, 0xD8, 0xFF]),
            "{name} holds a JPEG"
        );
        assert!(
            !text.contains(&b64(&png)) && !text.contains(&b64(&jpeg)),
            "{name} holds image base64"
        );
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("JSON");
    assert_eq!(manifest["depot"], sim.depot());
    assert_eq!(manifest["app_version"], "test-app 1.2.3");
    assert!(manifest["schema_version"].as_u64().unwrap() >= 7);
    let doc: serde_json::Value = serde_json::from_slice(&files[&per_consignment]).expect("JSON");
    let captures = doc["captures"].as_array().expect("captures");
    assert_eq!(captures.len(), 2);
    assert!(captures
        .iter()
        .any(|c| c["state"] == "sent" && c["upn_reference"].is_string()));
    assert!(captures.iter().any(|c| c["state"] == "queued"));
    assert_eq!(captures[0]["distance_from_address_m"], 30.0);
    let diagnostics: serde_json::Value =
        serde_json::from_slice(&files["diagnostics.json"]).expect("JSON");
    let images = diagnostics["device"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "images")
        .expect("images check");
    assert_eq!(images["status"], "problem", "{images}");

    // Asked for by barcode: only that one; an unknown one is a typed error.
    assert!(matches!(
        t.driver.support_bundle(&["ZZZ0000000".into()], None),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn the_pod_hash_is_sent_to_upn_verifies_and_detects_tampering() {
    let (sim, t) = day(73, 1);
    let barcode = sim.consignments()[0].barcode.clone();
    let now = chrono::Utc::now();
    let fix = fix_near(&sim, &barcode, 10.0);
    let shot = t
        .driver
        .add_photo(&barcode, &photo(4), CaptureKind::Goods, now, Some(fix))
        .expect("photo");
    t.driver
        .sign(
            &barcode,
            &signature(4),
            "Hash <b>Person</b>",
            now,
            Some(fix),
        )
        .expect("sign");

    let before = t.driver.verify_pod(&barcode).expect("verify");
    assert!(
        before.intact && before.stored_sha256.is_none(),
        "{before:?}"
    );
    assert_eq!(before.photos_covered, 1);

    t.driver.flush_now().expect("flush");
    let sent = t.driver.verify_pod(&barcode).expect("verify");
    let stored = sent.stored_sha256.clone().expect("fixed at the first send");
    assert!(sent.intact, "{sent:?}");
    assert_eq!(
        stored, before.recomputed_sha256,
        "the same photos, name, time and place"
    );
    let at_upn = &sim.received().pods[0];
    assert_eq!(
        at_upn.pod_sha256.as_deref(),
        Some(stored.as_str()),
        "UPN got the hash"
    );

    // The receipt: self-contained, escaped, with the hash.
    let html = t.driver.receipt_html(&barcode).expect("receipt");
    assert!(html.contains(&stored));
    assert!(
        html.contains("Hash &lt;b&gt;Person&lt;/b&gt;"),
        "names are escaped"
    );
    assert!(!html.contains("<b>Person"));
    assert!(html.contains("data:image/png;base64,") && html.contains("data:image/jpeg;base64,"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resource"
    );

    // A photo file changed on the device: verify says so.
    let file = t
        .data
        .path()
        .join("blobs")
        .join(format!("{}.orig", shot.id));
    let mut bytes = std::fs::read(&file).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    std::fs::write(&file, &bytes).expect("write");
    let tampered = t.driver.verify_pod(&barcode).expect("verify");
    assert!(!tampered.intact);
    assert!(
        tampered.problems.iter().any(|p| p.contains("has changed")),
        "{tampered:?}"
    );

    // The printed name edited in the database: the hash no longer matches.
    let found = t.data.path().join(upn_core::testing::store::DB_FILE_NAME);
    let conn = rusqlite::Connection::open(found).expect("open db");
    conn.execute(
        "UPDATE captures SET signed_by = 'Someone Else' WHERE kind = 'pod'",
        [],
    )
    .expect("edit");
    drop(conn);
    let edited = t.driver.verify_pod(&barcode).expect("verify");
    assert!(
        edited
            .problems
            .iter()
            .any(|p| p.contains("no longer give the hash")),
        "{edited:?}"
    );
}

#[test]
fn receipt_and_verify_refuse_an_unsigned_consignment_with_a_typed_error() {
    let (sim, t) = day(74, 1);
    let barcode = sim.consignments()[0].barcode.clone();
    assert!(matches!(
        t.driver.verify_pod(&barcode),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        t.driver.receipt_html(&barcode),
        Err(Error::InvalidInput { .. })
    ));
}
