//! Recent log lines, for the support bundle: a `tracing` layer that keeps the last lines in
//! memory and, once a data folder is attached, appends them to `logs/core.log` there (two
//! files of at most [`MAX_FILE_BYTES`], the older one `core.log.1`), so a support bundle made
//! later, or by another process (the CLI), still has them.
//!
//! The core logs no keys, signatures or photos (ARCHITECTURE.md's invariants); the attached API
//! key is also cut out of every line before it is kept, in case a server echoed it.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
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
        // Our own lines only: a dependency's are noise to support (and its own business).
        if *meta.level() > Level::INFO || !meta.target().starts_with("upn") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format!(
            "{} {:>5} {}: {}{}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            meta.level(),
            meta.target(),
            fields.message,
            fields.rest
        );
        record(line);
    }
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

fn record(mut line: String) {
    if line.chars().count() > MAX_LINE_CHARS {
        line = line.chars().take(MAX_LINE_CHARS).collect::<String>() + "…";
    }
    line = line.replace(['\n', '\r'], " ");
    with_book(|b| {
        if let Some(secret) = b.secret.as_deref().filter(|s| !s.is_empty()) {
            line = line.replace(secret, "[redacted]");
        }
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
