//! How the app hears about changes: a listener registry. A subscription ends when its handle is
//! dropped. Listener calls happen on the core's threads and must return quickly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::domain::outbox::OutboxItem;
use crate::domain::Stop;

/// Bytes of one upload on their way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    pub capture_id: String,
    pub barcode: String,
    pub sent: u64,
    pub total: u64,
}

/// Implemented by the app (through the FFI) or the CLI. Every method has a no-op default.
pub trait DriverListener: Send + Sync + 'static {
    /// A stop's status or sync badge changed.
    fn stop_changed(&self, _stop: &Stop) {}
    /// An outbox item changed state (queued, sending, sent, needs attention, ...).
    fn outbox_item_changed(&self, _item: &OutboxItem) {}
    /// Upload progress of a photo or signature.
    fn upload_progress(&self, _progress: &UploadProgress) {}
}

#[derive(Default)]
pub struct Listeners {
    next_id: AtomicU64,
    registered: Mutex<BTreeMap<u64, Arc<dyn DriverListener>>>,
}

/// Keeps a listener registered; dropping it unregisters the listener.
pub struct Subscription {
    id: u64,
    listeners: Weak<Listeners>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(listeners) = self.listeners.upgrade() {
            listeners
                .registered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.id);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subscription({})", self.id)
    }
}

impl Listeners {
    pub fn subscribe(self: &Arc<Self>, listener: Arc<dyn DriverListener>) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, listener);
        Subscription {
            id,
            listeners: Arc::downgrade(self),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Calls `f` on each listener, outside the registry lock (a listener may unsubscribe).
    pub fn each(&self, f: impl Fn(&dyn DriverListener)) {
        let listeners: Vec<_> = self
            .registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for listener in listeners {
            f(listener.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[derive(Default)]
    struct Counter(AtomicU32);
    impl DriverListener for Counter {
        fn upload_progress(&self, _: &UploadProgress) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn dropping_the_subscription_unsubscribes() {
        let listeners = Arc::new(Listeners::default());
        let counter = Arc::new(Counter::default());
        let progress = UploadProgress {
            capture_id: "c".into(),
            barcode: "b".into(),
            sent: 1,
            total: 2,
        };
        let sub = listeners.subscribe(counter.clone());
        listeners.each(|l| l.upload_progress(&progress));
        drop(sub);
        listeners.each(|l| l.upload_progress(&progress));
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        assert!(listeners.is_empty());
    }
}
