//! The consignments feed: any body is either refused as a whole with a short reason that does
//! not echo it, or parsed with every kept record passing its range checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upn_core::fuzzing;
use upn_core::upn::UpnError;

fuzz_target!(|body: &[u8]| {
    match fuzzing::feed(body) {
        Ok(feed) => {
            for c in &feed.consignments {
                assert!(c.check().is_ok(), "a kept consignment fails its own check");
            }
            for c in &feed.cancellations {
                assert!(c.check().is_ok(), "a kept cancellation fails its own check");
            }
            for r in &feed.refused {
                assert!(
                    r.reason.len() <= 200,
                    "refusal reason of {} bytes",
                    r.reason.len()
                );
            }
        }
        Err(UpnError::BadResponse { reason }) => {
            assert!(reason.len() <= 200, "reason of {} bytes", reason.len());
        }
        Err(other) => panic!("a body is only ever a bad response, got {other:?}"),
    }
});
