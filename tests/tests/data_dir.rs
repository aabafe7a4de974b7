//! One owner per data folder, and an open that refuses changes nothing: the lock, the orphan
//! sweep (quarantine, only the core's own names, never a lost database's captures), and
//! newer or corrupt database files left byte-identical.

use std::path::Path;

use upn_core::testing::store::blobs::QUARANTINE_DIR_NAME;
use upn_core::testing::store::{DB_FILE_NAME, LOCK_FILE_NAME};
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::{signature, sim, upn_config};
use upn_sim::{SimConfig, SimHandle};

fn small() -> SimConfig {
    SimConfig {
        seed: 9,
        consignments: 2,
        ..SimConfig::default()
    }
}

fn open(sim: &SimHandle, data: &Path) -> upn_core::Result<Driver> {
    Driver::open(DriverConfig::new(data, upn_config(sim)))
}

/// Every file under `dir` (recursively) with its sha256, sorted; the lock file left out (it is
/// not data, and creating it is how an open asks who owns the folder).
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).expect("list").flatten() {
            let path = e.path();
            let name = path
                .strip_prefix(root)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            if name == LOCK_FILE_NAME {
                continue;
            }
            if path.is_dir() {
                out.push((format!("{name}/"), String::new()));
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.push((name, upn_core::digest::sha256_hex(&bytes)));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn blob_names(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("blobs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A data folder with one signed (unsent) POD, its driver closed again.
fn folder_with_a_capture(sim: &SimHandle) -> (tempfile::TempDir, String) {
    let data = tempfile::tempdir().expect("tempdir");
    let driver = open(sim, data.path()).expect("open");
    driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    let signed = driver
        .sign(
            &barcode,
            &signature(1),
            "Owner Test",
            chrono::Utc::now(),
            None,
        )
        .expect("sign");
    drop(driver);
    (data, signed.item.id)
}

#[test]
fn a_second_open_of_the_same_folder_is_refused_while_the_first_lives() {
    let sim = sim(small());
    let data = tempfile::tempdir().expect("tempdir");
    let first = open(&sim, data.path()).expect("first open");
    let err = open(&sim, data.path()).expect_err("second open must be refused");
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("in use"), "{err}");
    // The first one is unaffected, and the folder is free again once it is closed.
    first.import_now().expect("first still works");
    drop(first);
    open(&sim, data.path()).expect("open after close");
}

#[test]
fn a_capture_file_of_the_owner_cannot_be_swept_by_a_second_opener() {
    let sim = sim(small());
    let data = tempfile::tempdir().expect("tempdir");
    let owner = open(&sim, data.path()).expect("owner");
    owner.import_now().expect("import");
    // The owner's capture between its file's rename and its row's commit: a finished file in
    // blobs/ that no row names yet.
    let in_flight = format!("{}.orig", "ab".repeat(16));
    std::fs::write(data.path().join("blobs").join(&in_flight), b"just stored").expect("write");
    let before = snapshot(data.path());

    let err = open(&sim, data.path()).expect_err("the owner holds the folder");
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    assert_eq!(
        snapshot(data.path()),
        before,
        "a refused opener changed the folder"
    );
    assert!(blob_names(data.path()).contains(&in_flight));
}

#[test]
fn files_the_core_never_wrote_survive_an_open() {
    let sim = sim(small());
    let (data, id) = folder_with_a_capture(&sim);
    let blobs = data.path().join("blobs");
    let foreign = ["notes.txt", "photo.jpg", "abc.orig", ".hidden"];
    for name in foreign {
        std::fs::write(blobs.join(name), name.as_bytes()).expect("write");
    }
    std::fs::create_dir(blobs.join(format!("{}.orig", "cd".repeat(16)))).expect("dir");
    #[cfg(unix)]
    {
        let outside = data.path().join("elsewhere.bin");
        std::fs::write(&outside, b"not the core's").expect("write");
        std::os::unix::fs::symlink(&outside, blobs.join(format!("{}.orig", "ef".repeat(16))))
            .expect("symlink");
    }
    let before = blob_names(data.path());

    let driver = open(&sim, data.path()).expect("reopen");
    assert_eq!(blob_names(data.path()), before);
    for name in foreign {
        assert_eq!(
            std::fs::read(blobs.join(name)).expect("survived"),
            name.as_bytes()
        );
    }
    #[cfg(unix)]
    assert_eq!(
        std::fs::read(data.path().join("elsewhere.bin")).expect("target"),
        b"not the core's"
    );
    assert_eq!(driver.outbox().expect("outbox")[0].id, id);
    assert!(!data.path().join(QUARANTINE_DIR_NAME).exists());
}

#[test]
fn orphans_of_an_interrupted_capture_go_to_quarantine_not_away() {
    let sim = sim(small());
    let (data, id) = folder_with_a_capture(&sim);
    let blobs = data.path().join("blobs");
    let orphan = format!("{}.orig", "12".repeat(16));
    let temp = format!(".tmp-{}.upload", "34".repeat(16));
    std::fs::write(blobs.join(&orphan), b"row never committed").expect("write");
    std::fs::write(blobs.join(&temp), b"half written").expect("write");

    let driver = open(&sim, data.path()).expect("reopen");
    assert_eq!(blob_names(data.path()), [format!("{id}.orig")]);
    let quarantine = data.path().join(QUARANTINE_DIR_NAME);
    assert_eq!(
        std::fs::read(quarantine.join(&orphan)).expect("quarantined"),
        b"row never committed"
    );
    assert_eq!(
        std::fs::read(quarantine.join(&temp)).expect("quarantined"),
        b"half written"
    );
    assert_eq!(driver.outbox().expect("outbox").len(), 1);
}

#[test]
fn a_lost_or_emptied_database_beside_captures_is_refused_and_nothing_is_deleted() {
    let sim = sim(small());
    for emptied in [false, true] {
        let (data, id) = folder_with_a_capture(&sim);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(data.path().join(format!("{DB_FILE_NAME}{suffix}")));
        }
        if emptied {
            // A fresh, empty database in its place (a reinstall, a restore gone wrong).
            drop(
                upn_core::testing::store::Store::open(&data.path().join(DB_FILE_NAME))
                    .expect("empty"),
            );
        }
        let before = snapshot(data.path());

        let err = open(&sim, data.path()).expect_err("must refuse");
        assert!(
            matches!(err, Error::NeedsRecovery { files: 1, .. }),
            "emptied={emptied}: {err:?}"
        );
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        assert_eq!(snapshot(data.path()), before, "emptied={emptied}");
        assert_eq!(blob_names(data.path()), [format!("{id}.orig")]);
        assert!(!data.path().join(QUARANTINE_DIR_NAME).exists());
        // Still refused on the next try: the decision is a person's.
        assert!(matches!(
            open(&sim, data.path()),
            Err(Error::NeedsRecovery { .. })
        ));
    }
}

#[test]
fn a_newer_or_corrupt_database_is_refused_and_the_folder_stays_byte_identical() {
    let sim = sim(small());
    let garbage: Vec<u8> = (0..16_384u32).map(|i| (i * 31 + 7) as u8).collect();
    for case in ["newer", "corrupt"] {
        let (data, _) = folder_with_a_capture(&sim);
        let db = data.path().join(DB_FILE_NAME);
        match case {
            "newer" => {
                // A newer app's file: the header's user_version (bytes 60..64, big-endian).
                let mut bytes = std::fs::read(&db).expect("db");
                bytes[60..64].copy_from_slice(&999u32.to_be_bytes());
                std::fs::write(&db, bytes).expect("future");
            }
            _ => std::fs::write(&db, &garbage).expect("garbage"),
        }
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(data.path().join(format!("{DB_FILE_NAME}{suffix}")));
        }
        let before = snapshot(data.path());
        let err = open(&sim, data.path()).expect_err("must refuse");
        match case {
            "newer" => assert!(
                matches!(err, Error::StoreTooNew { found: 999, .. }),
                "{err:?}"
            ),
            _ => assert!(matches!(err, Error::StoreUnreadable { .. }), "{err:?}"),
        }
        assert_eq!(snapshot(data.path()), before, "{case}");
    }
}

#[test]
fn a_folder_belongs_to_the_depot_and_endpoint_of_its_first_open() {
    let sim_a = sim(small());
    let (data, _id) = folder_with_a_capture(&sim_a);
    let before = snapshot(data.path());

    // Another depot on the same UPN: refused, nothing read, changed or sent.
    let mut other_depot = upn_config(&sim_a);
    other_depot.depot = "043".into();
    let err = Driver::open(DriverConfig::new(data.path(), other_depot)).expect_err("other depot");
    match &err {
        Error::DataFolderBound {
            depot, endpoint, ..
        } => {
            assert_eq!(depot, &sim_a.depot());
            assert_eq!(endpoint, sim_a.endpoint().trim_end_matches('/'));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("wipe"), "{err}");
    assert_eq!(
        snapshot(data.path()),
        before,
        "a refused open changed the folder"
    );

    // The same depot at another UPN (here: another simulator with its own key): refused too,
    // and the queued POD never reaches it.
    let sim_b = sim(small());
    let err = open(&sim_b, data.path()).expect_err("other endpoint");
    assert!(matches!(err, Error::DataFolderBound { .. }), "{err:?}");
    assert!(sim_b.received().pods.is_empty());
    assert_eq!(
        snapshot(data.path()),
        before,
        "a refused open changed the folder"
    );

    // Its own depot and endpoint still open it, with its POD queued.
    let driver = open(&sim_a, data.path()).expect("own depot");
    assert_eq!(driver.outbox().expect("outbox").len(), 1);
}

#[test]
fn a_second_open_by_another_spelling_of_the_path_is_refused_at_once() {
    let sim = sim(small());
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().join("core");
    let _first = open(&sim, &dir).expect("first open");
    let started = std::time::Instant::now();
    let dotted = dir.join("..").join("core").join(".");
    let err = open(&sim, &dotted).expect_err("same folder, other spelling");
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    #[cfg(unix)]
    {
        let link = data.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        let err = open(&sim, &link).expect_err("same folder through a symlink");
        assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
