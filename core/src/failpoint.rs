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
