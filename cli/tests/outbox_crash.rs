//! Kill tests: the driver CLI is a child process stopped at a named failpoint and killed with
//! SIGKILL there; a fresh process then carries on. Nothing captured is lost, and UPN (the
//! simulator) stores nothing twice.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use upn_sim::{SimConfig, SimHandle, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_upn-driver");

struct World {
    sim: SimHandle,
    dir: tempfile::TempDir,
    barcode: String,
}

impl World {
    fn new(throttle: Option<u64>) -> Self {
        let sim = Simulator::start_background(
            SimConfig {
                seed: 33,
                consignments: 2,
                throttle_bytes_per_s: throttle,
                ..SimConfig::default()
            },
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        )
        .expect("simulator");
        let barcode = sim.consignments()[0].barcode.clone();
        let world = Self {
            sim,
            dir: tempfile::tempdir().expect("tempdir"),
            barcode,
        };
        let out = world.run(&["sync"]);
        assert_eq!(out.status.code(), Some(0), "import: {}", stderr(&out));
        world
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("driver")
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write sample");
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        let data = self.data();
        cmd.args(args)
            .args(["--db", &data.to_string_lossy()])
            .args([
                "--endpoint",
                &self.sim.endpoint(),
                "--depot",
                &self.sim.depot(),
            ])
            .env("UPN_API_KEY", self.sim.api_key())
            .env_remove("UPN_FAILPOINT");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run upn-driver")
    }

    /// Runs the CLI until it reports reaching `failpoint`, then SIGKILLs it there.
    fn kill_at(&self, failpoint: &str, args: &[&str]) {
        let mut child = self
            .command(args)
            .env("UPN_FAILPOINT", failpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let wanted = format!("FAILPOINT {failpoint}");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(&wanted) {
                    let _ = tx.send(());
                    return;
                }
            }
        });
        let reached = rx.recv_timeout(Duration::from_secs(120)).is_ok();
        // `Child::kill` is SIGKILL on Unix: no destructors, no flushing, no goodbyes.
        child.kill().expect("kill");
        let status = child.wait().expect("wait");
        assert!(
            reached,
            "the child never reached {failpoint} (exit {status})"
        );
    }

    fn outbox(&self) -> Vec<Value> {
        let out = self.run(&["outbox", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout)
            .expect("outbox JSON")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn photo(&self, seed: u64, width: u16, height: u16) -> PathBuf {
        self.file(
            &format!("photo-{seed}.jpg"),
            &upn_sim::samples::photo_jpeg(seed, width, height),
        )
    }

    fn signature(&self) -> PathBuf {
        self.file("signature.png", &upn_sim::samples::signature_png(1))
    }

    fn assert_delivered_once(&self, images: usize) {
        let out = self.run(&["sync"]);
        assert_eq!(out.status.code(), Some(0), "final sync: {}", stderr(&out));
        assert!(
            self.outbox().is_empty(),
            "outbox not empty: {:?}",
            self.outbox()
        );
        let received = self.sim.received();
        assert_eq!(received.pods.len(), 1, "{received:?}");
        assert_eq!(received.images.len(), images, "{received:?}");
        assert!(received.images.iter().all(|i| i.seq > received.pods[0].seq));
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn killed_right_after_the_capture_commit_the_capture_survives() {
    let w = World::new(None);
    let photo = w.photo(1, 800, 600);
    w.kill_at(
        "capture.after_commit",
        &["photo", &w.barcode, &path(&photo), "--kind", "goods"],
    );
    let outbox = w.outbox();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(outbox[0]["state"], "waiting");
    assert_eq!(outbox[0]["kind"], "goods");

    let sig = w.signature();
    let out = w.run(&[
        "sign",
        &w.barcode,
        "--image",
        &path(&sig),
        "--name",
        "Kill Test",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    w.assert_delivered_once(1);
}

#[test]
fn killed_after_upn_accepted_but_before_marking_sent_nothing_is_stored_twice() {
    let w = World::new(None);
    let photo = w.photo(2, 800, 600);
    let sig = w.signature();
    assert_eq!(
        w.run(&["photo", &w.barcode, &path(&photo)]).status.code(),
        Some(0)
    );
    let out = w.run(&[
        "sign",
        &w.barcode,
        "--image",
        &path(&sig),
        "--name",
        "Kill Test",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    w.kill_at("outbox.after_upload_before_mark", &["sync"]);
    // UPN has the POD; the device does not know yet.
    let received = w.sim.received();
    assert_eq!((received.pods.len(), received.images.len()), (1, 0));
    let outbox = w.outbox();
    assert_eq!(outbox.len(), 2, "{outbox:?}");

    w.assert_delivered_once(1);
    // The restart re-sent the POD under the same key: UPN saw it twice, stored it once.
    assert_eq!(w.sim.received().pods[0].attempts, 2);
}

#[test]
fn killed_in_the_middle_of_an_upload_the_photo_goes_once_later() {
    let w = World::new(Some(150_000));
    let photo = w.photo(3, 2400, 1800);
    let sig = w.signature();
    assert_eq!(
        w.run(&["photo", &w.barcode, &path(&photo)]).status.code(),
        Some(0)
    );
    let out = w.run(&[
        "sign",
        &w.barcode,
        "--image",
        &path(&sig),
        "--name",
        "Kill Test",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    w.kill_at("outbox.mid_upload", &["sync"]);
    let received = w.sim.received();
    assert_eq!(
        (received.pods.len(), received.images.len()),
        (1, 0),
        "{received:?}"
    );
    // The killed upload left its row `sending`, yet nothing is in flight: a retry is not
    // refused as InFlight, the row is settled first.
    let stuck = w
        .outbox()
        .into_iter()
        .find(|i| i["state"] == "sending")
        .expect("a row left sending by the kill");
    let id = stuck["id"].as_str().expect("id").to_string();
    let out = w.run(&["retry", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    w.assert_delivered_once(1);
}

#[test]
fn a_full_disk_refuses_the_capture_and_leaves_nothing_behind() {
    let w = World::new(None);
    let photo = w.photo(4, 800, 600);
    let blobs = w.data().join("blobs");
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(&blobs)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let before = (w.outbox(), files());
    let out = w
        .command(&["photo", &w.barcode, &path(&photo)])
        .env("UPN_FAULT", "blobs.disk_full")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("out of space"), "{}", stderr(&out));
    assert_eq!(
        (w.outbox(), files()),
        before,
        "a failed capture left something behind"
    );
    // Space again: the same capture works.
    assert_eq!(
        w.run(&["photo", &w.barcode, &path(&photo)]).status.code(),
        Some(0)
    );
    assert_eq!(w.outbox().len(), 1);
}
