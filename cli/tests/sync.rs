//! `upn-driver sync` is the core's `sync_now`: each step runs and reports its own outcome, and
//! the exit code is the sync's one outcome (0 done, 3 pending or offline, 1 failed).

mod common;

use std::process::Output;

use common::{run, sim};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn a_failing_import_still_sends_the_queued_pod_and_exits_3() {
    let sim = sim(14, 2);
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let barcode = sim.consignments()[0].barcode.clone();
    let sig = files.path().join("sig.png");
    std::fs::write(&sig, upn_sim::samples::signature_png(4)).expect("write");

    assert_eq!(code(&run(&sim, data.path(), &["sync"])), Some(0));
    let signed = run(
        &sim,
        data.path(),
        &[
            "sign",
            &barcode,
            "--image",
            &sig.to_string_lossy(),
            "--name",
            "A. Sync",
        ],
    );
    assert_eq!(code(&signed), Some(0), "{}", text(&signed.stderr));

    sim.set_faults("consignments:500:1".parse().expect("spec"));
    let out = run(&sim, data.path(), &["sync"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        code(&out),
        Some(3),
        "UPN failing for now: {stdout} {stderr}"
    );
    assert!(stderr.contains("import failed"), "{stderr}");
    assert!(stdout.contains("outbox: 1 sent"), "{stdout}");
    assert!(stdout.contains("tracking:"), "{stdout}");
    assert_eq!(sim.received().pods.len(), 1);

    sim.set_faults(upn_sim::FaultSpec::none());
    let out = run(&sim, data.path(), &["sync"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_refused_step_fails_the_sync_with_exit_1_while_the_others_run() {
    let sim = sim(15, 2);
    let data = tempfile::tempdir().expect("tempdir");
    sim.set_access(true, false, true);
    let out = run(&sim, data.path(), &["sync"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), Some(1), "{stdout} {stderr}");
    assert!(stderr.contains("tracking pull failed"), "{stderr}");
    assert!(stdout.contains("imported: 2 new"), "{stdout}");
}
