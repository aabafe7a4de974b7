//! `upn-driver data-saver [off|wifi-only|budget <MB>]` and `sync --metered`: the setting is
//! kept in the data folder, shown with the FFI's field names, refused when out of range, and a
//! metered sync sends the POD and holds the photos (exit 3: pending, not failed).

mod common;

use std::process::Output;

use common::{run, sim};
use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn the_setting_is_shown_set_kept_and_refused_out_of_range() {
    let sim = sim(41, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let shown = json(&run(&sim, dir.path(), &["data-saver", "--json"]));
    assert_eq!(shown["policy"], "off");
    assert_eq!(shown["metered_photo_bytes_today"], 0);
    assert_eq!(shown["held"], 0);

    let set = json(&run(
        &sim,
        dir.path(),
        &["data-saver", "budget", "50", "--json"],
    ));
    assert_eq!(set["policy"], "metered_photo_budget");
    assert_eq!(set["bytes_per_day"], 50_000_000u64);

    for bad in [
        &["budget", "0"][..],
        &["budget", "10001"],
        &["budget"],
        &["off", "5"],
    ] {
        let out = run(&sim, dir.path(), &[&["data-saver"], bad].concat());
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
    let out = run(&sim, dir.path(), &["data-saver", "budget", "0"]);
    assert!(
        text(&out.stderr).contains("bytes_per_day"),
        "{}",
        text(&out.stderr)
    );
    let kept = json(&run(&sim, dir.path(), &["data-saver", "--json"]));
    assert_eq!(kept["bytes_per_day"], 50_000_000u64, "unchanged and kept");

    let out = run(&sim, dir.path(), &["data-saver", "wifi-only"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("wifi-only"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_metered_sync_sends_the_pod_and_holds_the_photo_until_an_unmetered_one() {
    let sim = sim(42, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let barcode = sim.consignments()[0].barcode.clone();
    let photo = files.path().join("p.jpg");
    let png = files.path().join("s.png");
    let ok = |args: &[&str]| {
        let out = run(&sim, dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        out
    };
    for (sample, file) in [("sample-photo", &photo), ("sample-signature", &png)] {
        let out = std::process::Command::new(common::BIN)
            .args([sample, "--out", &file.to_string_lossy()])
            .output()
            .expect("run upn-driver");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    ok(&["data-saver", "wifi-only"]);
    let out = run(&sim, dir.path(), &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    ok(&["photo", &barcode, &photo.to_string_lossy()]);
    ok(&[
        "sign",
        &barcode,
        "--image",
        &png.to_string_lossy(),
        "--name",
        "Jo Patel",
    ]);

    let out = run(&sim, dir.path(), &["sync", "--metered"]);
    assert_eq!(out.status.code(), Some(3), "pending: {}", text(&out.stderr));
    assert_eq!(sim.received().pods.len(), 1);
    assert!(sim.received().images.is_empty());
    let items = json(&run(&sim, dir.path(), &["outbox", "--json", "--metered"]));
    let items = items.as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["reason"], "held_until_unmetered");
    assert_eq!(items[0]["state"], "queued");
    assert_eq!(items[0]["attempts"], 0);
    // Each command starts unmetered: without the flag nothing is held.
    let items = json(&run(&sim, dir.path(), &["outbox", "--json"]));
    assert_eq!(items[0]["reason"], Value::Null);

    let out = run(&sim, dir.path(), &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(sim.received().images.len(), 1);
}
