//! Standard output and error that never panic. `println!` panics when the reader went away
//! (`upn-driver stops --json | head -1`: EPIPE, since Rust ignores SIGPIPE); here a closed pipe
//! ends the output quietly and the command finishes with its own exit code. Any other write
//! failure (a full disk behind `> file`) is remembered and turns success into exit 1.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static WRITE_FAILED: OnceLock<String> = OnceLock::new();

/// Writes to stdout; after the reader has gone, does nothing.
pub fn stdout(args: fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        } else {
            let _ = WRITE_FAILED.set(format!("could not write the output: {e}"));
        }
    }
}

/// Writes to stderr, ignoring failures: there is nowhere left to report them.
pub fn stderr(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// The first write failure other than a closed pipe, if any.
pub fn write_failure() -> Option<&'static str> {
    WRITE_FAILED.get().map(String::as_str)
}

// The crate's `print!`, `println!` and `eprintln!`: declared before every other module in
// `main.rs`, they shadow std's there, so every command's output goes through the functions
// above (and new commands cannot forget to).

/// `print!` that never panics.
macro_rules! print {
    ($($arg:tt)*) => { $crate::output::stdout(format_args!($($arg)*)) };
}

/// `println!` that never panics.
macro_rules! println {
    () => { $crate::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics.
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}
