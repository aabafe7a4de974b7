//! Who is making a capture's upload rendition right now. The background renderer
//! (`driver/render.rs`) and the flush's preparation both make `blobs/{id}.upload`; a claim here
//! keeps them from rendering (and writing) the same capture at once. The renderer skips a
//! capture the flush holds; the flush waits for the renderer's claim to end and then uses what
//! it recorded.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct RenderClaims {
    ids: Mutex<HashSet<String>>,
    released: Notify,
}

/// Held while a capture's rendition is made; dropping it lets the next one in.
#[derive(Debug)]
pub struct RenderClaim<'a> {
    claims: &'a RenderClaims,
    id: String,
}

impl RenderClaims {
    fn ids(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A set of ids cannot be left half-changed by a panic.
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The claim on `id`, unless someone holds it.
    pub fn try_claim(&self, id: &str) -> Option<RenderClaim<'_>> {
        self.ids().insert(id.to_string()).then(|| RenderClaim {
            claims: self,
            id: id.to_string(),
        })
    }

    /// The claim on `id`, waiting for whoever holds it.
    pub async fn claim(&self, id: &str) -> RenderClaim<'_> {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so a release between the two is not missed.
            released.as_mut().enable();
            if let Some(claim) = self.try_claim(id) {
                return claim;
            }
            released.await;
        }
    }
}

impl RenderClaims {
    /// Returns once nobody holds a claim (whatever was being rendered is recorded or cleaned).
    pub async fn idle(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.ids().is_empty() {
                return;
            }
            released.await;
        }
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
        let first = claims.try_claim("a").expect("free");
        assert!(claims.try_claim("a").is_none());
        assert!(claims.try_claim("b").is_some());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let waiter = claims.claim("a");
            tokio::pin!(waiter);
            use futures_util::FutureExt as _;
            assert!(waiter.as_mut().now_or_never().is_none());
            drop(first);
            let _second = waiter.await;
            assert!(claims.try_claim("a").is_none());
        });
    }
}
