//! Image ingest: both inspections never panic (a decoder panic is `Undecodable`), and whatever the
//! capture path accepts the flush can render, within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upn_core::fuzzing;
use upn_core::media::SIGNATURE_MAX_LONG_SIDE;

fuzz_target!(|bytes: &[u8]| {
    let limits = fuzzing::image_limits();
    let ingest = fuzzing::image_ingest(bytes);
    if let Some(r) = ingest.photo_rendition {
        let r = r.expect("an accepted photo must render");
        assert!(r.width.max(r.height) <= limits.max_long_side, "{r:?}");
    }
    if let Some(r) = ingest.signature_rendition {
        let r = r.expect("an accepted signature must render");
        assert!(r.width.max(r.height) <= SIGNATURE_MAX_LONG_SIDE, "{r:?}");
    }
});
