//! The tracking batch as the pull processes it: the envelope, then each event on its own. Every
//! event is either applied (and then passes `event_problem`) or kept aside with a short reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upn_core::domain::tracking::event_problem;
use upn_core::fuzzing;
use upn_core::upn::UpnError;

fuzz_target!(|body: &[u8]| {
    match fuzzing::tracking_batch(body) {
        Ok((events, malformed)) => {
            for e in &events {
                assert_eq!(event_problem(e), None, "an applied event has a problem");
            }
            for m in &malformed {
                assert!(!m.reason.is_empty(), "a kept-aside event without a reason");
                assert!(m.reason.chars().count() <= 200, "reason too long");
            }
        }
        Err(UpnError::BadResponse { reason }) => {
            assert!(reason.len() <= 200, "reason of {} bytes", reason.len());
        }
        Err(other) => panic!("a body is only ever a bad response, got {other:?}"),
    }
});
