//! Race windows opened with failpoint hooks: a hook that holds a thread at a named point until
//! the test lets it go, and the lock that runs a hook-using file's tests one at a time (hooks
//! are process-wide).

use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use upn_core::failpoint::HookGuard;

/// Long enough for any machine; a test waits this long only when it is failing.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Held by each test of a file that registers hooks: one test at a time in that binary.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A thread held at a failpoint: `reached` says it got there, `go` lets it on.
pub struct Hold {
    pub reached: mpsc::Receiver<()>,
    pub go: mpsc::Sender<()>,
    _hook: HookGuard,
}

/// A hook that, the `nth` time `name` is hit (from 1), says so and then holds that thread until
/// the test lets it go (or, on a failing run, for a long while). Other hits pass.
pub fn hold(name: &str, nth: u32) -> Hold {
    let (reached_tx, reached) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    let state = Mutex::new((0u32, Some((reached_tx, go_rx))));
    let hook = upn_core::failpoint::on(name, move || {
        let this = {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            state.0 += 1;
            if state.0 == nth {
                state.1.take()
            } else {
                None
            }
        };
        if let Some((reached_tx, go_rx)) = this {
            let _ = reached_tx.send(());
            let _ = go_rx.recv_timeout(3 * PATIENCE);
        }
    });
    Hold {
        reached,
        go,
        _hook: hook,
    }
}
