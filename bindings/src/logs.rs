//! The core's log lines for the app's logger (logcat, os_log, Timber, ...): a foreign
//! `LogListener` set once per process. Lines carry no API key (cut out, as in the support
//! bundle's logbook), no signature or photo bytes, and are at most 2,000 characters. The
//! listener is called on a thread of its own; a slow one loses lines (counted, and told in a
//! WARN line when it catches up), a throwing one loses that line: the core never waits for it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

// The level type comes through the core: the FFI crate takes no logging dependency of its own.
use upn_core::logbook::{self, Level, LogLine, LogSink};

use crate::error::CoreError;
use crate::guard;

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn to_tracing(self) -> Level {
        match self {
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Trace => Level::TRACE,
        }
    }

    fn of(level: Level) -> Self {
        match level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// One log line of the core.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    pub level: LogLevel,
    /// Where in the core it comes from (`upn_core::sync::outbox`, ...).
    pub target: String,
    /// The message with its fields (`capture=… error=…`); never a key, signature or photo.
    pub message: String,
    pub at_ms: i64,
}

/// Implemented by the app: hands the core's lines to the platform's logger.
#[uniffi::export(with_foreign)]
pub trait LogListener: Send + Sync {
    fn on_log(&self, record: LogRecord);
}

struct Bridge(Arc<dyn LogListener>);

impl LogSink for Bridge {
    fn on_log(&self, line: LogLine) {
        let record = LogRecord {
            level: LogLevel::of(line.level),
            target: line.target,
            message: line.message,
            at_ms: line.at.timestamp_millis(),
        };
        // A foreign exception surfaces as a panic: contained, that line is lost.
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.on_log(record)));
    }
}

/// Sends the core's log lines at `min_level` and above to `listener`, for the life of the
/// process. Call it once, at app start (before or after opening a `DriverCore`); a second call
/// is refused with `InvalidInput` (field `log_listener`) and changes nothing.
#[uniffi::export]
pub fn set_log_listener(
    listener: Arc<dyn LogListener>,
    min_level: LogLevel,
) -> Result<(), CoreError> {
    guard("set_log_listener", || {
        logbook::set_sink(Arc::new(Bridge(listener)), min_level.to_tracing())
            .map_err(|e| CoreError::invalid("log_listener", e.to_string()))
    })
}

/// Log lines the listener lost because it was too slow, since the process started.
#[uniffi::export]
pub fn log_lines_dropped() -> u64 {
    logbook::sink_dropped()
}
