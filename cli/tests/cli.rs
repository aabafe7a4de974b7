//! The CLI as a person or script uses it: real processes, real HTTP to a simulator on loopback,
//! a fresh data folder per test.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use upn_sim::{SimConfig, SimHandle, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_upn-driver");

fn sim(consignments: usize) -> SimHandle {
    Simulator::start_background(
        SimConfig {
            seed: 5,
            consignments,
            ..SimConfig::default()
        },
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .expect("simulator")
}

/// Runs `upn-driver ARGS --db DIR --endpoint E --depot D` with the key in the environment.
fn driver(
    sim_endpoint: &str,
    depot: &str,
    key: Option<&str>,
    dir: &std::path::Path,
    args: &[&str],
) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args([
            "--db",
            &dir.to_string_lossy(),
            "--endpoint",
            sim_endpoint,
            "--depot",
            depot,
        ])
        .env_remove("UPN_API_KEY");
    if let Some(key) = key {
        cmd.env("UPN_API_KEY", key);
    }
    cmd.output().expect("run upn-driver")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn sync_then_stops_and_show_as_json() {
    let sim = sim(8);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = sim.api_key();
    let run = |args: &[&str]| driver(&sim.endpoint(), &sim.depot(), Some(&key), dir.path(), args);

    let out = run(&["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("8 new"), "{}", stdout(&out));

    let out = run(&["stops", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stops: Value = serde_json::from_str(&stdout(&out)).expect("stops JSON");
    let stops = stops.as_array().expect("array");
    assert_eq!(stops.len(), 8);
    for stop in stops {
        for field in [
            "barcode",
            "consignee",
            "address",
            "pallet_count",
            "weight_kg",
            "service",
            "instructions",
            "status",
            "sync",
        ] {
            assert!(stop.get(field).is_some(), "stop lacks {field}: {stop}");
        }
        assert_eq!(
            stop["status"], "booked",
            "the simulator books every consignment"
        );
        assert_eq!(stop["sync"], "none");
    }
    let mut expected: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    let mut got: Vec<String> = stops
        .iter()
        .map(|s| s["barcode"].as_str().unwrap_or_default().to_string())
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    let first = stops[0]["barcode"].as_str().expect("barcode").to_string();
    let out = run(&["show", &first, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let detail: Value = serde_json::from_str(&stdout(&out)).expect("show JSON");
    assert_eq!(detail["barcode"], first.as_str());
    assert_eq!(detail["pod"], Value::Null);
    assert!(detail["timeline"].is_array() && detail["photos"].is_array());
    let pallets = detail["pallets"].as_array().expect("pallets");
    assert_eq!(
        pallets.len() as u64,
        stops[0]["pallet_count"].as_u64().expect("count")
    );
    assert!(pallets
        .iter()
        .all(|p| p["barcode"].is_string() && p["status"] == "booked"));

    // The human table names every stop.
    let out = run(&["stops"]);
    assert!(stdout(&out).contains(&first));
}

#[test]
fn exit_codes_say_what_went_wrong() {
    let sim = sim(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = sim.api_key();

    let out = driver(&sim.endpoint(), &sim.depot(), None, dir.path(), &["sync"]);
    assert_eq!(out.status.code(), Some(2), "missing key: {}", stderr(&out));
    assert!(stderr(&out).contains("UPN_API_KEY"));

    let out = driver(
        &sim.endpoint(),
        &sim.depot(),
        Some("bad-key-xyz"),
        dir.path(),
        &["sync"],
    );
    assert_eq!(out.status.code(), Some(1), "bad key: {}", stderr(&out));
    assert!(stderr(&out).contains("401"));
    assert!(!stderr(&out).contains("bad-key-xyz"), "key leaked");

    let out = driver(
        &sim.endpoint(),
        &sim.depot(),
        Some(&key),
        dir.path(),
        &["show", "UPN0429999999"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "unknown barcode: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("UPN0429999999"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    // Another endpoint needs a folder of its own: this one belongs to the simulator's.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = driver(
        &format!("http://127.0.0.1:{port}"),
        "042",
        Some(&key),
        elsewhere.path(),
        &["sync"],
    );
    assert_eq!(out.status.code(), Some(3), "unreachable: {}", stderr(&out));

    let out = Command::new(BIN)
        .args(["sim", "--faults", "pod:boom:0.5"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "bad faults: {}", stderr(&out));
    assert!(stderr(&out).contains("boom"));

    let out = Command::new(BIN).args(["stops"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "usage");
}

#[test]
fn the_sim_command_prints_what_the_driver_commands_need() {
    let mut child = Command::new(BIN)
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "9",
            "--consignments",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sim");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let word_after = |flag: &str| {
        first
            .split_whitespace()
            .skip_while(|w| *w != flag)
            .nth(1)
            .map(str::to_string)
    };
    let endpoint = word_after("--endpoint").expect("endpoint on first line");
    let depot = word_after("--depot").expect("depot on first line");
    let key = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("UPN_API_KEY="))
        .expect("key on first line")
        .to_string();

    let dir = tempfile::tempdir().expect("tempdir");
    let out = driver(&endpoint, &depot, Some(&key), dir.path(), &["sync"]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(0), "{first} {}", stderr(&out));
    assert!(stdout(&out).contains("3 new"));
}

#[test]
fn the_demo_prints_a_stop_list() {
    let out = Command::new(BIN)
        .args(["demo", "--consignments", "5"])
        .output()
        .expect("demo");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("5 stops"), "{text}");
    // The whole day: offline capture, the flush on reconnect, and what UPN received.
    assert!(text.contains("taken before the signature"), "{text}");
    assert!(text.contains("What UPN received"), "{text}");
    // #1 is another device's POD for the third stop, which UPN then refuses from this one.
    assert!(
        text.contains("#1 POD") && text.contains("signed by Other Driver"),
        "{text}"
    );
    assert!(text.contains("#2 POD"), "{text}");
    assert!(text.contains("#3 image"), "{text}");
    assert!(text.contains("#4 image"), "{text}");
    assert!(text.contains("timeline"), "{text}");
    // Depot support: the refusal explained, a receipt, an invoice, the diagnostics summary.
    assert!(
        text.contains("Needs attention: UPN refused the POD"),
        "{text}"
    );
    assert!(text.contains("upn-driver retry"), "{text}");
    assert!(text.contains("name, time and place: verified"), "{text}");
    assert!(text.contains("1 near misses"), "{text}");
    assert!(text.contains("problem  ePOD reaching UPN"), "{text}");
}

/// The data folder's owner (an app, another command) keeps the CLI out: it waits a bounded
/// time, says so, and gives up with exit 1; when the owner lets go within the wait, it goes on.
#[test]
fn a_command_waits_a_bounded_time_for_the_data_folders_owner() {
    let sim = sim(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = sim.api_key();
    let owner = upn_core::Driver::open(upn_core::DriverConfig::new(
        dir.path(),
        upn_core::upn::UpnConfig {
            endpoint: sim.endpoint(),
            depot: sim.depot(),
            api_key: upn_core::upn::ApiKey::new(key.clone()),
        },
    ))
    .expect("owner");

    let started = std::time::Instant::now();
    let out = driver(
        &sim.endpoint(),
        &sim.depot(),
        Some(&key),
        dir.path(),
        &["outbox", "--lock-wait", "1"],
    );
    let waited = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is in use"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--lock-wait"), "{}", stderr(&out));
    assert!(waited >= std::time::Duration::from_secs(1), "{waited:?}");
    assert!(waited < std::time::Duration::from_secs(8), "{waited:?}");

    // Released while the command waits: it then runs normally.
    let mut child = Command::new(BIN)
        .args(["outbox", "--lock-wait", "30", "--db"])
        .arg(dir.path())
        .args(["--endpoint", &sim.endpoint(), "--depot", &sim.depot()])
        .env("UPN_API_KEY", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut errors = BufReader::new(child.stderr.take().expect("stderr"));
    let mut waiting = String::new();
    errors.read_line(&mut waiting).expect("read");
    assert!(waiting.contains("waiting up to 30 s"), "{waiting}");
    drop(owner);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut errors, &mut rest).expect("read");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{rest}");
}

/// A loopback listener that counts connections and answers each request with `respond(head)`
/// (the request line and headers). For what the simulator never does: echo the key, or be a
/// proxy that must see nothing.
struct Listener {
    addr: SocketAddr,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Listener {
    fn start(respond: impl Fn(&str) -> String + Send + 'static) -> Self {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut head = String::new();
                let mut reader = BufReader::new(&stream);
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => head.push_str(&line),
                    }
                }
                let _ = stream.write_all(respond(&head).as_bytes());
            }
        });
        Self { addr, connections }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn bad_flag_values_exit_2_name_the_problem_and_send_nothing() {
    let upn = Listener::start(|_| {
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".into()
    });
    let endpoint = upn.endpoint();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a folder").expect("file");
    let dir = tmp.path().join("data");
    let cases: Vec<(&str, &str, &str, &std::path::Path, &str)> = vec![
        // (endpoint, depot, key, --db, what stderr must name)
        (&endpoint, "../../x", "k-1", &dir, "depot"),
        (&endpoint, "042?x=1", "k-1", &dir, "depot"),
        ("ftp://127.0.0.1/", "042", "k-1", &dir, "endpoint"),
        ("http://upn.example.com", "042", "k-1", &dir, "endpoint"),
        (&endpoint, "042", "k-1\n", &dir, "api key"),
        (&endpoint, "042", "k 1", &dir, "api key"),
        (&endpoint, "042", "k-1", &file, "a-file"),
    ];
    for (endpoint, depot, key, db, names) in cases {
        for command in [&["sync"][..], &["stops"][..]] {
            let out = driver(endpoint, depot, Some(key), db, command);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command:?} {endpoint} {depot:?} {key:?} {db:?}: {}",
                stderr(&out)
            );
            assert!(stderr(&out).contains(names), "{names}: {}", stderr(&out));
        }
    }
    assert_eq!(
        upn.connections(),
        0,
        "a refused configuration sent something"
    );
    assert!(
        !dir.exists(),
        "a refused configuration created the data folder"
    );
    assert_eq!(std::fs::read(&file).expect("file"), b"not a folder");
}

#[test]
fn an_environment_proxy_is_never_used() {
    let sim = sim(3);
    let proxy = Listener::start(|_| "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy_url = proxy.endpoint();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "sync",
        "--db",
        &dir.path().to_string_lossy(),
        "--endpoint",
        &sim.endpoint(),
        "--depot",
        &sim.depot(),
    ])
    .env("UPN_API_KEY", sim.api_key());
    for var in ["NO_PROXY", "no_proxy"] {
        cmd.env_remove(var);
    }
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env(var, &proxy_url);
    }
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 new"), "{}", stdout(&out));
    assert_eq!(proxy.connections(), 0, "the environment proxy saw traffic");
}

#[test]
fn a_server_message_echoing_the_key_never_reaches_stderr() {
    let key = "cli-secret-key-91b2";
    let upn = Listener::start(|head| {
        const HEADER: &str = "x-upn-api-key:";
        let echoed = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(HEADER))
            .map(|l| l[HEADER.len()..].trim().to_string())
            .unwrap_or_default();
        let body = format!(
            r#"{{"server_time":"2026-01-01T00:00:00Z","error":{{"code":"invalid_request","message":"bad request with key {echoed}"}}}}"#
        );
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let out = driver(
        &upn.endpoint(),
        "042",
        Some(key),
        dir.path(),
        &["sync", "-vv"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(upn.connections() > 0);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains(key), "the key reached the output: {text}");
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn stops_json_into_a_closed_pipe_does_not_panic() {
    let sim = sim(30);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = sim.api_key();
    let out = driver(
        &sim.endpoint(),
        &sim.depot(),
        Some(&key),
        dir.path(),
        &["sync"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for args in [
        &["stops", "--json"][..],
        &["stops"][..],
        &["outbox", "--json"][..],
    ] {
        // The reader is gone before the child writes a byte: every write is EPIPE, at once.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(BIN)
            .args(args)
            .args([
                "--db",
                &dir.path().to_string_lossy(),
                "--endpoint",
                &sim.endpoint(),
                "--depot",
                &sim.depot(),
            ])
            .env("UPN_API_KEY", &key)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn retry_discard_and_sync_say_what_remains_in_their_exit_codes() {
    let sim = sim(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = sim.api_key();
    let run = |args: &[&str]| driver(&sim.endpoint(), &sim.depot(), Some(&key), dir.path(), args);
    assert_eq!(run(&["sync"]).status.code(), Some(0));
    let barcode = sim.consignments()[0].barcode.clone();

    // Unknown ids and usage mistakes are bad input.
    for args in [
        &["retry", "no-such-capture"][..],
        &["discard", "no-such-capture"][..],
        &["retry"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert!(stderr(&run(&["retry", "no-such-capture"])).contains("no-such-capture"));

    // A photo waiting for its signature is pending: sync exits 3 and says why on stderr.
    let photo = dir.path().join("photo.jpg");
    std::fs::write(&photo, upn_sim::samples::photo_jpeg(3, 800, 600)).expect("photo file");
    let out = run(&["photo", &barcode, &photo.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&["sync"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("wait for a signature"),
        "{}",
        stderr(&out)
    );

    let out = run(&["outbox", "--json"]);
    let items: Value = serde_json::from_str(&stdout(&out)).expect("outbox JSON");
    let id = items[0]["id"].as_str().expect("id").to_string();
    // Waiting for its signature is not retryable: a clear refusal, exit 2.
    let out = run(&["retry", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("waiting"), "{}", stderr(&out));
    assert_eq!(run(&["retry", "--all"]).status.code(), Some(0));

    let out = run(&["discard", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&["discard", &id]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "discarded twice: {}",
        stderr(&out)
    );
    let out = run(&["sync"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nothing pending: {}",
        stderr(&out)
    );
}
