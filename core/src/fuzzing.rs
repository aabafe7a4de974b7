//! Entry points for the fuzz targets in `fuzz/` (a workspace of its own, run by
//! `cargo xtask fuzz`): each is the exact path untrusted bytes take in the product, with no
//! network, store or clock around it. Not an API: hidden from the docs, and nothing else uses it.

use std::time::Duration;

use reqwest::StatusCode;

use crate::domain::tracking::TrackingEvent;
use crate::media::{self, ImageInfo, MediaError, MediaLimits, Rendition};
use crate::store::tracking::MalformedEvent;
use crate::upn::http::{checked, parse_json, parse_retry_after, refusal_of};
use crate::upn::wire::{ConsignmentFeed, ImageReceipt, PodReceipt};
use crate::upn::{ApiKey, UpnError};

/// The key the refusal target scrubs; a finding is an error that still shows it.
pub const FUZZ_KEY: &str = "fuzz-api-key-3b9d";

/// A consignments feed body as the import reads it: the envelope, then each record on its own.
pub fn feed(body: &[u8]) -> Result<ConsignmentFeed, UpnError> {
    parse_json(body)
}

/// A tracking response as the pull processes it once it is in the inbox: the envelope must
/// parse; then each event is parsed and checked on its own.
pub fn tracking_batch(body: &[u8]) -> Result<(Vec<TrackingEvent>, Vec<MalformedEvent>), UpnError> {
    let parsed = crate::sync::tracking::parse_batch(0, body)?;
    Ok((parsed.events, parsed.info.malformed))
}

/// What the outbox makes of a response to a POD or image upload: the receipt a 2xx carries, or
/// the typed refusal of any other status, with its `Retry-After`.
pub enum Answer {
    Pod(Result<PodReceipt, UpnError>),
    Image(Result<ImageReceipt, UpnError>),
    Refused(UpnError),
}

/// `status` (any u16; an impossible one is read as 500) with `body` and a `Retry-After` value.
pub fn upload_answer(status: u16, body: &[u8], retry_after: &str, image: bool) -> Answer {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_success() {
        return if image {
            Answer::Image(checked(parse_json(body), ImageReceipt::check))
        } else {
            Answer::Pod(checked(parse_json(body), PodReceipt::check))
        };
    }
    let wait: Option<Duration> = parse_retry_after(retry_after, chrono::Utc::now());
    Answer::Refused(refusal_of(status, Some(body), wait, &ApiKey::new(FUZZ_KEY)))
}

/// Small limits, so one execution stays fast and a bomb is still a bomb.
pub fn image_limits() -> MediaLimits {
    MediaLimits {
        max_input_bytes: 1024 * 1024,
        max_pixels: 4_000_000,
        max_dimension: 4096,
        max_long_side: 256,
        jpeg_quality: 70,
    }
}

/// Everything the capture path and the flush do with an image: both inspections, and the
/// renditions of what each accepted.
pub struct Ingest {
    pub photo: Result<ImageInfo, MediaError>,
    pub signature: Result<ImageInfo, MediaError>,
    pub photo_rendition: Option<Result<Rendition, MediaError>>,
    pub signature_rendition: Option<Result<Rendition, MediaError>>,
}

pub fn image_ingest(bytes: &[u8]) -> Ingest {
    let limits = image_limits();
    let photo = media::inspect_photo(bytes, &limits);
    let signature = media::inspect_signature(bytes, &limits);
    let photo_rendition = photo
        .is_ok()
        .then(|| media::photo_rendition(bytes, &limits));
    let signature_rendition = signature
        .is_ok()
        .then(|| media::signature_rendition(bytes, &limits));
    Ingest {
        photo,
        signature,
        photo_rendition,
        signature_rendition,
    }
}
