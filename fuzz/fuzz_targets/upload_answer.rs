//! UPN's answer to a POD or image upload: status (2 bytes), a flag, a Retry-After line, then the
//! body. A refusal is classified without panicking, never carries the API key, bounds the
//! server's message, and never asks for a wait over the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upn_core::fuzzing::{self, Answer, FUZZ_KEY};
use upn_core::upn::http::MAX_RETRY_AFTER;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]) % 1000;
    let image = data[2] & 1 == 1;
    let rest = &data[3..];
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let retry_after = String::from_utf8_lossy(&rest[..split]);
    let body = rest.get(split + 1..).unwrap_or_default();
    match fuzzing::upload_answer(status, body, &retry_after, image) {
        Answer::Pod(Ok(_)) | Answer::Image(Ok(_)) => {}
        Answer::Pod(Err(e)) | Answer::Image(Err(e)) | Answer::Refused(e) => {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(FUZZ_KEY), "the key leaked: {text}");
            assert!(
                text.chars().count() <= 1200,
                "an error of {} chars",
                text.len()
            );
            if let Some(wait) = e.retry_after() {
                assert!(wait <= MAX_RETRY_AFTER, "a wait of {wait:?}");
            }
        }
    }
});
