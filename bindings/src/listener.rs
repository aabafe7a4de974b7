//! Listeners implemented by the app (Kotlin/Swift) and the handle that keeps one registered.
//!
//! The core calls listeners on its own threads, so implementations must return quickly and hop
//! to the UI thread themselves (the Android and iOS facades do). A listener that throws (or
//! panics) loses that one update and stays registered; it never disturbs the core's work.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use upn_core::domain::outbox::OutboxItem;
use upn_core::domain::Stop;
use upn_core::listener::{StopListUpdate, Subscription, UploadProgress};

use crate::live::StopListUpdateRecord;
use crate::records::{OutboxItemRecord, StopRecord, UploadProgressRecord};

/// Implemented by the app to hear about changes. On `subscribe`, before it returns and on the
/// calling thread, the listener first hears the current state: every stop, every outbox item,
/// then `on_stop_list_changed` with the whole list (the end of the replay, numbered `seq`).
/// Then each change as it happens, from the core's dispatcher thread (never from inside an
/// upload: a slow listener delays nothing but its own updates, which are coalesced).
#[uniffi::export(with_foreign)]
pub trait DriverListener: Send + Sync {
    /// A stop was added, or its status, sync badge, phase or position changed, or it was
    /// cancelled. Comes just before the `on_stop_list_changed` it belongs to.
    fn on_stop_changed(&self, stop: StopRecord);
    /// A new version of the whole ordered stop list, with what changed per stop (removed stops
    /// appear only here). Replace the UI's list with `update.stops`.
    fn on_stop_list_changed(&self, update: StopListUpdateRecord);
    /// An outbox item changed state (queued, sending, sent, needs attention, ...).
    fn on_outbox_item_changed(&self, item: OutboxItemRecord);
    /// Bytes of a signature or photo upload on their way.
    fn on_upload_progress(&self, progress: UploadProgressRecord);
}

/// Adapts the app's listener to the core's: converts, and contains a throwing listener.
pub(crate) struct Bridge(pub(crate) Arc<dyn DriverListener>);

impl Bridge {
    fn call(&self, f: impl FnOnce(&dyn DriverListener)) {
        // A foreign exception in a callback surfaces in Rust as a panic; it must not unwind into
        // the core's flush or its runtime threads.
        let _ = catch_unwind(AssertUnwindSafe(|| f(self.0.as_ref())));
    }
}

impl upn_core::listener::DriverListener for Bridge {
    fn stop_changed(&self, stop: &Stop) {
        self.call(|l| l.on_stop_changed(stop.into()));
    }

    fn stop_list_changed(&self, update: &StopListUpdate) {
        self.call(|l| l.on_stop_list_changed(update.into()));
    }

    fn outbox_item_changed(&self, item: &OutboxItem) {
        self.call(|l| l.on_outbox_item_changed(item.into()));
    }

    fn upload_progress(&self, progress: &UploadProgress) {
        self.call(|l| l.on_upload_progress(progress.into()));
    }
}

/// Keeps a listener registered. `cancel()` (or dropping the handle: Kotlin `close()`, Swift
/// releasing it) unregisters the listener; no call reaches it after `cancel()` returns. A call
/// under way on the core's thread when `cancel()` is made finishes first: `cancel()` waits for
/// it (so never cancel from a thread that listener's call itself waits on). A listener may
/// cancel its own handle from inside one of its calls; that call is then its last.
#[derive(uniffi::Object)]
pub struct ListenerHandle {
    subscription: Mutex<Option<Subscription>>,
}

impl ListenerHandle {
    pub(crate) fn new(subscription: Subscription) -> Self {
        Self {
            subscription: Mutex::new(Some(subscription)),
        }
    }
}

#[uniffi::export]
impl ListenerHandle {
    /// Unregisters the listener. Idempotent.
    pub fn cancel(&self) {
        let taken = self
            .subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(taken);
    }

    /// False once cancelled.
    pub fn is_active(&self) -> bool {
        self.subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

impl std::fmt::Debug for ListenerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ListenerHandle(active: {})", self.is_active())
    }
}
