//! The background renderer: after a photo's capture has returned (and at open, for any left
//! from before a crash), its upload rendition (`blobs/{id}.upload`) is made, one photo at a
//! time, on a thread of its own at low priority, so it is ready before the network is and the
//! flush only reads it. The flush never waits for this thread: when it needs a photo this thread
//! is still on, it renders the photo itself at normal priority, and the first rendition
//! published is the file (`sync/render.rs`). The full decode runs here: a photo that cannot be rendered becomes
//! `needs_attention` at once with the reason (compare-and-set: one `sending` or discarded
//! meanwhile is left alone), and listeners hear of it while the driver is still at the door.
//! Anything else (an unreadable original, a full disk) is left to the flush, which decides as
//! it always has.

use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;

use super::Shared;
use crate::domain::outbox::{Event, ItemState};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::media::{self, MediaError, MediaLimits, Rendition};
use crate::store::captures::{Capture, Outcome};
use crate::sync::outbox::{local_failure, rendition_error};
use crate::sync::render::{Maker, Published};

struct Job {
    original: Vec<u8>,
    limits: MediaLimits,
    reply: oneshot::Sender<std::result::Result<Rendition, MediaError>>,
}

/// The renderer's thread, fed one photo at a time. It ends when the core is dropped (the
/// sender with it), after the photo it is on.
pub(crate) struct Renderer {
    jobs: mpsc::Sender<Job>,
}

impl Renderer {
    pub fn start() -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("upn-render".into())
            .spawn(move || {
                lower_priority();
                for job in queue {
                    failpoint::hit("render.mid_render");
                    let rendition = media::photo_rendition(&job.original, &job.limits);
                    let _ = job.reply.send(rendition);
                }
            })
            .map_err(Error::io("starting the background renderer"))?;
        Ok(Self { jobs })
    }

    /// `None` when the thread is gone (it cannot be, short of a bug): the flush renders then.
    async fn render(
        &self,
        original: Vec<u8>,
        limits: MediaLimits,
    ) -> Option<std::result::Result<Rendition, MediaError>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            original,
            limits,
            reply,
        };
        self.jobs.send(job).ok()?;
        answer.await.ok()
    }
}

/// Renders behind everything the driver is waiting for: the nice value of this thread only
/// (Linux and Android keep it per thread). Elsewhere the thread keeps the default priority.
fn lower_priority() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: setpriority takes plain integers; `who = 0` is the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// The renderer's task: a pass at start (photos left unrendered by an earlier run), then one
/// whenever a capture wakes it.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        if let Err(e) = render_pending(&shared).await {
            tracing::warn!(error = %e, "background rendering failed; the flush will render");
        }
        shared.render_wake.notified().await;
    }
}

/// Renders every unsent photo that has no rendition yet; returns how many it settled
/// (rendered, or marked as needing attention).
pub(crate) async fn render_pending(shared: &Arc<Shared>) -> Result<u32> {
    let mut settled = 0;
    let todo = shared.store()?.unrendered_photos()?;
    for queued in todo {
        // Wait for the flush if it is preparing this one, then look again.
        let _claim = shared.renders.claim(&queued.id).await;
        let Some(capture) = shared.store()?.capture(&queued.id)? else {
            continue;
        };
        if capture.upload.is_some()
            || !matches!(capture.state, ItemState::Waiting | ItemState::Queued)
        {
            continue;
        }
        if render_one(shared, &capture).await? {
            settled += 1;
        }
    }
    Ok(settled)
}

async fn render_one(shared: &Arc<Shared>, capture: &Capture) -> Result<bool> {
    let original = match shared
        .blobs
        .read_verified(&capture.original.name, &capture.original.sha256)
    {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(capture = %capture.id, error = %e, "original unreadable; left to the flush");
            return Ok(false);
        }
    };
    failpoint::hit("render.before_decode");
    let Some(rendition) = shared.renderer.render(original, shared.config.media).await else {
        return Ok(false);
    };
    match rendition {
        Ok(rendition) => record(shared, capture, &rendition),
        Err(e) => {
            let failure = local_failure(&rendition_error(e));
            let reason = failure.reason;
            tracing::warn!(capture = %capture.id, %reason, "photo could not be rendered");
            let event = Event::RenderFailed {
                reason: &reason,
                code: failure.code,
            };
            let outcome = shared
                .store()?
                .apply_event(&capture.id, &event, shared.clock.now())?;
            let applied = matches!(outcome, Outcome::Applied(_));
            if applied {
                shared.notify_capture(&capture.id);
            }
            Ok(applied)
        }
    }
}

/// Publishes the rendition (see `RenderClaims::publish`): true when it became the file. It
/// loses when the flush, not waiting for this niced thread, rendered and recorded the photo
/// first, and is refused when the photo was discarded or sent meanwhile; either way nothing of
/// it stays on disk.
fn record(shared: &Arc<Shared>, capture: &Capture, rendition: &Rendition) -> Result<bool> {
    let published = shared.renders.publish(
        &shared.store,
        &shared.blobs,
        &capture.id,
        &rendition.bytes,
        Maker::Background,
    )?;
    Ok(matches!(published, Published::Won(_)))
}

impl super::Driver {
    /// Makes every missing photo rendition now, as the background renderer does after each
    /// capture, and waits for any rendition under way (the renderer's or the flush's). Returns how many photos it settled. For a caller
    /// that needs the folder still (a test about to compare it, a simulation step) or wants
    /// renditions made before going online.
    pub fn render_pending(&self) -> Result<u32> {
        let shared = self.shared.clone();
        self.runtime.block_on(async move {
            let settled = render_pending(&shared).await?;
            // A rendition under way for a photo no longer listed (discarded meanwhile) ends
            // with its file removed: wait for that too.
            shared.renders.idle().await;
            Ok(settled)
        })
    }
}
