//! The FFI's `async` exports run on the core's runtime, not on a thread per call: fifty
//! concurrent calls share the core's bounded blocking pool. A test binary of its own: it counts
//! the process's threads and holds captures with a process-wide failpoint hook.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use upn_ffi::{
    ApiKey, CoreConfig, CoreError, DriverCore, OutboxItemRecord, OutboxState, PhotoKind,
};

type Call = Pin<Box<dyn Future<Output = Result<OutboxItemRecord, CoreError>>>>;
use upn_sim::{samples, SimConfig, Simulator};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// Where held captures wait: counts arrivals, opens once for all.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Gate {
    fn arrive_and_wait(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        self.changed.notify_all();
        while !s.1 {
            s = self.changed.wait(s).unwrap();
        }
    }

    fn wait_for(&self, arrivals: usize) -> usize {
        let until = Instant::now() + Duration::from_secs(30);
        let mut s = self.state.lock().unwrap();
        while s.0 < arrivals && Instant::now() < until {
            s = self
                .changed
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        s.0
    }

    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

#[test]
fn fifty_concurrent_async_calls_share_the_cores_threads() {
    let sim = Simulator::start_background(
        SimConfig {
            seed: 4,
            consignments: 2,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = CoreConfig::new(sim.endpoint(), sim.depot(), ApiKey::new(sim.api_key()));
    let core = DriverCore::open(dir.path().to_string_lossy().into(), config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(core.import_now()).unwrap();
    let barcode = core.stops().unwrap()[0].barcode.clone();
    let photo = samples::photo_jpeg(1, 640, 480);
    let before = threads();

    let gate = Arc::new(Gate::default());
    let held = gate.clone();
    let _hook = upn_core::failpoint::on("capture.before_gate", move || held.arrive_and_wait());
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut calls: Vec<Call> = (0..50)
        .map(|_| {
            let core = core.clone();
            let (barcode, photo) = (barcode.clone(), photo.clone());
            Box::pin(async move {
                core.add_photo(barcode, photo, PhotoKind::Goods, now_ms, None, None)
                    .await
            }) as Call
        })
        .collect();
    // Each call starts (its first poll hands the work to the core) and waits.
    let mut cx = Context::from_waker(Waker::noop());
    for call in &mut calls {
        assert!(call.as_mut().poll(&mut cx).is_pending());
    }
    let arrived = gate.wait_for(upn_core::BLOCKING_THREADS);
    let during = threads();
    gate.open();
    assert_eq!(
        arrived,
        upn_core::BLOCKING_THREADS,
        "the pool ran its share"
    );
    assert!(
        during <= before + upn_core::BLOCKING_THREADS + 2,
        "50 calls in flight made {} threads (before: {before}, during: {during})",
        during.saturating_sub(before)
    );

    for call in calls {
        let item = rt.block_on(call).expect("the held capture completes");
        assert_eq!(item.state, OutboxState::Waiting);
    }
    assert_eq!(core.outbox().unwrap().len(), 50);
    rt.block_on(core.shutdown(2_000));
}
