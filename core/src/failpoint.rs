//! Named points where tests stop the process to prove that a crash there loses nothing.
//!
//! Compiled in only with the `failpoints` feature (tests); otherwise [`hit`] is an empty inline
//! function. With the feature on, `hit(name)` does something only when the environment variable
//! `UPN_FAILPOINT` equals `name`: it prints `FAILPOINT {name}` on stderr and then blocks
//! forever, so the test (the parent process) can SIGKILL it at exactly that point.

/// Environment variable naming the failpoint to stop at.
pub const ENV: &str = "UPN_FAILPOINT";

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::io::Write;
    if std::env::var(ENV).is_ok_and(|wanted| wanted == name) {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "FAILPOINT {name}");
        let _ = err.flush();
        loop {
            std::thread::park();
        }
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Environment variable naming an I/O fault to inject (see [`io_fault`]).
pub const FAULT_ENV: &str = "UPN_FAULT";

/// With the `failpoints` feature and `UPN_FAULT=name`, the named I/O step fails as if the device
/// were out of space (ENOSPC). Lets a test prove a full disk loses and half-writes nothing.
#[cfg(feature = "failpoints")]
pub fn io_fault(name: &str) -> Option<std::io::Error> {
    std::env::var(FAULT_ENV)
        .is_ok_and(|wanted| wanted == name)
        .then(|| std::io::Error::from_raw_os_error(28))
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn io_fault(_name: &str) -> Option<std::io::Error> {
    None
}
