//! The depot-support commands against a simulator: `diagnose`, `support-bundle`, `receipt`,
//! `verify`, as a clerk runs them.

mod common;

use common::{run, sim};

#[test]
fn diagnose_bundle_receipt_and_verify_work_from_the_command_line() {
    let sim = sim(31, 2);
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let barcode = sim.consignments()[0].barcode.clone();
    let sig = files.path().join("sig.png");
    std::fs::write(&sig, upn_sim::samples::signature_png(5)).expect("write");
    let ok = |args: &[&str]| {
        let out = run(&sim, data.path(), args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["sync"]);
    ok(&[
        "sign",
        &barcode,
        "--image",
        &sig.to_string_lossy(),
        "--name",
        "Cli Person",
    ]);

    let text = ok(&["diagnose", &barcode]);
    assert!(text.contains("ePOD reaching UPN"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&ok(&["diagnose", "--json"])).expect("JSON");
    assert_eq!(json["checks"].as_array().expect("checks").len(), 8);

    let zip = files.path().join("bundle.zip");
    ok(&["support-bundle", &barcode, "--out", &zip.to_string_lossy()]);
    assert!(std::fs::read(&zip).expect("zip").starts_with(b"PK"));
    let again = run(
        &sim,
        data.path(),
        &["support-bundle", "--out", &zip.to_string_lossy()],
    );
    assert_eq!(again.status.code(), Some(2), "never overwrites");

    let html = files.path().join("receipt.html");
    ok(&["receipt", &barcode, "--out", &html.to_string_lossy()]);
    assert!(std::fs::read_to_string(&html)
        .expect("html")
        .contains("Cli Person"));
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["verify", &barcode, "--json"])).expect("JSON");
    assert_eq!(v["intact"], true);

    let unknown = run(&sim, data.path(), &["diagnose", "NOPE0000000"]);
    assert_ne!(unknown.status.code(), Some(0));
}

#[test]
fn the_data_folder_endpoint_and_depot_also_come_from_the_environment() {
    let sim = sim(32, 1);
    let data = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(common::BIN)
        .args(["sync"])
        .env("UPN_DB", data.path())
        .env("UPN_ENDPOINT", sim.endpoint())
        .env("UPN_DEPOT", sim.depot())
        .env("UPN_API_KEY", sim.api_key())
        .output()
        .expect("run upn-driver");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data
        .path()
        .join(upn_core::testing::store::DB_FILE_NAME)
        .exists());
}
