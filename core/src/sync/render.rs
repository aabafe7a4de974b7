//! Who makes a capture's upload rendition, and whose file wins. The background renderer
//! (`driver/render.rs`) and the flush's preparation both make `blobs/{id}.upload`.
//!
//! - A claim says "rendering this one now", and who: the flush, the niced background renderer,
//!   or the flush's assistant (the same renderer at normal priority, running only while a flush
//!   does, so a day's backlog renders on two cores while it uploads). The background renderer
//!   waits for another's claim (then finds the rendition made); the flush waits for the
//!   assistant's (it is at normal priority and already under way), and for the background
//!   renderer's only a short while (`sync::outbox::NICED_RENDER_PATIENCE`): that one runs niced
//!   and a busy phone may starve it for seconds, so past that the flush renders the photo
//!   itself, and both may be rendering the same photo at once.
//! - [`RenderClaims::publish`] decides which of the two renditions becomes the file: whoever
//!   publishes first, under one lock, writes the file (temporary name, fsync, rename, directory
//!   fsync) and records it compare-and-set on `upload_file IS NULL`; the later one finds it
//!   recorded, writes nothing and uses the recorded file. So there is exactly one rendition
//!   file, and the row's sha256 is always that file's.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::domain::outbox::ItemState;
use crate::error::Result;
use crate::failpoint;
use crate::store::blobs::{BlobRef, Blobs};
use crate::store::Store;
use crate::sync::import::lock;

#[derive(Debug, Default)]
pub struct RenderClaims {
    ids: Mutex<HashMap<String, Claimant>>,
    released: Notify,
    /// Held from reading the row to recording the file: one publisher at a time, so the two
    /// makers never write the same file name at once.
    publishing: Mutex<()>,
}

/// Who holds a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimant {
    /// The flush, preparing the capture it has claimed.
    Flush,
    /// The background renderer (niced).
    Background,
    /// The flush's assistant, rendering ahead of the uploads at normal priority.
    Assist,
}

/// Who made a rendition: decides which rows may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maker {
    /// The flush, for a capture it has claimed (`sending`).
    Flush,
    /// The background renderer, for an unsent photo (possibly claimed by the flush meanwhile:
    /// then the flush uses this file if it is first).
    Background,
}

impl Maker {
    fn may_record(self, state: ItemState) -> bool {
        match self {
            Maker::Flush => state == ItemState::Sending,
            Maker::Background => matches!(
                state,
                ItemState::Waiting | ItemState::Queued | ItemState::Sending
            ),
        }
    }

    /// Where a test holds this maker between writing the file and recording it.
    fn before_record(self) -> &'static str {
        match self {
            Maker::Flush => "outbox.rendition_before_record",
            Maker::Background => "render.before_record",
        }
    }
}

/// What [`RenderClaims::publish`] did with a rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// This rendition is the file now, recorded on the row.
    Won(BlobRef),
    /// Another maker's was recorded first: that one is the file; this one was never written.
    Lost(BlobRef),
    /// The row cannot take a rendition from this maker (discarded, sent, not claimed): nothing
    /// is written.
    Refused,
}

/// Held while a capture's rendition is made; dropping it lets the next one in.
#[derive(Debug)]
pub struct RenderClaim<'a> {
    claims: &'a RenderClaims,
    id: String,
}

impl RenderClaims {
    fn ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, Claimant>> {
        // A map of ids cannot be left half-changed by a panic.
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The claim on `id` for `who`, unless someone holds it.
    pub fn try_claim(&self, id: &str, who: Claimant) -> Option<RenderClaim<'_>> {
        use std::collections::hash_map::Entry;
        match self.ids().entry(id.to_string()) {
            Entry::Occupied(_) => None,
            Entry::Vacant(slot) => {
                slot.insert(who);
                Some(RenderClaim {
                    claims: self,
                    id: id.to_string(),
                })
            }
        }
    }

    /// Who holds the claim on `id`, if anyone.
    pub fn holder(&self, id: &str) -> Option<Claimant> {
        self.ids().get(id).copied()
    }

    /// The claim on `id` for `who`, waiting for whoever holds it.
    pub async fn claim(&self, id: &str, who: Claimant) -> RenderClaim<'_> {
        self.on_release(|| self.try_claim(id, who)).await
    }

    /// Returns once `id` is not claimed by `who` (at once when it is not). A claim changing
    /// hands to someone else also ends the wait.
    pub async fn released_by(&self, id: &str, who: Claimant) {
        self.on_release(|| (self.holder(id) != Some(who)).then_some(()))
            .await
    }

    /// Returns once nobody holds a claim (whatever was being rendered is recorded or cleaned).
    pub async fn idle(&self) {
        self.on_release(|| self.ids().is_empty().then_some(()))
            .await
    }

    /// What `ready` gives, asking again after each release until it gives something.
    async fn on_release<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so a release between the two is not missed.
            released.as_mut().enable();
            if let Some(value) = ready() {
                return value;
            }
            released.await;
        }
    }
}

impl RenderClaims {
    /// Makes `bytes` the upload rendition of capture `id`, unless one is recorded already (see
    /// the module's comment). The file is durable before the row names it; a row that moves
    /// between the write and the record (a discard) takes nothing, and the file goes.
    pub fn publish(
        &self,
        store: &Mutex<Store>,
        blobs: &Blobs,
        id: &str,
        bytes: &[u8],
        maker: Maker,
    ) -> Result<Published> {
        // Only file and row work happens under it, never a render: nobody waits for long.
        let _one = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(capture) = lock(store)?.capture(id)? else {
            return Ok(Published::Refused);
        };
        if let Some(upload) = capture.upload {
            return Ok(Published::Lost(upload));
        }
        if !maker.may_record(capture.state) {
            return Ok(Published::Refused);
        }
        let blob = blobs.write(&format!("{id}.upload"), bytes)?;
        failpoint::hit(maker.before_record());
        let recorded = {
            let mut store = lock(store)?;
            match maker {
                Maker::Flush => store.set_upload_rendition(id, &blob)?,
                Maker::Background => store.set_background_rendition(id, &blob)?,
            }
        };
        if recorded {
            return Ok(Published::Won(blob));
        }
        // Every writer of `upload_file` publishes under this lock, so nobody else's file is
        // under this name: the row just moved (discarded), and the file is nobody's.
        blobs.remove(&blob.name);
        Ok(Published::Refused)
    }
}

impl Drop for RenderClaim<'_> {
    fn drop(&mut self) {
        self.claims.ids().remove(&self.id);
        self.claims.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_per_id_and_a_waiter_gets_it_on_release() {
        let claims = RenderClaims::default();
        let first = claims.try_claim("a", Claimant::Flush).expect("free");
        assert!(claims.try_claim("a", Claimant::Assist).is_none());
        assert_eq!(claims.holder("a"), Some(Claimant::Flush));
        assert!(claims.try_claim("b", Claimant::Flush).is_some());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let waiter = claims.claim("a", Claimant::Background);
            tokio::pin!(waiter);
            use futures_util::FutureExt as _;
            assert!(waiter.as_mut().now_or_never().is_none());
            drop(first);
            let _second = waiter.await;
            assert!(claims.try_claim("a", Claimant::Flush).is_none());
            assert_eq!(claims.holder("a"), Some(Claimant::Background));
        });
    }
}
