//! How the app hears about changes: a listener registry and its dispatcher.
//!
//! Nothing that changes state ever calls a listener. Producers (a capture, the flush, an import,
//! a tracking pull) only post to a small mailbox and return; one dispatcher thread per core
//! calls the listeners. So a slow listener (a Kotlin callback hopping threads, a debugger) never
//! delays an upload, and a listener may call back into the core.
//!
//! The mailbox is bounded and coalesces while a listener is slow: the stop list is one "dirty"
//! flag (the dispatcher reads and publishes the whole list once per round), progress keeps the
//! latest value per capture, and outbox item changes beyond [`MAX_QUEUED_ITEMS`] keep only the
//! latest state per capture (then the oldest are dropped and counted).
//!
//! The stop list is published as numbered versions (`seq`). `subscribe` reads the list, numbers
//! it and registers the listener under one lock, so the snapshot it returns and the updates the
//! listener hears form one gap-free sequence: every update has `seq` > the snapshot's, none is
//! repeated. Each listener's per-stop changes are computed against the last list *it* was
//! given, so coalescing never hides a change.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use crate::domain::outbox::OutboxItem;
use crate::domain::stop_list::{diff, StopChange, StopChangeKind};
use crate::domain::Stop;
use crate::error::Result;

/// Outbox item changes kept for delivery before the mailbox coalesces them.
pub const MAX_QUEUED_ITEMS: usize = 1000;

/// Bytes of one upload on their way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    pub capture_id: String,
    pub barcode: String,
    pub sent: u64,
    pub total: u64,
}

/// A new version of the stop list: the whole ordered list (positions included) after which the
/// UI is consistent, and what changed per stop since the list this listener was last given.
#[derive(Debug, Clone, PartialEq)]
pub struct StopListUpdate {
    /// Increases by one per published version; later versions may be skipped (coalesced).
    pub seq: u64,
    pub stops: Vec<Stop>,
    pub changes: Vec<StopChange>,
}

/// What `subscribe` returns beside the subscription: the state the listener's updates start
/// from. Updates the listener hears have `seq` greater than this `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStops {
    pub seq: u64,
    pub stops: Vec<Stop>,
    /// Everything not yet acknowledged by UPN, oldest first.
    pub outbox: Vec<OutboxItem>,
}

/// Implemented by the app (through the FFI) or the CLI. Every method has a no-op default.
/// Called on the core's dispatcher thread, one call at a time, never inside the core's work.
pub trait DriverListener: Send + Sync + 'static {
    /// A stop was added, changed (status, badge, phase or position) or cancelled. Called for
    /// each such stop just before the [`DriverListener::stop_list_changed`] it belongs to.
    fn stop_changed(&self, _stop: &Stop) {}
    /// A new version of the whole stop list (removed stops are only in `changes`).
    fn stop_list_changed(&self, _update: &StopListUpdate) {}
    /// An outbox item changed state (queued, sending, sent, needs attention, ...).
    fn outbox_item_changed(&self, _item: &OutboxItem) {}
    /// Upload progress of a photo or signature.
    fn upload_progress(&self, _progress: &UploadProgress) {}
}

/// The last stop list published, numbered.
#[derive(Default)]
struct Published {
    seq: u64,
    stops: Arc<Vec<Stop>>,
}

struct Entry {
    id: u64,
    listener: Arc<dyn DriverListener>,
    /// Set when its subscription is dropped; the dispatcher checks it before every call, under
    /// `seen`, so no call starts after the drop.
    cancelled: AtomicBool,
    /// The stop list this listener was last given (its snapshot, then each update).
    seen: Mutex<(u64, Arc<Vec<Stop>>)>,
    /// Outbox item changes numbered below this were in its snapshot.
    items_from: u64,
}

#[derive(Default)]
struct Mailbox {
    items: VecDeque<(u64, OutboxItem)>,
    next_item: u64,
    progress: Vec<UploadProgress>,
    stops_dirty: bool,
    closed: bool,
}

impl Mailbox {
    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.progress.is_empty() && !self.stops_dirty
    }
}

#[derive(Default)]
pub struct Listeners {
    next_id: AtomicU64,
    registered: Mutex<BTreeMap<u64, Arc<Entry>>>,
    published: Mutex<Published>,
    mailbox: Mutex<Mailbox>,
    posted: Condvar,
    dropped: AtomicU64,
}

/// The core's own handle on its listeners: dropping it (the core closing) ends the dispatcher,
/// which holds the listeners too and so would otherwise outlive the core.
#[derive(Default)]
pub struct OwnedListeners(Arc<Listeners>);

impl std::ops::Deref for OwnedListeners {
    type Target = Arc<Listeners>;

    fn deref(&self) -> &Arc<Listeners> {
        &self.0
    }
}

impl Drop for OwnedListeners {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A listener panicking elsewhere must not stop delivery: the data stays consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps a listener registered; dropping it unregisters the listener. Once the drop returns, no
/// call reaches the listener: a call under way on the dispatcher finishes first (the drop waits
/// for it), except when the listener drops its own subscription from inside one of its calls
/// (then that call is the last one).
pub struct Subscription {
    id: u64,
    listeners: Weak<Listeners>,
}

thread_local! {
    /// The entry whose calls this thread is making (the dispatcher, inside `deliver`).
    static DELIVERING: Cell<Option<u64>> = const { Cell::new(None) };
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(listeners) = self.listeners.upgrade() else {
            return; // the dispatcher has ended, and with it every call
        };
        let Some(entry) = relock(&listeners.registered).remove(&self.id) else {
            return;
        };
        entry.cancelled.store(true, Ordering::SeqCst);
        // The dispatcher holds `seen` for the whole of its calls to this listener, so taking it
        // waits for a call under way. From inside that very call it would wait on itself.
        if DELIVERING.with(Cell::get) != Some(self.id) {
            drop(relock(&entry.seen));
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subscription({})", self.id)
    }
}

impl Listeners {
    /// Registers `listener` and returns the state its updates start from. `read_stops` and
    /// `read_outbox` read the store; they run under the publishing lock so no version is
    /// published between the snapshot and the registration. Before this returns, the listener
    /// hears that state on the calling thread (each stop, each outbox item, then the list as a
    /// [`StopListUpdate`] numbered `seq`: the end of the replay), and the dispatcher's calls
    /// to it wait until the replay is over, so they never overtake it.
    pub fn subscribe(
        self: &Arc<Self>,
        listener: Arc<dyn DriverListener>,
        read_stops: impl FnOnce() -> Result<Vec<Stop>>,
        read_outbox: impl FnOnce() -> Result<Vec<OutboxItem>>,
    ) -> Result<(LiveStops, Subscription)> {
        let mut published = relock(&self.published);
        publish(&mut published, read_stops()?);
        // A change landing here is published after this listener is registered (it waits
        // for the lock held here), so the listener hears it; the race tests open this window.
        crate::failpoint::hit("listeners.subscribe.after_snapshot");
        // Item changes posted before this point are in the outbox read below.
        let items_from = relock(&self.mailbox).next_item;
        let outbox = read_outbox()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry {
            id,
            listener,
            cancelled: AtomicBool::new(false),
            seen: Mutex::new((published.seq, published.stops.clone())),
            items_from,
        });
        let replaying = relock(&entry.seen);
        relock(&self.registered).insert(id, entry.clone());
        let live = LiveStops {
            seq: published.seq,
            stops: published.stops.as_ref().clone(),
            outbox,
        };
        drop(published);
        // Always re-read once: earlier listeners may not have seen this version yet, and a
        // change that landed in the window above was posted while nobody was registered (the
        // producers skip their work then), so only a fresh read publishes it. An unchanged
        // list publishes nothing.
        self.stops_dirty();
        replay(entry.listener.as_ref(), &live);
        drop(replaying);
        Ok((
            live,
            Subscription {
                id,
                listeners: Arc::downgrade(self),
            },
        ))
    }

    pub fn is_empty(&self) -> bool {
        relock(&self.registered).is_empty()
    }

    /// Changes dropped because the mailbox was full (a listener far too slow).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The stop list may have changed: the dispatcher re-reads it. With nobody listening there
    /// is nobody to tell, and reading the whole list would only contend for the store: a
    /// `subscribe` reads it afresh anyway.
    pub fn stops_dirty(&self) {
        if self.is_empty() {
            return;
        }
        self.post(|m| m.stops_dirty = true);
    }

    /// An outbox item changed (its stop's badge and phase may have too).
    pub fn item_changed(&self, item: OutboxItem) {
        let mut dropped = 0;
        self.post(|m| {
            let seq = m.next_item;
            m.next_item += 1;
            if m.items.len() >= MAX_QUEUED_ITEMS {
                dropped = coalesce(&mut m.items);
            }
            m.items.push_back((seq, item));
            m.stops_dirty = true;
        });
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// The latest progress of an upload replaces any not yet delivered.
    pub fn progress(&self, progress: UploadProgress) {
        self.post(|m| {
            match m
                .progress
                .iter_mut()
                .find(|p| p.capture_id == progress.capture_id)
            {
                Some(slot) => *slot = progress,
                None => m.progress.push(progress),
            }
        });
    }

    /// Ends the dispatcher (the core is closing); later posts are ignored.
    pub fn close(&self) {
        self.post(|m| m.closed = true);
    }

    fn post(&self, f: impl FnOnce(&mut Mailbox)) {
        let mut mailbox = relock(&self.mailbox);
        if mailbox.closed {
            return;
        }
        f(&mut mailbox);
        drop(mailbox);
        self.posted.notify_one();
    }

    /// Starts the dispatcher thread. `read_stops` reads the current stop list (`None`: the
    /// core is gone or the store failed; the list is read again at the next change).
    pub fn spawn_dispatcher(
        self: &Arc<Self>,
        read_stops: impl Fn() -> Option<Vec<Stop>> + Send + 'static,
    ) -> std::io::Result<()> {
        let listeners = self.clone();
        std::thread::Builder::new()
            .name("upn-listeners".into())
            .spawn(move || listeners.dispatch(read_stops))
            .map(|_| ())
    }

    fn dispatch(&self, read_stops: impl Fn() -> Option<Vec<Stop>>) {
        loop {
            let round = {
                let mut mailbox = relock(&self.mailbox);
                while mailbox.is_empty() && !mailbox.closed {
                    mailbox = self.posted.wait(mailbox).unwrap_or_else(|p| p.into_inner());
                }
                if mailbox.closed {
                    return;
                }
                Mailbox {
                    items: std::mem::take(&mut mailbox.items),
                    progress: std::mem::take(&mut mailbox.progress),
                    stops_dirty: std::mem::take(&mut mailbox.stops_dirty),
                    ..Mailbox::default()
                }
            };
            if round.stops_dirty {
                let mut published = relock(&self.published);
                if let Some(stops) = read_stops() {
                    publish(&mut published, stops);
                }
            }
            self.deliver(&round);
        }
    }

    /// Calls each listener with this round's changes and, if it has not had it yet, the
    /// published stop list (a listener registered meanwhile already has it: its `seen` is as
    /// new). Holding the listener's `seen` lock keeps its calls in order with its replay.
    fn deliver(&self, round: &Mailbox) {
        let (seq, stops) = {
            let published = relock(&self.published);
            (published.seq, published.stops.clone())
        };
        let entries: Vec<Arc<Entry>> = relock(&self.registered).values().cloned().collect();
        for entry in &entries {
            let mut seen = relock(&entry.seen);
            DELIVERING.with(|d| d.set(Some(entry.id)));
            deliver_to(entry, &mut seen, round, seq, &stops);
            DELIVERING.with(|d| d.set(None));
        }
    }
}

/// One listener's share of a round. Every call first checks that its subscription is still
/// live: one dropped meanwhile (even while an earlier call of this round ran) hears nothing
/// more.
fn deliver_to(
    entry: &Entry,
    seen: &mut (u64, Arc<Vec<Stop>>),
    round: &Mailbox,
    seq: u64,
    stops: &Arc<Vec<Stop>>,
) {
    let live = || !entry.cancelled.load(Ordering::SeqCst);
    let listener = entry.listener.as_ref();
    for (_, item) in round.items.iter().filter(|(n, _)| *n >= entry.items_from) {
        if !live() {
            return;
        }
        listener.outbox_item_changed(item);
    }
    for progress in &round.progress {
        if !live() {
            return;
        }
        listener.upload_progress(progress);
    }
    if seen.0 >= seq {
        return;
    }
    let changes = diff(&seen.1, stops);
    for change in changes.iter().filter(|c| c.kind != StopChangeKind::Removed) {
        if let Some(stop) = stops
            .iter()
            .find(|s| s.consignment.barcode == change.barcode)
        {
            if !live() {
                return;
            }
            listener.stop_changed(stop);
        }
    }
    if !live() {
        return;
    }
    listener.stop_list_changed(&StopListUpdate {
        seq,
        stops: stops.as_ref().clone(),
        changes,
    });
    *seen = (seq, stops.clone());
}

/// What a new listener hears first: the state `subscribe` returns, ending with the whole list.
fn replay(listener: &dyn DriverListener, live: &LiveStops) {
    for stop in &live.stops {
        listener.stop_changed(stop);
    }
    for item in &live.outbox {
        listener.outbox_item_changed(item);
    }
    listener.stop_list_changed(&StopListUpdate {
        seq: live.seq,
        stops: live.stops.clone(),
        changes: live
            .stops
            .iter()
            .map(|s| StopChange {
                barcode: s.consignment.barcode.clone(),
                kind: StopChangeKind::Added,
            })
            .collect(),
    });
}

/// Numbers `stops` as a new version if it differs from the last one. Returns whether it did.
fn publish(published: &mut Published, stops: Vec<Stop>) -> bool {
    if *published.stops == stops {
        return false;
    }
    published.seq += 1;
    published.stops = Arc::new(stops);
    true
}

/// Makes room in a full item queue: keeps only the latest change per capture, then drops the
/// oldest if it is still full. Returns how many changes were dropped.
fn coalesce(items: &mut VecDeque<(u64, OutboxItem)>) -> u64 {
    let before = items.len();
    let mut latest: std::collections::HashMap<String, u64> = Default::default();
    for (seq, item) in items.iter() {
        latest.insert(item.id.clone(), *seq);
    }
    items.retain(|(seq, item)| latest.get(&item.id) == Some(seq));
    if items.len() >= MAX_QUEUED_ITEMS {
        items.pop_front();
    }
    (before - items.len()) as u64
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

    fn progress(sent: u64) -> UploadProgress {
        UploadProgress {
            capture_id: "c".into(),
            barcode: "b".into(),
            sent,
            total: 2,
        }
    }

    #[test]
    fn dropping_the_subscription_unsubscribes() {
        let listeners = Arc::new(Listeners::default());
        let counter = Arc::new(Counter::default());
        let (live, sub) = listeners
            .subscribe(counter.clone(), || Ok(vec![]), || Ok(vec![]))
            .expect("subscribe");
        assert_eq!(live.seq, 0);
        assert!(!listeners.is_empty());
        drop(sub);
        assert!(listeners.is_empty());
    }

    #[test]
    fn with_nobody_listening_a_stop_list_change_reads_nothing() {
        let listeners = Arc::new(Listeners::default());
        listeners.stops_dirty();
        assert!(relock(&listeners.mailbox).is_empty());
        let (_, sub) = listeners
            .subscribe(Arc::new(Counter::default()), || Ok(vec![]), || Ok(vec![]))
            .expect("subscribe");
        listeners.stops_dirty();
        assert!(relock(&listeners.mailbox).stops_dirty);
        drop(sub);
    }

    #[test]
    fn progress_is_coalesced_per_capture_and_a_closed_mailbox_ignores_posts() {
        let listeners = Listeners::default();
        listeners.progress(progress(1));
        listeners.progress(progress(2));
        assert_eq!(relock(&listeners.mailbox).progress, vec![progress(2)]);
        listeners.close();
        listeners.progress(progress(3));
        assert_eq!(relock(&listeners.mailbox).progress, vec![progress(2)]);
    }

    /// Counts its progress calls; the first one blocks until the test releases it.
    struct Blocking {
        calls: AtomicU32,
        entered: std::sync::mpsc::SyncSender<()>,
        release: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl Blocking {
        fn new() -> (
            Arc<Self>,
            std::sync::mpsc::Receiver<()>,
            std::sync::mpsc::SyncSender<()>,
        ) {
            let (entered, entered_rx) = std::sync::mpsc::sync_channel(8);
            let (release_tx, release) = std::sync::mpsc::sync_channel(8);
            let listener = Arc::new(Self {
                calls: AtomicU32::new(0),
                entered,
                release: Mutex::new(release),
            });
            (listener, entered_rx, release_tx)
        }
    }

    impl DriverListener for Blocking {
        fn upload_progress(&self, _: &UploadProgress) {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = self.entered.send(());
                let _ = relock(&self.release).recv();
            }
        }
    }

    /// Counts its calls and reports each one.
    struct Witness(std::sync::mpsc::SyncSender<()>, AtomicU32);

    impl DriverListener for Witness {
        fn upload_progress(&self, _: &UploadProgress) {
            self.1.fetch_add(1, Ordering::SeqCst);
            let _ = self.0.try_send(());
        }
    }

    fn dispatching() -> Arc<Listeners> {
        let listeners = Arc::new(Listeners::default());
        listeners.spawn_dispatcher(|| None).expect("dispatcher");
        listeners
    }

    fn subscribe(listeners: &Arc<Listeners>, l: Arc<dyn DriverListener>) -> Subscription {
        listeners
            .subscribe(l, || Ok(vec![]), || Ok(vec![]))
            .expect("subscribe")
            .1
    }

    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

    #[test]
    fn dropping_a_subscription_waits_for_its_call_under_way_and_no_call_follows() {
        let listeners = dispatching();
        let (blocking, entered, release) = Blocking::new();
        let sub = subscribe(&listeners, blocking.clone());
        listeners.progress(progress(1));
        entered.recv_timeout(PATIENCE).expect("the call under way");
        let (dropped_tx, dropped) = std::sync::mpsc::channel();
        let dropper = std::thread::spawn(move || {
            drop(sub);
            let _ = dropped_tx.send(());
        });
        // The drop cannot return while the listener is still inside its call.
        assert!(dropped
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        release.send(()).expect("release");
        dropped.recv_timeout(PATIENCE).expect("the drop returns");
        dropper.join().expect("dropper");
        // A later change reaches a witness, and not the dropped listener.
        let (seen_tx, seen) = std::sync::mpsc::sync_channel(8);
        let witness = Arc::new(Witness(seen_tx, AtomicU32::new(0)));
        let _witness = subscribe(&listeners, witness);
        listeners.progress(progress(2));
        seen.recv_timeout(PATIENCE).expect("the witness hears it");
        assert_eq!(blocking.calls.load(Ordering::SeqCst), 1);
        listeners.close();
    }

    #[test]
    fn a_listener_dropped_while_the_round_serves_another_hears_nothing_of_that_round() {
        let listeners = dispatching();
        // Registered first, so the dispatcher serves it first in each round.
        let (blocking, entered, release) = Blocking::new();
        let _first = subscribe(&listeners, blocking);
        let (seen_tx, seen) = std::sync::mpsc::sync_channel(8);
        let second = Arc::new(Witness(seen_tx, AtomicU32::new(0)));
        let second_sub = subscribe(&listeners, second.clone());
        listeners.progress(progress(1));
        // The round has taken its list of listeners, both included, and is inside the first.
        entered.recv_timeout(PATIENCE).expect("the round under way");
        drop(second_sub); // returns at once: no call to it is under way
        release.send(()).expect("release");
        // The next round's witness proves the first round is over.
        let (next_tx, next) = std::sync::mpsc::sync_channel(8);
        let _next = subscribe(&listeners, Arc::new(Witness(next_tx, AtomicU32::new(0))));
        listeners.progress(progress(2));
        next.recv_timeout(PATIENCE).expect("the next round");
        assert!(seen.try_recv().is_err());
        assert_eq!(second.1.load(Ordering::SeqCst), 0);
        listeners.close();
    }

    /// Drops its own subscription from inside its first call.
    struct SelfCancelling {
        sub: Mutex<Option<Subscription>>,
        calls: AtomicU32,
        done: std::sync::mpsc::SyncSender<()>,
    }

    impl DriverListener for SelfCancelling {
        fn upload_progress(&self, _: &UploadProgress) {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let taken = relock(&self.sub).take();
            drop(taken); // must not wait on the very call it is made from
            let _ = self.done.try_send(());
        }
    }

    #[test]
    fn a_listener_may_drop_its_own_subscription_from_inside_a_call() {
        let listeners = dispatching();
        let (done, done_rx) = std::sync::mpsc::sync_channel(8);
        let listener = Arc::new(SelfCancelling {
            sub: Mutex::new(None),
            calls: AtomicU32::new(0),
            done,
        });
        let sub = subscribe(&listeners, listener.clone());
        *relock(&listener.sub) = Some(sub);
        // Two captures' progress in one round: the second call never comes.
        listeners.post(|m| {
            m.progress.push(progress(1));
            m.progress.push(UploadProgress {
                capture_id: "d".into(),
                ..progress(1)
            });
        });
        done_rx.recv_timeout(PATIENCE).expect("the call returns");
        assert!(listeners.is_empty());
        let (next_tx, next) = std::sync::mpsc::sync_channel(8);
        let _next = subscribe(&listeners, Arc::new(Witness(next_tx, AtomicU32::new(0))));
        listeners.progress(progress(2));
        next.recv_timeout(PATIENCE).expect("the next round");
        assert_eq!(listener.calls.load(Ordering::SeqCst), 1);
        listeners.close();
    }
}
