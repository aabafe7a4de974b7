//! `upn-driver invoice-match`: a real invoice file matched against consignments imported from
//! a simulator on loopback, as depot staff run it.

mod common;

use common::{run, sim};
use serde_json::Value;
use upn_sim::SimHandle;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The barcodes the simulator really generated, from the CLI's own stop list.
fn barcodes(sim: &SimHandle, dir: &std::path::Path) -> Vec<String> {
    let out = run(sim, dir, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(sim, dir, &["stops", "--json"]);
    let stops: Value = serde_json::from_slice(&out.stdout).expect("stops JSON");
    stops
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["barcode"].as_str().expect("barcode").to_string())
        .collect()
}

#[test]
fn an_invoice_is_matched_exactly_with_near_misses_flagged() {
    let sim = sim(11, 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let known = barcodes(&sim, dir.path());
    let (a, b) = (&known[0], &known[1]);
    let lowered = b.to_lowercase();
    let file = dir.path().join("invoice.csv");
    let csv = format!(
        "\u{feff}barcode,description,amount\r\n{a},\"Delivery, 2 pallets\",41.20\r\n \
         {b} ,Tail lift,8.00\r\n{lowered},Fuel,3.10\r\nUPN9999999999,Storage,12.00\r\n"
    );
    std::fs::write(&file, csv).expect("write invoice");

    let out = run(
        &sim,
        dir.path(),
        &["invoice-match", &file.to_string_lossy(), "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        result["matched"],
        serde_json::json!([{"line": 2, "barcode": a}])
    );
    let misses = result["near_misses"].as_array().expect("near misses");
    assert_eq!(misses.len(), 2, "{result}");
    assert_eq!(misses[0]["line"], 3);
    assert_eq!(misses[0]["candidate"], b.as_str());
    assert_eq!(misses[0]["reason"], "whitespace");
    assert_eq!(misses[1]["line"], 4);
    assert_eq!(misses[1]["reason"], "case");
    assert_eq!(
        result["unmatched"],
        serde_json::json!([{"line": 5, "barcode": "UPN9999999999"}])
    );

    // The table says the same in words, with the near misses as warnings.
    let out = run(
        &sim,
        dir.path(),
        &["invoice-match", &file.to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("1 matched, 2 near misses"), "{table}");
    assert!(
        table.contains(&format!("warning: line 4: \"{lowered}\"")),
        "{table}"
    );
}

#[test]
fn a_malformed_invoice_names_its_line_and_exits_2() {
    let sim = sim(11, 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ragged.csv");
    std::fs::write(&file, "barcode,description,amount\nUPN1,a,1\nUPN2,b\n").expect("write");
    let out = run(
        &sim,
        dir.path(),
        &["invoice-match", &file.to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(out.stdout.is_empty());

    let missing = dir.path().join("nope.csv");
    let out = run(
        &sim,
        dir.path(),
        &["invoice-match", &missing.to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read the invoice"));
}
