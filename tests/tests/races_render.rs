//! The flush waits only briefly for the niced background renderer (issue 11): when the flush
//! needs a photo the renderer is still on after that, it renders the photo itself at normal
//! priority, and exactly one of the two renditions becomes `blobs/{id}.upload` (the first
//! published), the row's sha256 is that file's and the upload is those bytes; a renderer done
//! in time is not rendered twice. It does wait for its assistant (the
//! normal-priority renderer that works ahead of a flush) rather than render a photo twice, and
//! sends a photo that is ready ahead of one still being made. Race windows are opened with
//! hooks on `render.mid_render` / `render.assist_mid_render` (inside the two renderers'
//! threads), `outbox.before_claim`, `outbox.waits_for_assistant` / `outbox.waits_for_renderer`,
//! `outbox.rendition_made` (the
//! flush's own rendition made, not yet published) and `render.before_record`; this file is the
//! only one registering them, and its tests run one at a time (`serial`).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::{Driver, DriverConfig};
use upn_e2e::hooks::{hold, serial, PATIENCE};
use upn_e2e::{blob_files, manual_clock, photo, signature, sim, upn_config, TestDriver};
use upn_sim::{SimConfig, SimHandle};

fn small() -> SimHandle {
    sim(SimConfig {
        seed: 43,
        consignments: 2,
        ..SimConfig::default()
    })
}

fn open(sim: &SimHandle) -> TestDriver {
    let data = tempfile::tempdir().expect("tempdir");
    let config = DriverConfig::new(data.path(), upn_config(sim));
    assert!(config.background_renditions, "the renderer runs by default");
    let driver = Driver::open_with_clock(config, manual_clock()).expect("open");
    driver.import_now().expect("import");
    TestDriver { driver, data }
}

fn capture_of(t: &TestDriver, barcode: &str, id: &str) -> upn_core::Capture {
    t.driver
        .captures(barcode)
        .expect("captures")
        .into_iter()
        .find(|c| c.id == id)
        .expect("the capture")
}

/// A photo (waiting for its POD) and the POD, captured; the renderer starts on the photo as
/// soon as it is captured.
fn photo_and_pod(t: &TestDriver, barcode: &str) -> String {
    let id = add_photo(t, barcode, 7);
    sign(t, barcode);
    id
}

/// A photo of `barcode`, captured now.
fn add_photo(t: &TestDriver, barcode: &str, seed: u64) -> String {
    t.driver
        .add_photo(
            barcode,
            &photo(seed),
            CaptureKind::Goods,
            chrono::Utc::now(),
            None,
        )
        .expect("photo")
        .id
}

fn sign(t: &TestDriver, barcode: &str) {
    t.driver
        .sign(
            barcode,
            &signature(7),
            "A. Signer",
            chrono::Utc::now(),
            None,
        )
        .expect("sign");
}

/// Runs a flush on a thread of its own; its report arrives on the receiver.
fn flush_in_background(
    driver: &Arc<TestDriver>,
) -> mpsc::Receiver<upn_core::Result<upn_core::FlushReport>> {
    let (tx, rx) = mpsc::channel();
    let t = driver.clone();
    std::thread::spawn(move || {
        let _ = tx.send(t.driver.flush_now());
    });
    rx
}

/// The folder holds exactly one rendition of `id`, no temporary file, and the row, the file
/// and what UPN stored agree.
fn assert_one_consistent_rendition(t: &TestDriver, sim: &SimHandle, barcode: &str, id: &str) {
    let capture = capture_of(t, barcode, id);
    assert_eq!(capture.state, ItemState::Sent);
    let upload = capture.upload.expect("a recorded rendition");
    let files = blob_files(t);
    let renditions: Vec<&String> = files
        .iter()
        .filter(|f| f.contains(id) && f.ends_with(".upload"))
        .collect();
    assert_eq!(renditions, [&upload.name], "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with(".tmp-")), "{files:?}");
    let bytes = std::fs::read(t.data.path().join("blobs").join(&upload.name)).expect("read");
    assert_eq!(upn_core::digest::sha256_hex(&bytes), upload.sha256);
    let received = sim.received();
    let images: Vec<_> = received
        .images
        .iter()
        .filter(|i| i.idempotency_key == id)
        .collect();
    assert_eq!(images.len(), 1, "{received:?}");
    assert_eq!(images[0].sha256, upload.sha256);
    assert_eq!(images[0].bytes, upload.bytes);
}

/// A signed stop with one photo whose background rendition is held mid-way (the renderer
/// holding its claim on the photo), as a starved niced thread would be.
struct RendererHeld {
    _serial: std::sync::MutexGuard<'static, ()>,
    sim: SimHandle,
    t: Arc<TestDriver>,
    barcode: String,
    renderer: upn_e2e::hooks::Hold,
    id: String,
}

impl RendererHeld {
    /// The held photo's capture, as it is now.
    fn photo(&self) -> upn_core::Capture {
        capture_of(&self.t, &self.barcode, &self.id)
    }

    fn assert_one_consistent_rendition(&self) {
        assert_one_consistent_rendition(&self.t, &self.sim, &self.barcode, &self.id);
    }
}

fn renderer_held_on_a_photo() -> RendererHeld {
    let _serial = serial();
    let sim = small();
    let t = Arc::new(open(&sim));
    let barcode = sim.consignments()[0].barcode.clone();
    let renderer = hold("render.mid_render", 1);
    let id = photo_and_pod(&t, &barcode);
    renderer
        .reached
        .recv_timeout(PATIENCE)
        .expect("the renderer is on the photo");
    RendererHeld {
        _serial,
        sim,
        t,
        barcode,
        renderer,
        id,
    }
}

#[test]
fn the_flush_uploads_a_photo_the_renderer_is_stuck_on_without_waiting_for_it_long() {
    let held = renderer_held_on_a_photo();

    let report = flush_in_background(&held.t)
        .recv_timeout(PATIENCE)
        .expect("the flush finished while the renderer was still held: it did not wait for it long")
        .expect("flush");
    assert_eq!((report.sent, report.needs_attention), (2, 0), "{report:?}");
    held.assert_one_consistent_rendition();
    let uploaded = held.photo().upload;

    // The renderer finishes after all: its rendition loses, and nothing of it is written.
    held.renderer.go.send(()).expect("release the renderer");
    held.t.driver.render_pending().expect("settle the renderer");
    assert_eq!(held.photo().upload, uploaded);
    held.assert_one_consistent_rendition();
}

#[test]
fn when_the_renderer_publishes_first_the_flush_uploads_the_renderers_file() {
    let held = renderer_held_on_a_photo();
    // The flush makes its own rendition of the photo and stops before publishing it (the
    // first rendition it makes is the POD's signature: the POD goes first).
    let flush = hold("outbox.rendition_made", 2);
    let (recorded, _renderer_writes) = signal("render.before_record");
    let report = flush_in_background(&held.t);
    flush
        .reached
        .recv_timeout(PATIENCE)
        .expect("the flush rendered the photo itself");
    // Now the renderer goes on, publishes first, and lets go of the photo.
    held.renderer.go.send(()).expect("release the renderer");
    recorded
        .recv_timeout(PATIENCE)
        .expect("the renderer publishes its rendition");
    held.t
        .driver
        .render_pending()
        .expect("the renderer is done");
    let by_renderer = held
        .photo()
        .upload
        .expect("the renderer's rendition is recorded on the claimed row");
    flush.go.send(()).expect("release the flush");
    let report = report
        .recv_timeout(PATIENCE)
        .expect("flush")
        .expect("flush");
    assert_eq!((report.sent, report.needs_attention), (2, 0), "{report:?}");
    held.assert_one_consistent_rendition();
    assert_eq!(held.photo().upload, Some(by_renderer));
}

/// Says each time `name` is hit, holding nothing.
fn signal(name: &str) -> (mpsc::Receiver<()>, upn_core::failpoint::HookGuard) {
    let (tx, rx) = mpsc::channel::<()>();
    let tx = Mutex::new(tx);
    let hook = upn_core::failpoint::on(name, move || {
        let _ = tx.lock().expect("lock").send(());
    });
    (rx, hook)
}

/// The niced renderer's first render held: on the first photo, captured here.
fn first_photo_with_the_renderer_held(
    t: &TestDriver,
    barcode: &str,
) -> (upn_e2e::hooks::Hold, String) {
    let renderer = hold("render.mid_render", 1);
    let first = add_photo(t, barcode, 7);
    renderer
        .reached
        .recv_timeout(PATIENCE)
        .expect("renderer on the first photo");
    (renderer, first)
}

/// Once the flush says it waits for a maker (`waits`), lets that maker (`held`) go on; then
/// the flush's report.
fn release_when_the_flush_waits(
    waits: &mpsc::Receiver<()>,
    held: &upn_e2e::hooks::Hold,
    report: &mpsc::Receiver<upn_core::Result<upn_core::FlushReport>>,
) -> upn_core::FlushReport {
    waits
        .recv_timeout(PATIENCE)
        .expect("the flush waits for the maker under way");
    held.go.send(()).expect("release the maker");
    report
        .recv_timeout(PATIENCE)
        .expect("flush")
        .expect("flush")
}

/// Counts the renditions the flush makes itself (the POD's signature included).
fn count_flush_renders() -> (Arc<Mutex<u32>>, upn_core::failpoint::HookGuard) {
    let count = Arc::new(Mutex::new(0u32));
    let counter = count.clone();
    let hook = upn_core::failpoint::on("outbox.rendition_made", move || {
        *counter.lock().expect("lock") += 1;
    });
    (count, hook)
}

#[test]
fn the_flush_waits_for_its_assistant_instead_of_rendering_a_photo_twice() {
    let _serial = serial();
    let sim = small();
    let t = Arc::new(open(&sim));
    let barcode = sim.consignments()[0].barcode.clone();
    // The niced renderer is stuck on the first photo, so the second is left to the assistant.
    let (renderer, first) = first_photo_with_the_renderer_held(&t, &barcode);
    let second = add_photo(&t, &barcode, 8);
    sign(&t, &barcode);

    let assistant = hold("render.assist_mid_render", 1);
    // The flush starts only once the assistant is on the second photo.
    let flush_start = hold("outbox.before_claim", 1);
    let (renders, _counting) = count_flush_renders();
    let report = flush_in_background(&t);
    flush_start
        .reached
        .recv_timeout(PATIENCE)
        .expect("the flush starts");
    assistant
        .reached
        .recv_timeout(PATIENCE)
        .expect("the assistant renders the photo nobody is on");
    let (waits, _waiting) = signal("outbox.waits_for_assistant");
    flush_start.go.send(()).expect("release the flush");
    // The flush sends the POD and renders the first photo itself (the niced renderer is
    // stuck), then waits for the assistant's second photo instead of rendering it too.
    let report = release_when_the_flush_waits(&waits, &assistant, &report);
    assert_eq!((report.sent, report.needs_attention), (3, 0), "{report:?}");
    assert_eq!(
        *renders.lock().expect("lock"),
        2,
        "the flush rendered the signature and the first photo, not the assistant's photo"
    );
    renderer.go.send(()).expect("release the renderer");
    t.driver.render_pending().expect("settle the renderer");
    assert_one_consistent_rendition(&t, &sim, &barcode, &first);
    assert_one_consistent_rendition(&t, &sim, &barcode, &second);
}

#[test]
fn a_photo_whose_rendition_is_made_goes_ahead_of_one_still_being_made() {
    let _serial = serial();
    let sim = small();
    let t = Arc::new(open(&sim));
    let barcode = sim.consignments()[0].barcode.clone();
    // The niced renderer takes the newest photo first: held on the first photo while the
    // others are captured, it then makes the third and is held again on the second.
    let on_second = hold("render.mid_render", 3);
    let (on_first, first) = first_photo_with_the_renderer_held(&t, &barcode);
    let second = add_photo(&t, &barcode, 8);
    let third = add_photo(&t, &barcode, 9);
    on_first.go.send(()).expect("release the renderer");
    on_second
        .reached
        .recv_timeout(PATIENCE)
        .expect("the renderer made the third photo and is on the second");
    assert!(capture_of(&t, &barcode, &first).upload.is_some());
    assert!(capture_of(&t, &barcode, &third).upload.is_some());
    assert!(capture_of(&t, &barcode, &second).upload.is_none());
    sign(&t, &barcode);

    let report = flush_in_background(&t)
        .recv_timeout(PATIENCE)
        .expect("the flush does not wait for the niced renderer")
        .expect("flush");
    assert_eq!((report.sent, report.needs_attention), (4, 0), "{report:?}");
    let sent: Vec<String> = sim
        .received()
        .images
        .iter()
        .map(|i| i.idempotency_key.clone())
        .collect();
    assert_eq!(sent, [first.clone(), third.clone(), second.clone()]);
    on_second.go.send(()).expect("release the renderer");
    t.driver.render_pending().expect("settle the renderer");
    for id in [&first, &second, &third] {
        assert_one_consistent_rendition(&t, &sim, &barcode, id);
    }
}

#[test]
fn a_photo_the_niced_renderer_finishes_in_time_is_not_rendered_twice() {
    let held = renderer_held_on_a_photo();
    let (renders, _counting) = count_flush_renders();
    let (waits, _waiting) = signal("outbox.waits_for_renderer");
    let report = flush_in_background(&held.t);
    let report = release_when_the_flush_waits(&waits, &held.renderer, &report);
    assert_eq!((report.sent, report.needs_attention), (2, 0), "{report:?}");
    assert_eq!(
        *renders.lock().expect("lock"),
        1,
        "the flush rendered the signature only, and sent the renderer's photo"
    );
    held.assert_one_consistent_rendition();
}
