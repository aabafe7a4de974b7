//! Capture off the decode path (issue 11): the capture returns once the photo is durable, and
//! its upload rendition is made afterwards by the background renderer. Race windows are opened
//! with failpoint hooks on the renderer's own points (`render.*`) and on `capture.before_insert`;
//! this file is the only one registering them, and its tests run one at a time (`serial`).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use upn_core::domain::outbox::{CaptureKind, ItemState, OutboxItem};
use upn_core::domain::{Stop, SyncBadge};
use upn_core::listener::{DriverListener, UploadProgress};
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::hooks::{hold, serial, PATIENCE};
use upn_e2e::{blob_files, manual_clock, photo, signature, sim, upn_config, TestDriver};
use upn_sim::{SimConfig, SimHandle};

fn small() -> SimHandle {
    sim(SimConfig {
        seed: 41,
        consignments: 3,
        ..SimConfig::default()
    })
}

fn open(sim: &SimHandle, dir: &std::path::Path, background: bool) -> Driver {
    let mut config = DriverConfig::new(dir, upn_config(sim));
    config.background_renditions = background;
    let driver = Driver::open_with_clock(config, manual_clock()).expect("open");
    driver.import_now().expect("import");
    driver
}

/// A photo whose structure is sound (every marker in place) but whose entropy-coded data is
/// not: the middle third of the scan is `FF 00` pairs (stuffed one-bytes, so no marker), a run
/// of one-bits no Huffman table decodes. Only a decode can tell.
fn corrupt_photo() -> Vec<u8> {
    let mut jpeg = photo(9);
    let sos = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("SOS");
    let scan = sos + 2 + usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
    let third = (jpeg.len() - 2 - scan) / 3;
    let mut start = scan + third;
    while jpeg[start - 1] == 0xFF {
        start += 1; // never split a stuffed pair
    }
    for (i, b) in jpeg[start..start + (third & !1)].iter_mut().enumerate() {
        *b = if i % 2 == 0 { 0xFF } else { 0x00 };
    }
    let limits = upn_core::media::MediaLimits::default();
    assert!(upn_core::media::inspect_photo(&jpeg, &limits).is_ok());
    assert!(upn_core::media::photo_rendition(&jpeg, &limits).is_err());
    jpeg
}

/// Every outbox item change and stop change, sent to the test as it happens.
#[derive(Debug, PartialEq)]
enum Heard {
    Item(String, ItemState),
    Stop(String, SyncBadge),
}

struct Events(Mutex<mpsc::Sender<Heard>>);

impl DriverListener for Events {
    fn stop_changed(&self, stop: &Stop) {
        let heard = Heard::Stop(stop.consignment.barcode.clone(), stop.sync);
        let _ = self.0.lock().expect("lock").send(heard);
    }
    fn outbox_item_changed(&self, item: &OutboxItem) {
        let heard = Heard::Item(item.id.clone(), item.state);
        let _ = self.0.lock().expect("lock").send(heard);
    }
    fn upload_progress(&self, _: &UploadProgress) {}
}

fn capture_of(driver: &Driver, barcode: &str, id: &str) -> upn_core::Capture {
    driver
        .captures(barcode)
        .expect("captures")
        .into_iter()
        .find(|c| c.id == id)
        .expect("the capture")
}

#[test]
fn add_photo_returns_before_the_rendition_is_made_and_the_row_is_durable() {
    let _serial = serial();
    let sim = small();
    let data = tempfile::tempdir().expect("tempdir");
    let driver = open(&sim, data.path(), true);
    let barcode = sim.consignments()[0].barcode.clone();
    // The renderer stops before decoding until the test lets it go.
    let renderer = hold("render.before_decode", 1);
    let item = driver
        .add_photo(
            &barcode,
            &photo(1),
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
        )
        .expect("photo");
    renderer
        .reached
        .recv_timeout(PATIENCE)
        .expect("the renderer starts after the capture returned");
    // The call has returned while the rendition is not made: the row and the original are
    // committed, nothing else.
    let capture = capture_of(&driver, &barcode, &item.id);
    assert_eq!(capture.state, ItemState::Waiting);
    assert!(capture.upload.is_none());
    let t = TestDriver { driver, data };
    assert_eq!(blob_files(&t), [format!("{}.orig", item.id)]);
    renderer.go.send(()).expect("release the renderer");
    t.driver.render_pending().expect("render");
    drop(renderer);
    let upload = capture_of(&t.driver, &barcode, &item.id)
        .upload
        .expect("rendered in the background");
    assert_eq!(upload.name, format!("{}.upload", item.id));
    assert!(blob_files(&t).contains(&upload.name));
}

#[test]
fn a_photo_with_corrupt_entropy_data_needs_attention_in_the_background_and_is_never_sent() {
    let _serial = serial();
    let sim = small();
    let data = tempfile::tempdir().expect("tempdir");
    let driver = open(&sim, data.path(), true);
    let barcode = sim.consignments()[0].barcode.clone();
    let (tx, rx) = mpsc::channel();
    let _subscription = driver
        .subscribe(Arc::new(Events(Mutex::new(tx))))
        .expect("subscribe");
    let item = driver
        .add_photo(
            &barcode,
            &corrupt_photo(),
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
        )
        .expect("accepted at capture: its structure is sound");
    assert_eq!(item.state, ItemState::Waiting);
    // The listener hears of it without any flush: the item, then its stop.
    let item_heard = Heard::Item(item.id.clone(), ItemState::NeedsAttention);
    let stop_heard = Heard::Stop(barcode.clone(), SyncBadge::NeedsAttention);
    loop {
        let heard = rx.recv_timeout(PATIENCE).expect("the listener hears of it");
        if heard == item_heard {
            break;
        }
    }
    loop {
        let heard = rx.recv_timeout(PATIENCE).expect("and of its stop");
        if heard == stop_heard {
            break;
        }
    }
    let capture = capture_of(&driver, &barcode, &item.id);
    assert_eq!(capture.attempts, 0, "nothing left the device");
    let reason = capture.last_error.expect("a reason");
    assert!(
        reason.contains("the image is damaged or incomplete"),
        "{reason}"
    );
    assert!(reason.contains("capture it again"), "{reason}");

    driver
        .sign(
            &barcode,
            &signature(1),
            "A. Signer",
            chrono::Utc::now(),
            None,
        )
        .expect("sign");
    driver.flush_now().expect("flush");
    let received = sim.received();
    assert_eq!(received.pods.len(), 1);
    assert!(received.images.is_empty(), "{received:?}");
    assert_eq!(
        capture_of(&driver, &barcode, &item.id).state,
        ItemState::NeedsAttention
    );
}

#[test]
fn without_the_background_renderer_the_flush_still_never_sends_a_photo_that_fails_to_render() {
    let _serial = serial();
    let sim = small();
    let data = tempfile::tempdir().expect("tempdir");
    let driver = open(&sim, data.path(), false);
    let barcode = sim.consignments()[0].barcode.clone();
    let bad = driver
        .add_photo(
            &barcode,
            &corrupt_photo(),
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
        )
        .expect("accepted");
    let good = driver
        .add_photo(
            &barcode,
            &photo(2),
            CaptureKind::Location,
            chrono::Utc::now(),
            None,
        )
        .expect("accepted");
    driver
        .sign(
            &barcode,
            &signature(2),
            "A. Signer",
            chrono::Utc::now(),
            None,
        )
        .expect("sign");
    let report = driver.flush_now().expect("flush");
    assert_eq!((report.sent, report.needs_attention), (2, 1), "{report:?}");
    let received = sim.received();
    assert_eq!(received.images.len(), 1);
    assert_eq!(received.images[0].idempotency_key, good.id);
    let failed = capture_of(&driver, &barcode, &bad.id);
    assert_eq!(failed.state, ItemState::NeedsAttention);
    assert!(failed.last_error.unwrap_or_default().contains("damaged"));
}

#[test]
fn photos_left_unrendered_are_rendered_at_the_next_open() {
    let _serial = serial();
    let sim = small();
    let data = tempfile::tempdir().expect("tempdir");
    let barcode = sim.consignments()[0].barcode.clone();
    // As if the app died between the capture and its rendition.
    let first = open(&sim, data.path(), false);
    let item = first
        .add_photo(
            &barcode,
            &photo(3),
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
        )
        .expect("photo");
    assert!(capture_of(&first, &barcode, &item.id).upload.is_none());
    drop(first);

    let (tx, rendered) = mpsc::channel::<()>();
    let tx = Mutex::new(tx);
    let _hook = upn_core::failpoint::on("render.before_record", move || {
        let _ = tx.lock().expect("lock").send(());
    });
    let again = open(&sim, data.path(), true);
    rendered
        .recv_timeout(PATIENCE)
        .expect("the renderer picks it up at open, unasked");
    again.render_pending().expect("wait for it");
    let upload = capture_of(&again, &barcode, &item.id)
        .upload
        .expect("rendered at open");
    assert!(upload.bytes > 0);
}

#[test]
fn a_photo_discarded_while_it_renders_leaves_no_file_behind() {
    let _serial = serial();
    let sim = small();
    let data = tempfile::tempdir().expect("tempdir");
    let driver = Arc::new(open(&sim, data.path(), true));
    let barcode = sim.consignments()[0].barcode.clone();
    let renderer = hold("render.before_record", 1);
    let item = driver
        .add_photo(
            &barcode,
            &photo(4),
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
        )
        .expect("photo");
    renderer
        .reached
        .recv_timeout(PATIENCE)
        .expect("rendition written, not recorded");
    let discarded = driver.discard(&item.id).expect("discard");
    assert_eq!(discarded.state, ItemState::Discarded);
    renderer.go.send(()).expect("release");
    driver.render_pending().expect("settle");
    drop(renderer);
    let left: Vec<String> = std::fs::read_dir(data.path().join("blobs"))
        .expect("blobs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The id decision is the inserting transaction's: a row under the same id committed between
/// the early look-up and the insert (another writer) is compared there.
#[test]
fn a_capture_id_taken_just_before_the_insert_is_decided_inside_the_transaction() {
    let _serial = serial();
    let sim = small();
    let data = tempfile::tempdir().expect("tempdir");
    let driver = open(&sim, data.path(), false);
    let barcode = sim.consignments()[0].barcode.clone();
    let id = "0123456789abcdef0123456789abcdef";
    let bytes = photo(5);
    let sha = upn_core::digest::sha256_hex(&bytes);
    let db = data.path().join(upn_core::testing::store::DB_FILE_NAME);
    let insert = |sha: String, len: usize, barcode: String| {
        let db = db.clone();
        move || {
            let conn = rusqlite::Connection::open(&db).expect("second connection");
            conn.execute(
                "INSERT INTO captures (id, barcode, kind, seq, original_file, original_sha256,
                 original_bytes, state, captured_at) VALUES (?1, ?2, 'goods', 1000, ?3, ?4, ?5,
                 'waiting', 1764000000000)",
                rusqlite::params![id, barcode, format!("{id}.orig"), sha, len as i64],
            )
            .expect("the other writer's row");
        }
    };
    // The same photo: the call returns the row the other writer committed.
    let hook = upn_core::failpoint::on(
        "capture.before_insert",
        insert(sha, bytes.len(), barcode.clone()),
    );
    let item = driver
        .add_photo_with_id(
            &barcode,
            &bytes,
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
            Some(id),
        )
        .expect("the same capture");
    drop(hook);
    assert_eq!(item.id, id);
    assert_eq!(driver.outbox().expect("outbox").len(), 1);
    // Its staged file went away; the other writer's (absent) file was never written over.
    let leftovers: Vec<_> = std::fs::read_dir(data.path().join("blobs"))
        .expect("blobs")
        .flatten()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Another id taken with other bytes: a conflict, nothing recorded.
    let other = "fedcba9876543210fedcba9876543210";
    let hook = upn_core::failpoint::on("capture.before_insert", {
        let db = db.clone();
        let barcode = barcode.clone();
        move || {
            let conn = rusqlite::Connection::open(&db).expect("second connection");
            conn.execute(
                "INSERT INTO captures (id, barcode, kind, seq, original_file, original_sha256,
                 original_bytes, state, captured_at) VALUES (?1, ?2, 'goods', 1001, 'x', 'y', 1,
                 'waiting', 1764000000000)",
                rusqlite::params![other, barcode],
            )
            .expect("the other writer's row");
        }
    });
    let err = driver
        .add_photo_with_id(
            &barcode,
            &bytes,
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
            Some(other),
        )
        .expect_err("a conflict");
    drop(hook);
    assert!(matches!(err, Error::CaptureIdConflict { .. }), "{err:?}");
    assert_eq!(driver.outbox().expect("outbox").len(), 2);
}
