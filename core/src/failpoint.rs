//! Named points where tests stop the process, or run code of their own, to prove that a crash
//! or a race at exactly that point loses and duplicates nothing.
//!
//! Compiled in only with the `failpoints` feature (tests); otherwise [`hit`] is an empty inline
//! function. With the feature on, `hit(name)`:
//! - runs every in-process hook registered for `name` with [`on`] (a test opens a race window
//!   deterministically: the hook does the competing call, or waits on a channel, while the core
//!   is stopped between two of its steps);
//! - then, when the environment variable `UPN_FAILPOINT` equals `name`, prints
//!   `FAILPOINT {name}` on stderr and blocks forever, so the parent test process can SIGKILL it
//!   at exactly that point.
//!
//! Hooks are process-wide. A test that registers one must be the only test in its binary that
//! passes through that point while the hook is registered: give each race window its own name,
//! and keep hook tests in their own test files.

/// Environment variable naming the failpoint to stop at.
pub const ENV: &str = "UPN_FAILPOINT";

#[cfg(feature = "failpoints")]
mod hooks {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    pub(super) type Hook = Arc<dyn Fn() + Send + Sync>;

    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    /// Hooks by failpoint name, each with the id its guard removes it by.
    pub(super) type Registry = Mutex<HashMap<String, Vec<(u64, Hook)>>>;

    pub(super) fn registry() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(Default::default)
    }

    pub(super) fn next_id() -> u64 {
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    }

    /// The hooks for `name`, cloned so none runs while the registry is locked.
    pub(super) fn for_name(name: &str) -> Vec<Hook> {
        let registry = registry().lock().unwrap_or_else(|p| p.into_inner());
        registry
            .get(name)
            .map(|hooks| hooks.iter().map(|(_, h)| h.clone()).collect())
            .unwrap_or_default()
    }
}

/// Unregisters its hook when dropped.
#[cfg(feature = "failpoints")]
#[must_use = "the hook is removed when the guard is dropped"]
pub struct HookGuard {
    name: String,
    id: u64,
}

#[cfg(feature = "failpoints")]
impl Drop for HookGuard {
    fn drop(&mut self) {
        let mut registry = hooks::registry().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = registry.get_mut(&self.name) {
            list.retain(|(id, _)| *id != self.id);
        }
    }
}

/// Runs `hook` every time the core passes the failpoint `name`, until the guard is dropped.
#[cfg(feature = "failpoints")]
pub fn on(name: &str, hook: impl Fn() + Send + Sync + 'static) -> HookGuard {
    let id = hooks::next_id();
    let hook: hooks::Hook = std::sync::Arc::new(hook);
    let mut registry = hooks::registry().lock().unwrap_or_else(|p| p.into_inner());
    registry
        .entry(name.to_string())
        .or_default()
        .push((id, hook));
    HookGuard {
        name: name.to_string(),
        id,
    }
}

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::io::Write;
    for hook in hooks::for_name(name) {
        hook();
    }
    if std::env::var(ENV).is_ok_and(|wanted| wanted == name) {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "FAILPOINT {name}");
        let _ = err.flush();
        loop {
            std::thread::park();
        }
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Environment variable naming an I/O fault to inject (see [`io_fault`]).
pub const FAULT_ENV: &str = "UPN_FAULT";

/// With the `failpoints` feature and `UPN_FAULT=name`, the named I/O step fails as if the device
/// were out of space (ENOSPC). Lets a test prove a full disk loses and half-writes nothing.
/// Also, while the guard of [`inject_io_fault`] for `name` lives, the step fails that way (an
/// in-process test, or the simulation harness, choosing the exact call that hits a full disk).
#[cfg(feature = "failpoints")]
pub fn io_fault(name: &str) -> Option<std::io::Error> {
    let armed = !hooks::for_name(&io_fault_key(name)).is_empty();
    (armed || std::env::var(FAULT_ENV).is_ok_and(|wanted| wanted == name))
        .then(|| std::io::Error::from_raw_os_error(28))
}

/// Makes [`io_fault`]`(name)` fail (ENOSPC) until the guard is dropped. Process-wide, like [`on`].
#[cfg(feature = "failpoints")]
pub fn inject_io_fault(name: &str) -> HookGuard {
    on(&io_fault_key(name), || {})
}

#[cfg(feature = "failpoints")]
fn io_fault_key(name: &str) -> String {
    format!("io-fault/{name}")
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn io_fault(_name: &str) -> Option<std::io::Error> {
    None
}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_hook_runs_at_its_point_until_its_guard_drops() {
        let count = Arc::new(AtomicU32::new(0));
        let seen = count.clone();
        let guard = super::on("failpoint.self_test", move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        super::hit("failpoint.self_test");
        super::hit("failpoint.other");
        super::hit("failpoint.self_test");
        assert_eq!(count.load(Ordering::SeqCst), 2);
        drop(guard);
        super::hit("failpoint.self_test");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
