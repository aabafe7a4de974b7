//! Upload renditions made ahead of the flush, by two makers sharing `driver::render`'s loop:
//!
//! - The background renderer: after a photo's capture has returned (and at open, for any left
//!   from before a crash), its rendition (`blobs/{id}.upload`) is made, one photo at a time, on
//!   a thread of its own at low priority, newest photo first, so the one just taken is checked
//!   while the driver is still at the door. The full decode runs here: a photo that cannot be
//!   rendered becomes `needs_attention` at once with the reason (compare-and-set: one `sending`
//!   or discarded meanwhile is left alone), and listeners hear of it. Anything else (an
//!   unreadable original, a full disk) is left to the flush, which decides as it always has.
//! - The flush's assistant: while a flush runs, a second thread at normal priority renders the
//!   oldest photos first, so a day's backlog renders on two cores while the uploads go, and the
//!   two makers meet once in the middle instead of racing on the same photos.
//!
//! The flush waits for the niced thread only briefly: when it needs a photo that thread is
//! still on after that, it renders the photo itself, and the first rendition published is the
//! file (`sync/render.rs`). It waits for the assistant, which is at normal priority and started.

use std::collections::HashSet;
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;

use super::Shared;
use crate::domain::outbox::{Event, ItemState};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::media::{self, MediaError, MediaLimits, Rendition};
use crate::store::captures::{Capture, Outcome};
use crate::sync::outbox::{local_failure, rendition_error};
use crate::sync::render::{Claimant, Maker, Published};

struct Job {
    original: Vec<u8>,
    limits: MediaLimits,
    reply: oneshot::Sender<std::result::Result<Rendition, MediaError>>,
}

/// A renderer thread's scheduling priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// Behind everything the driver waits for (the background renderer).
    Low,
    /// As the flush itself (the flush's assistant).
    Normal,
}

/// A renderer's thread, fed one photo at a time. It ends when the core is dropped (the
/// sender with it), after the photo it is on.
pub(crate) struct Renderer {
    jobs: mpsc::Sender<Job>,
}

impl Renderer {
    pub fn start(priority: Priority) -> Result<Self> {
        map_large_blocks();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (name, mid_render) = match priority {
            Priority::Low => ("upn-render", "render.mid_render"),
            Priority::Normal => ("upn-render-assist", "render.assist_mid_render"),
        };
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if priority == Priority::Low {
                    lower_priority();
                }
                for job in queue {
                    failpoint::hit(mid_render);
                    let rendition = media::photo_rendition(job.original, &job.limits);
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

/// The pinned mmap threshold: a rendition's large blocks (decode planes and pixels, 0.7-9 MB)
/// are mapped; smaller ones stay in the arenas, where reuse is cheaper than a fresh mapping.
/// At glibc's own start value (128 KiB) a signature's decode buffers were mapped and unmapped
/// on every `sign` (+0.2 ms p50); at 1 MiB the flush peaked at 64 MB; at 512 KiB, 59 MB and
/// `sign` as without the pin (`docs/benchmarks.md`, rows 2c and 3b).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 512 * 1024;

/// Pinning the mmap threshold also stops glibc moving its trim threshold, left at 128 KiB: a
/// `sign`'s PNG decode then grew the heap and gave it back (brk, page faults) on every call,
/// +0.15-0.25 ms p50 (row 2c). Twice the mmap threshold, as glibc's own adjustment sets it:
/// at most 1 MiB of free heap top stays resident.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 2 * MMAP_THRESHOLD;

/// Keeps a rendition's large buffers (a 12 MP photo's decode planes and pixels, up to ~9 MB
/// each) out of the allocator's arenas, so they go back to the system when freed. glibc raises
/// its mmap threshold to the size of the largest mapped block freed so far; after the first
/// rendition, later ones are served from its arenas, which keep freed memory resident: the
/// flush of 600 photos peaked at 129 MB RSS with about 50 MB live, and 59 MB with the
/// threshold pinned. The phones' allocators already serve blocks this
/// large from their own mappings. Once per process, glibc only, and not when the host chose
/// a threshold itself (`MALLOC_MMAP_THRESHOLD_`, or `glibc.malloc.mmap_threshold` in
/// `GLIBC_TUNABLES`; the trim threshold likewise).
fn map_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static PINNED: std::sync::Once = std::sync::Once::new();
        PINNED.call_once(|| {
            let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
            let host_chose = |env: &str, tunable: &str| {
                std::env::var_os(env).is_some() || tunables.contains(tunable)
            };
            if host_chose("MALLOC_MMAP_THRESHOLD_", "malloc.mmap_threshold") {
                return;
            }
            // SAFETY: mallopt takes two integers and changes only allocator tuning.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
                if !host_chose("MALLOC_TRIM_THRESHOLD_", "malloc.trim_threshold") {
                    libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
                }
            }
        });
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

/// Renders every unsent photo that has no rendition yet, newest first, as the background
/// renderer; returns how many it settled (rendered, or marked as needing attention).
pub(crate) async fn render_pending(shared: &Arc<Shared>) -> Result<u32> {
    render_all(shared, Claimant::Background).await
}

/// The flush's assistant: renders unsent photos without a rendition, oldest first, until none
/// is left that nobody else is making. Runs beside a flush and is dropped with it.
pub(crate) async fn assist(shared: &Arc<Shared>) {
    if let Err(e) = render_all(shared, Claimant::Assist).await {
        tracing::warn!(error = %e, "rendering ahead of the flush failed; the flush will render");
    }
}

/// The makers' loop. The list is looked up afresh after each photo, so a photo just taken
/// joins at once (ahead of any backlog, for the background renderer). The background renderer
/// waits for a photo someone else is making, then finds it made; the assistant skips it.
async fn render_all(shared: &Arc<Shared>, who: Claimant) -> Result<u32> {
    // The assistant takes the oldest photo nobody is on and renders on its own thread; the
    // background renderer takes the newest and waits its turn on a claimed one.
    let assisting = who == Claimant::Assist;
    let renderer = if assisting {
        &shared.assist_renderer
    } else {
        &shared.renderer
    };
    let mut settled = 0;
    // Photos looked at in this pass: one left unrendered (its original unreadable, or made by
    // someone else who failed) is not picked again.
    let mut tried = HashSet::new();
    loop {
        // Newest first.
        let todo = shared.store()?.unrendered_photo_ids()?;
        let next = if assisting {
            todo.into_iter().rev().find(|id| !tried.contains(id))
        } else {
            todo.into_iter().find(|id| !tried.contains(id))
        };
        let Some(id) = next else {
            return Ok(settled);
        };
        tried.insert(id.clone());
        let _claim = if assisting {
            match shared.renders.try_claim(&id, who) {
                Some(claim) => claim,
                None => continue,
            }
        } else {
            shared.renders.claim(&id, who).await
        };
        let Some(capture) = shared.store()?.capture(&id)? else {
            continue;
        };
        if capture.upload.is_some()
            || !matches!(capture.state, ItemState::Waiting | ItemState::Queued)
        {
            continue;
        }
        if render_one(shared, &capture, renderer).await? {
            settled += 1;
        }
    }
}

async fn render_one(shared: &Arc<Shared>, capture: &Capture, renderer: &Renderer) -> Result<bool> {
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
    let Some(rendition) = renderer.render(original, shared.config.media).await else {
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

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// After a larger block has been freed, a large block is still mapped of its own (so it goes
    /// back to the system when freed) instead of coming from the arenas.
    #[test]
    fn large_blocks_stay_mapped_after_a_larger_one_is_freed() {
        super::map_large_blocks();
        drop(std::hint::black_box(vec![1u8; 12 << 20]));
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let mapped = || unsafe { libc::mallinfo2() }.hblkhd;
        let before = mapped();
        let block = std::hint::black_box(vec![1u8; 2 << 20]);
        let after = mapped();
        assert!(
            after >= before + (2 << 20),
            "a 2 MB block came from the arenas: mapped {before} -> {after} bytes"
        );
        drop(block);
    }
}
