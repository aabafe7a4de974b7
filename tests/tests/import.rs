//! Consignment import over real HTTP: simulator on loopback → core → SQLite file → stop list.

use std::collections::BTreeMap;

use upn_e2e::{driver, sim};
use upn_sim::SimConfig;

fn config(seed: u64, consignments: usize) -> SimConfig {
    SimConfig {
        seed,
        consignments,
        ..SimConfig::default()
    }
}

#[test]
fn import_builds_the_stop_list_from_the_simulators_data() {
    let sim = sim(config(7, 25));
    let t = driver(&sim);
    let report = t.driver.import_now().expect("import");
    assert_eq!(report.counts.added, 25);

    let expected: BTreeMap<String, _> = sim
        .consignments()
        .into_iter()
        .map(|c| (c.barcode.clone(), c))
        .collect();
    let stops = t.driver.stops().expect("stops");
    assert_eq!(stops.len(), expected.len());
    for (i, stop) in stops.iter().enumerate() {
        assert_eq!(stop.position as usize, i + 1);
        let c = &stop.consignment;
        let w = &expected[&c.barcode];
        assert_eq!(c.consignee.name, w.consignee.name);
        assert_eq!(c.shipper.name, w.shipper.name);
        assert_eq!(c.address.postcode, w.delivery_address.postcode);
        assert_eq!(c.address.lines, w.delivery_address.lines);
        assert_eq!(
            (c.address.lat, c.address.lon),
            (w.delivery_address.lat, w.delivery_address.lon)
        );
        assert_eq!(c.weight_kg, w.weight_kg);
        assert_eq!(c.service.code(), w.service);
        assert_eq!(c.instructions, w.special_instructions);
        let pallets: Vec<_> = c.pallets.iter().map(|p| p.barcode.as_str()).collect();
        let wire_pallets: Vec<_> = w.pallets.iter().map(|p| p.barcode.as_str()).collect();
        assert_eq!(pallets, wire_pallets);
        assert!((1..=6).contains(&pallets.len()));
        assert_eq!(stop.status.code(), "imported");
    }
    // Windowed stops come first, ordered by closing time.
    let deadlines: Vec<_> = stops
        .iter()
        .filter_map(|s| s.consignment.window.map(|w| w.to))
        .collect();
    let mut sorted = deadlines.clone();
    sorted.sort();
    assert_eq!(deadlines, sorted);
    let first_untimed = stops.iter().position(|s| s.consignment.window.is_none());
    if let Some(first) = first_untimed {
        assert!(stops[first..]
            .iter()
            .all(|s| s.consignment.window.is_none()));
    }
}

#[test]
fn updates_and_cancellations_reach_the_stop_list_on_the_next_import() {
    let sim = sim(config(11, 6));
    let t = driver(&sim);
    t.driver.import_now().expect("first import");
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();

    assert!(sim.update_instructions(&barcodes[0], Some("Gate code 4821, ring on arrival")));
    assert!(sim.cancel(&barcodes[1], Some("Consignee closed")));
    let report = t.driver.import_now().expect("second import");
    assert_eq!(report.counts.updated, 1, "{report:?}");
    assert_eq!(report.counts.cancelled, 1, "{report:?}");
    assert_eq!(report.counts.added, 0, "{report:?}");

    let updated = t.driver.consignment(&barcodes[0]).expect("updated");
    assert_eq!(
        updated.consignment.instructions.as_deref(),
        Some("Gate code 4821, ring on arrival")
    );
    let cancelled = t.driver.consignment(&barcodes[1]).expect("cancelled");
    assert_eq!(cancelled.status.code(), "cancelled");
    assert!(cancelled
        .pallets
        .iter()
        .all(|(_, s)| s.code() == "cancelled"));
    let stops = t.driver.stops().expect("stops");
    assert_eq!(
        stops.last().map(|s| s.consignment.barcode.clone()),
        Some(barcodes[1].clone())
    );

    // Nothing changed: the third import changes nothing.
    let report = t.driver.import_now().expect("third import");
    assert_eq!(
        report.counts.added + report.counts.updated + report.counts.cancelled,
        0
    );
}

#[test]
fn the_stop_list_survives_a_reopen() {
    let sim = sim(config(3, 4));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let before = t.driver.stops().expect("stops");
    let data = t.data;
    drop(t.driver);
    let reopened = upn_core::Driver::open(upn_core::DriverConfig::new(
        data.path().to_path_buf(),
        upn_e2e::upn_config(&sim),
    ))
    .expect("reopen");
    assert_eq!(reopened.stops().expect("stops"), before);
}

#[test]
fn an_unknown_barcode_is_a_typed_not_found() {
    let sim = sim(config(3, 2));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    match t.driver.consignment("UPN0429999999") {
        Err(upn_core::Error::NotFound { barcode }) => assert_eq!(barcode, "UPN0429999999"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        t.driver.consignment("not a barcode!"),
        Err(upn_core::Error::InvalidInput {
            field: "barcode",
            ..
        })
    ));
}
