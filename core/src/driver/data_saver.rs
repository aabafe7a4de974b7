//! The data saver as the app drives it: the network it reports (`set_network`, metered or
//! not) and the driver's policy (`set_data_saver`, persisted in `sync_state`). The decision
//! itself is `domain::data_saver`; the flush leaves held photos out of its due list, and every
//! outbox item the app reads carries a held photo's reason (`held_until_unmetered`,
//! `held_by_budget`): not an error, it is still queued.

use super::{Driver, Shared};
use crate::domain::data_saver::{DataSaver, MeteredUsage, NetworkStatus};
use crate::domain::outbox::{ItemState, OutboxItem};
use crate::error::Result;
use crate::store::captures::Capture;
use crate::store::Store;

/// The data saver as the app shows it in settings and on the sync screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DataSaverStatus {
    #[serde(flatten)]
    pub policy: DataSaver,
    /// What the app last reported.
    #[serde(flatten)]
    pub network: NetworkStatus,
    /// Photo bytes UPN acknowledged over metered networks today (UTC, the core's clock).
    pub metered_photo_bytes_today: u64,
    /// Queued photos the data saver holds now.
    pub held: u32,
}

impl Shared {
    pub fn is_metered(&self) -> bool {
        self.saver.metered()
    }

    /// `captures` as the app sees them: a queued photo the data saver holds now carries the
    /// hold as its reason (its row is untouched: still queued, no attempt counted).
    pub(crate) fn outbox_items(
        &self,
        store: &Store,
        captures: &[Capture],
    ) -> Result<Vec<OutboxItem>> {
        let queued_photo = |c: &Capture| c.kind.is_photo() && c.state == ItemState::Queued;
        let holds = if captures.iter().any(queued_photo) {
            store.data_saver_holds(self.clock.now(), self.is_metered())?
        } else {
            Default::default()
        };
        Ok(captures
            .iter()
            .map(|c| {
                let mut item = OutboxItem::from(c);
                if let Some(hold) = holds.get(&c.id) {
                    item.reason = Some(hold.reason());
                }
                item
            })
            .collect())
    }

    /// One capture as the app sees it (see [`Shared::outbox_items`]).
    pub(crate) fn outbox_item(&self, store: &Store, capture: &Capture) -> Result<OutboxItem> {
        let mut items = self.outbox_items(store, std::slice::from_ref(capture))?;
        Ok(items.pop().unwrap_or_else(|| OutboxItem::from(capture)))
    }

    /// The network or the policy changed: queued photos may be held or let go now. Listeners
    /// hear each queued photo as it now stands, and the outbox wakes at once (a photo let go
    /// is sent without a further call).
    fn data_saver_changed(&self) {
        self.saver.changed();
        if !self.listeners.is_empty() {
            if let Ok(store) = self.store() {
                let items = store
                    .pending_captures()
                    .and_then(|all| self.outbox_items(&store, &all));
                for item in items.into_iter().flatten() {
                    if item.kind.is_photo() && item.state == ItemState::Queued {
                        self.listeners.item_changed(item);
                    }
                }
            }
        }
        self.outbox_wake.notify_one();
    }
}

impl Driver {
    /// The app reports the network: online (validated, not blocked) and metered. Photos obey
    /// the data saver on a metered network; PODs go on any. Going unmetered sends what the data
    /// saver held at once.
    pub fn set_network(&self, status: NetworkStatus) {
        self.set_metered(status.metered);
        self.set_online(status.online);
    }

    /// The network's metered flag alone (`set_online` keeps it): a change wakes the outbox.
    pub fn set_metered(&self, metered: bool) {
        if self.shared.saver.set_metered(metered) {
            self.shared.data_saver_changed();
        }
    }

    /// What the app last reported (`set_online` keeps the last `metered`; unmetered at open).
    pub fn network(&self) -> NetworkStatus {
        NetworkStatus {
            online: self.shared.is_online(),
            metered: self.shared.is_metered(),
        }
    }

    /// Sets the driver's data-saver policy (kept across restarts). A budget outside 1 MB..=10 GB
    /// is `Error::InvalidInput` naming `data_saver.bytes_per_day`, and nothing changes.
    pub fn set_data_saver(&self, policy: DataSaver) -> Result<()> {
        let policy = policy.validate()?;
        self.shared.store()?.set_data_saver(policy)?;
        self.shared.data_saver_changed();
        Ok(())
    }

    pub fn data_saver(&self) -> Result<DataSaver> {
        self.shared.store()?.data_saver()
    }

    /// The policy, the network, today's metered photo bytes and how many photos are held.
    pub fn data_saver_status(&self) -> Result<DataSaverStatus> {
        let s = &self.shared;
        let store = s.store()?;
        let now = s.clock.now();
        let held = store.data_saver_holds(now, s.is_metered())?.len();
        Ok(DataSaverStatus {
            policy: store.data_saver()?,
            network: self.network(),
            metered_photo_bytes_today: MeteredUsage::today(store.metered_usage()?, now),
            held: u32::try_from(held).unwrap_or(u32::MAX),
        })
    }
}
