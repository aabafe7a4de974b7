//! `upn-driver export`: a consignment's captures written back out as files, byte for byte.

mod common;

use std::process::Output;

use common::{run, sim};
use serde_json::Value;

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn export_writes_the_signature_and_photos_as_captured_and_never_overwrites() {
    let sim = sim(12, 2);
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let barcode = sim.consignments()[0].barcode.clone();
    let jpeg = upn_sim::samples::photo_jpeg(3, 1200, 900);
    let png = upn_sim::samples::signature_png(3);
    let (photo, sig) = (files.path().join("goods.jpg"), files.path().join("sig.png"));
    std::fs::write(&photo, &jpeg).expect("write");
    std::fs::write(&sig, &png).expect("write");

    ok(&run(&sim, data.path(), &["sync"]));
    ok(&run(
        &sim,
        data.path(),
        &["photo", &barcode, &photo.to_string_lossy()],
    ));
    ok(&run(
        &sim,
        data.path(),
        &[
            "sign",
            &barcode,
            "--image",
            &sig.to_string_lossy(),
            "--name",
            "A. Export",
        ],
    ));

    let out_dir = files.path().join("export");
    let out = run(
        &sim,
        data.path(),
        &[
            "export",
            &barcode,
            "--out",
            &out_dir.to_string_lossy(),
            "--json",
        ],
    );
    ok(&out);
    let written: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let written = written.as_array().expect("array");
    assert_eq!(written.len(), 2, "{written:?}");
    let bytes_of = |kind: &str| {
        let entry = written
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} exported"));
        std::fs::read(entry["file"].as_str().expect("file")).expect("read back")
    };
    assert_eq!(bytes_of("goods"), jpeg);
    assert_eq!(bytes_of("pod"), png);

    // A second export into the same folder refuses rather than overwrite.
    let again = run(
        &sim,
        data.path(),
        &["export", &barcode, "--out", &out_dir.to_string_lossy()],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty folder"));
    assert_eq!(bytes_of("goods"), jpeg);
}
