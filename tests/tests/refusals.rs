//! Every UPN refusal reaches the caller as a typed error over real HTTP, and changes nothing.

use chrono::Utc;
use upn_core::upn::wire::{ImageQuery, PodSubmission};
use upn_core::upn::{no_progress, ApiKey, UpnApi, UpnConfig, UpnError};
use upn_core::Error;
use upn_e2e::{client, driver, driver_with, sim, upn_config};
use upn_sim::{FaultSpec, SimConfig};

fn small() -> SimConfig {
    SimConfig {
        consignments: 3,
        ..SimConfig::default()
    }
}

fn upn_error(result: upn_core::Result<impl std::fmt::Debug>) -> UpnError {
    match result {
        Err(Error::Upn(e)) => e,
        other => panic!("expected a UPN error, got {other:?}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_wrong_api_key_is_unauthorized_and_never_echoed() {
    let sim = sim(small());
    let mut config = upn_config(&sim);
    config.api_key = ApiKey::new("wrong-key-123");
    let t = driver_with(config);
    let result = t.driver.import_now();
    let text = format!(
        "{result:?} {}",
        result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(!text.contains("wrong-key-123"), "the key leaked: {text}");
    assert_eq!(upn_error(result), UpnError::Unauthorized);
    assert!(t.driver.stops().expect("stops").is_empty());
}

#[test]
fn integration_disabled_is_reported_as_such() {
    let sim = sim(small());
    sim.set_access(false, true, true);
    let t = driver(&sim);
    let e = upn_error(t.driver.import_now());
    assert_eq!(e, UpnError::IntegrationDisabled);
    assert!(!e.is_recoverable());
    assert!(e.to_string().contains("not enabled"), "{e}");
    assert!(t.driver.stops().expect("stops").is_empty());
}

#[test]
fn a_wrong_depot_is_integration_disabled() {
    let sim = sim(small());
    let mut config = upn_config(&sim);
    config.depot = "999".into();
    let t = driver_with(config);
    assert_eq!(
        upn_error(t.driver.import_now()),
        UpnError::IntegrationDisabled
    );
}

#[test]
fn server_errors_are_recoverable_and_change_nothing() {
    for kind in ["500", "503"] {
        let sim = sim(small());
        sim.set_faults(
            format!("consignments:{kind}:1")
                .parse::<FaultSpec>()
                .expect("spec"),
        );
        let t = driver(&sim);
        let e = upn_error(t.driver.import_now());
        assert!(matches!(e, UpnError::Server { .. }), "{kind}: {e:?}");
        assert!(e.is_recoverable());
        assert!(t.driver.stops().expect("stops").is_empty());
        // The fault clears; the next import succeeds and nothing was half-applied.
        sim.set_faults(FaultSpec::none());
        assert_eq!(t.driver.import_now().expect("retry").counts.added, 3);
    }
}

#[test]
fn rate_limiting_carries_retry_after() {
    let sim = sim(small());
    sim.set_faults("consignments:429:1".parse().expect("spec"));
    let t = driver(&sim);
    let e = upn_error(t.driver.import_now());
    assert_eq!(
        e.retry_after(),
        Some(std::time::Duration::from_secs(1)),
        "{e:?}"
    );
    assert!(e.is_recoverable());
}

#[test]
fn broken_responses_are_bad_responses_not_panics() {
    for kind in ["garbage", "truncate", "drop", "lost-response"] {
        let sim = sim(small());
        sim.set_faults(
            format!("consignments:{kind}:1")
                .parse::<FaultSpec>()
                .expect("spec"),
        );
        let t = driver(&sim);
        let e = upn_error(t.driver.import_now());
        assert!(e.is_recoverable(), "{kind}: {e:?}");
        assert!(t.driver.stops().expect("stops").is_empty(), "{kind}");
    }
}

#[test]
fn nothing_listening_is_unreachable() {
    // Bind and drop a listener to get a loopback port with nothing behind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let t = driver_with(UpnConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        depot: "042".into(),
        api_key: ApiKey::new("k"),
    });
    let e = upn_error(t.driver.import_now());
    assert!(e.is_connectivity(), "{e:?}");
}

#[test]
fn tracking_and_image_actions_have_their_own_refusals() {
    let sim = sim(small());
    sim.set_access(true, false, false);
    let api = client(&sim);
    let rt = runtime();
    assert_eq!(
        rt.block_on(api.take_tracking_batch(100))
            .expect_err("tracking off"),
        UpnError::TrackingActionDisabled
    );
    let barcode = sim.consignments()[0].barcode.clone();
    let query = ImageQuery {
        kind: "goods".into(),
        captured_at: Utc::now(),
        lat: None,
        lon: None,
        accuracy_m: None,
    };
    let e = rt
        .block_on(api.upload_image(
            &barcode,
            "img-1",
            &query,
            vec![0xFF, 0xD8, 0xFF, 0xD9],
            no_progress(),
        ))
        .expect_err("images off");
    assert_eq!(e, UpnError::ImageActionDisabled);
    assert!(e.to_string().contains("UPN IT"), "{e}");
}

#[test]
fn pod_and_image_refusals_are_typed() {
    let sim = sim(small());
    let api = client(&sim);
    let rt = runtime();
    let barcode = sim.consignments()[0].barcode.clone();
    let query = ImageQuery {
        kind: "goods".into(),
        captured_at: Utc::now(),
        lat: Some(52.4),
        lon: Some(-1.5),
        accuracy_m: Some(8.0),
    };
    let jpeg = vec![0xFF, 0xD8, 0xFF, 0xD9];
    assert_eq!(
        rt.block_on(api.upload_image(&barcode, "img-early", &query, jpeg.clone(), no_progress()))
            .expect_err("before POD"),
        UpnError::PodRequired
    );
    let pod = PodSubmission {
        signed_by: "J. Patel".into(),
        signed_at: Utc::now(),
        clock_offset_ms: Some(0),
        gps: None,
        signature_png_base64: "iVBORw0KGgo=".into(),
        image_count: 1,
        pod_sha256: None,
    };
    let receipt = rt
        .block_on(api.submit_pod(&barcode, "pod-1", &pod))
        .expect("pod");
    assert!(!receipt.duplicate);
    let again = rt
        .block_on(api.submit_pod(&barcode, "pod-1", &pod))
        .expect("same key");
    assert!(again.duplicate);
    assert_eq!(again.pod_reference, receipt.pod_reference);
    assert_eq!(
        rt.block_on(api.submit_pod(&barcode, "pod-2", &pod))
            .expect_err("other key"),
        UpnError::AlreadyDelivered
    );
    assert_eq!(
        rt.block_on(api.submit_pod("UPN0429999999", "pod-3", &pod))
            .expect_err("unknown"),
        UpnError::UnknownBarcode {
            barcode: "UPN0429999999".into()
        }
    );
    let big = vec![0u8; (upn_core::upn::wire::MAX_IMAGE_BYTES + 1) as usize];
    assert_eq!(
        rt.block_on(api.upload_image(&barcode, "img-big", &query, big, no_progress()))
            .expect_err("413"),
        UpnError::TooLarge
    );
    rt.block_on(api.upload_image(&barcode, "img-ok", &query, jpeg, no_progress()))
        .expect("after POD");

    let received = sim.received();
    assert_eq!(received.pods.len(), 1);
    assert_eq!(received.pods[0].attempts, 2);
    assert_eq!(received.images.len(), 1);
    assert!(received.images[0].seq > received.pods[0].seq);
    let statuses: Vec<u16> = received.rejected.iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&409) && statuses.contains(&404) && statuses.contains(&413),
        "{statuses:?}"
    );
}
