//! Recent log lines, for the support bundle: a `tracing` layer that keeps the last lines in
//! memory and, once a data folder is attached, appends them to `logs/core.log` there (two
//! files of at most [`MAX_FILE_BYTES`], the older one `core.log.1`), so a support bundle made
//! later, or by another process (the CLI), still has them.
//!
//! The core logs no keys, signatures or photos (ARCHITECTURE.md's invariants); the attached API
//! key is also cut out of every line before it is kept, in case a server echoed it.
//!
//! The same layer also feeds one [`LogSink`] per process (the app's logger through the FFI:
//! logcat, os_log), with the same scrubbing and length cap, through a bounded queue drained by
//! a thread of its own: a slow or failing sink loses lines (counted, and announced to it once
//! it catches up), never blocks or breaks the code that logged.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
pub use tracing::Level;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Lines kept in memory.
const MEMORY_LINES: usize = 1000;
/// One log file is rotated at this size.
pub const MAX_FILE_BYTES: u64 = 512 * 1024;
/// A longer line is cut (a line is a message, never a body).
const MAX_LINE_CHARS: usize = 2000;
pub const LOG_DIR_NAME: &str = "logs";
const LOG_FILE: &str = "core.log";
const OLD_LOG_FILE: &str = "core.log.1";

#[derive(Default)]
struct Book {
    lines: VecDeque<String>,
    file: Option<PathBuf>,
    secret: Option<String>,
}

fn book() -> &'static Mutex<Book> {
    static BOOK: OnceLock<Mutex<Book>> = OnceLock::new();
    BOOK.get_or_init(Default::default)
}

fn with_book<T>(f: impl FnOnce(&mut Book) -> T) -> T {
    // A panic while logging cannot leave the ring unusable: take it over.
    let mut guard = book().lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

/// The layer to add to the process's subscriber (INFO and above are kept).
pub fn layer() -> LogbookLayer {
    LogbookLayer
}

pub struct LogbookLayer;

impl<S: Subscriber> Layer<S> for LogbookLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = *meta.level();
        let tap = TAP.get().filter(|t| level <= t.min_level);
        // Our own lines only: a dependency's are noise to support (and its own business).
        if (level > Level::INFO && tap.is_none()) || !meta.target().starts_with("upn") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let at = chrono::Utc::now();
        let text = clean(fields.message + &fields.rest);
        if let Some(tap) = tap {
            tap.send(LogLine {
                level,
                target: meta.target().to_string(),
                message: text.clone(),
                at,
            });
        }
        if level <= Level::INFO {
            record(format!(
                "{} {:>5} {}: {}",
                at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                level,
                meta.target(),
                text
            ));
        }
    }
}

/// One line for the process's [`LogSink`]: already scrubbed and cut like the logbook's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub target: String,
    pub message: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The app's logger (through the FFI). Called on a thread of its own, one line at a time.
pub trait LogSink: Send + Sync + 'static {
    fn on_log(&self, line: LogLine);
}

/// Lines waiting for a slow sink; beyond this they are dropped (and counted).
pub const SINK_QUEUE: usize = 1024;

struct Tap {
    min_level: Level,
    queue: std::sync::mpsc::SyncSender<LogLine>,
    dropped: std::sync::atomic::AtomicU64,
}

static TAP: OnceLock<Tap> = OnceLock::new();

impl Tap {
    fn send(&self, line: LogLine) {
        if self.queue.try_send(line).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// `set_sink` was already called in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a log listener is already set for this process; set it once, at start-up")]
pub struct SinkAlreadySet;

/// Sends the core's lines at `min_level` and above to `sink`, from now on, for the life of the
/// process (once: a second call is refused and changes nothing). Also makes the logbook the
/// process's subscriber if it has none, so lines flow before a core is opened.
pub fn set_sink(sink: Arc<dyn LogSink>, min_level: Level) -> Result<(), SinkAlreadySet> {
    let (queue, lines) = std::sync::mpsc::sync_channel(SINK_QUEUE);
    let tap = Tap {
        min_level,
        queue,
        dropped: Default::default(),
    };
    TAP.set(tap).map_err(|_| SinkAlreadySet)?;
    install_if_none();
    let spawned = std::thread::Builder::new()
        .name("upn-log-sink".into())
        .spawn(move || feed_sink(sink.as_ref(), &lines));
    if spawned.is_err() {
        // No thread: the queue fills and lines are counted as dropped; logging still works.
        tracing::warn!("could not start the log listener's thread");
    }
    Ok(())
}

/// Lines the sink lost because it was too slow (since the process started).
pub fn sink_dropped() -> u64 {
    TAP.get()
        .map_or(0, |t| t.dropped.load(std::sync::atomic::Ordering::Relaxed))
}

fn feed_sink(sink: &dyn LogSink, lines: &std::sync::mpsc::Receiver<LogLine>) {
    let mut announced = 0;
    for line in lines {
        let dropped = sink_dropped();
        if dropped > announced {
            announced = dropped;
            deliver(
                sink,
                LogLine {
                    level: Level::WARN,
                    target: "upn_core::logbook".into(),
                    message: format!(
                        "{dropped} log lines in all were dropped: the log listener was too slow"
                    ),
                    at: chrono::Utc::now(),
                },
            );
        }
        deliver(sink, line);
    }
}

fn deliver(sink: &dyn LogSink, line: LogLine) {
    // A failing sink loses that line; it must not end the thread.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.on_log(line)));
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

/// One line's text as it may leave the core: the attached key cut out (before the length cut,
/// so no part of it survives at the edge), at most [`MAX_LINE_CHARS`], on one line.
fn clean(mut text: String) -> String {
    if let Some(secret) = with_book(|b| b.secret.clone()).filter(|s| !s.is_empty()) {
        text = text.replace(&secret, "[redacted]");
    }
    if text.chars().count() > MAX_LINE_CHARS {
        text = text.chars().take(MAX_LINE_CHARS).collect::<String>() + "…";
    }
    text.replace(['\n', '\r'], " ")
}

fn record(line: String) {
    with_book(|b| {
        if let Some(path) = &b.file {
            // Best effort: logging never fails the work it describes.
            let _ = append(path, &line);
        }
        if b.lines.len() == MEMORY_LINES {
            b.lines.pop_front();
        }
        b.lines.push_back(line);
    });
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    if fs::metadata(path).is_ok_and(|m| m.len() >= MAX_FILE_BYTES) {
        fs::rename(path, path.with_file_name(OLD_LOG_FILE))?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{line}")
}

/// Makes the logbook the process's subscriber when it has none (an app through the FFI: no
/// Rust subscriber of its own), so support bundles carry recent lines there too. A process
/// that set up its own (the CLI) adds [`layer`] to it instead; this then changes nothing.
pub fn install_if_none() {
    use tracing_subscriber::layer::SubscriberExt as _;
    if !tracing::dispatcher::has_been_set() {
        let _ =
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer()));
    }
}

/// From now on lines are also kept in `data_dir/logs/`, with `secret` cut out of them. The
/// last data folder attached wins (one core per process in an app).
pub fn attach(data_dir: &Path, secret: &str) {
    let dir = data_dir.join(LOG_DIR_NAME);
    let file = fs::create_dir_all(&dir).ok().map(|_| dir.join(LOG_FILE));
    with_book(|b| {
        b.file = file;
        b.secret = Some(secret.to_string());
    });
}

/// Stops keeping lines in `data_dir/logs/` (if that is where they go) and forgets the lines
/// in memory and the secret: a wiped (signed-out) folder's lines go nowhere afterwards.
pub fn detach(data_dir: &Path) {
    let dir = data_dir.join(LOG_DIR_NAME);
    with_book(|b| {
        if b.file.as_deref().is_some_and(|f| f.starts_with(&dir)) {
            b.file = None;
            b.secret = None;
        }
        b.lines.clear();
    });
}

/// The most recent lines, oldest first: those kept in `data_dir/logs/` (when there are any),
/// else those in this process's memory. At most `max` lines.
pub fn recent(data_dir: &Path, max: usize) -> Vec<String> {
    let dir = data_dir.join(LOG_DIR_NAME);
    let mut lines: Vec<String> = Vec::new();
    for name in [OLD_LOG_FILE, LOG_FILE] {
        if let Ok(text) = fs::read(dir.join(name)) {
            lines.extend(String::from_utf8_lossy(&text).lines().map(str::to_string));
        }
    }
    if lines.is_empty() {
        lines = with_book(|b| b.lines.iter().cloned().collect());
    }
    let skip = lines.len().saturating_sub(max);
    lines.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Blocks on its first line until released; passes every line on.
    struct Sink {
        lines: Mutex<mpsc::Sender<LogLine>>,
        first: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
    }

    impl LogSink for Sink {
        fn on_log(&self, line: LogLine) {
            if let Some((entered, release)) = self.first.lock().expect("lock").take() {
                let _ = entered.send(());
                let _ = release.recv_timeout(Duration::from_secs(20));
            }
            if line.message.contains("panic please") {
                panic!("a failing sink");
            }
            let _ = self.lines.lock().expect("lock").send(line);
        }
    }

    // The only test touching the process-wide sink and the attached secret (no unit test of
    // this crate opens a core, which would attach its own).
    #[test]
    fn the_sink_gets_scrubbed_lines_at_its_level_and_a_slow_one_only_loses_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        attach(dir.path(), "sk-live-SECRET-0042");
        let (tx, lines) = mpsc::channel();
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let sink = Arc::new(Sink {
            lines: Mutex::new(tx),
            first: Mutex::new(Some((entered_tx, release_rx))),
        });
        set_sink(sink.clone(), Level::DEBUG).expect("first sink");
        assert_eq!(set_sink(sink, Level::INFO), Err(SinkAlreadySet));
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "upn_core::test", key = "sk-live-SECRET-0042", "echoed sk-live-SECRET-0042");
            entered
                .recv_timeout(Duration::from_secs(10))
                .expect("the sink thread took the first line");
            // The sink is blocked: the queue fills, the rest is dropped, nobody waits.
            for i in 0..SINK_QUEUE + 10 {
                tracing::debug!(target: "upn_core::test", i, "filler");
            }
            assert!(sink_dropped() >= 10, "dropped {}", sink_dropped());
            tracing::trace!(target: "upn_core::test", "below the sink's level");
            tracing::info!(target: "hyper::proto", "not ours");
            release.send(()).expect("release");
            tracing::error!(target: "upn_core::test", "panic please");
            tracing::info!(target: "upn_core::test", "after the panic");
        });
        let first = lines.recv_timeout(Duration::from_secs(10)).expect("line");
        assert_eq!(first.level, Level::WARN);
        assert_eq!(first.target, "upn_core::test");
        assert!(!first.message.contains("SECRET"), "{first:?}");
        assert!(first.message.contains("[redacted]"), "{first:?}");
        let rest: Vec<LogLine> =
            std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(10)).ok())
                .take_while(|l| l.message != "after the panic")
                .collect();
        assert!(
            rest.iter().any(|l| l.message.contains("were dropped")),
            "the loss is told"
        );
        assert!(rest
            .iter()
            .all(|l| l.target.starts_with("upn") && l.level <= Level::DEBUG));
        assert!(
            rest.iter()
                .filter(|l| l.message.starts_with("filler"))
                .count()
                <= SINK_QUEUE
        );
        // The logbook itself kept the INFO+ line, scrubbed too; not the DEBUG ones.
        let kept = recent(dir.path(), 10_000);
        assert!(
            kept.iter().any(|l| l.contains("echoed [redacted]")),
            "{kept:?}"
        );
        assert!(!kept
            .iter()
            .any(|l| l.contains("SECRET") || l.contains("filler")));
    }
}
