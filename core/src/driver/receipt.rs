//! The POD receipt and its tamper-evident hash: `verify` recomputes the hash from the stored
//! rows and files; `receipt_html` renders a one-page, self-contained receipt (signature and
//! photo thumbnails inline) that reads well on a phone.

mod html;

use chrono::{DateTime, Utc};

use super::Driver;
use crate::domain::diagnostics::distance_m;
use crate::domain::outbox::ItemState;
use crate::domain::pod_hash::{self, covered_photo_ids, CoveredPhoto};
use crate::error::{Error, Result};
use crate::store::blobs::FileCheck;
use crate::store::captures::Capture;
use crate::sync::import::validate_barcode;

/// Long side of the photo thumbnails on a receipt, pixels.
const RECEIPT_THUMBNAIL_SIDE: u32 = 480;

/// What `verify` found for a consignment's POD.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodVerification {
    pub barcode: String,
    /// The POD's capture id (its idempotency key).
    pub capture_id: String,
    /// The hash stored with the POD when it was first sent (and sent to UPN); `None` before.
    pub stored_sha256: Option<String>,
    /// The hash recomputed now from the stored rows and files.
    pub recomputed_sha256: String,
    /// The canonical manifest the hash is taken over (`domain::pod_hash`).
    pub manifest: String,
    /// Photos the hash covers.
    pub photos_covered: u32,
    /// True when nothing covered has changed: every file matches, and (once sent) the
    /// recomputed hash equals the stored one.
    pub intact: bool,
    /// What does not match, in words.
    pub problems: Vec<String>,
    /// When retention removed the covered files (after UPN acknowledged them), if it did: the
    /// hash is then checked against the stored rows only, and a missing file is not a problem.
    pub originals_purged_at: Option<DateTime<Utc>>,
}

impl Driver {
    /// Recomputes a consignment's POD hash from what the device stores and checks every file
    /// it covers. The hash is fixed when the POD is first sent; before that it is provisional
    /// (the photos it covers may still change).
    pub fn verify_pod(&self, barcode: &str) -> Result<PodVerification> {
        let barcode = validate_barcode(barcode)?;
        let captures = {
            let store = self.shared.store()?;
            if store.consignment(barcode)?.is_none() {
                return Err(Error::NotFound {
                    barcode: barcode.to_string(),
                });
            }
            store.captures_of(barcode)?
        };
        let pod = live_pod(barcode, &captures)?;
        let mut problems = Vec::new();
        let content = match &pod.pod_manifest {
            // Frozen: the photos it named, as their rows say now.
            Some(manifest) => {
                let mut content = pod.pod_content(&[]);
                for id in covered_photo_ids(manifest) {
                    match captures.iter().find(|c| c.id == id) {
                        Some(photo) if photo.state != ItemState::Discarded => {
                            content.photos.push(CoveredPhoto {
                                capture_id: photo.id.clone(),
                                kind: photo.kind,
                                sha256: photo.original.sha256.clone(),
                            })
                        }
                        _ => problems.push(format!(
                            "photo {id} is covered by the hash but is no longer on this device"
                        )),
                    }
                }
                content
            }
            None => pod.pod_content(&captures),
        };
        let mut covered = vec![(pod, "the signature".to_string())];
        for p in &content.photos {
            if let Some(c) = captures.iter().find(|c| c.id == p.capture_id) {
                covered.push((c, format!("photo {}", c.id)));
            }
        }
        let originals_purged_at = covered.iter().filter_map(|(c, _)| c.purged_at).max();
        let files = covered
            .iter()
            .filter(|(c, _)| c.purged_at.is_none())
            .map(|(c, what)| (&c.original.name, &c.original.sha256, what));
        for (name, sha256, what) in files {
            match self.shared.blobs.check(name, sha256) {
                FileCheck::Intact => {}
                FileCheck::Changed => {
                    problems.push(format!("{what}'s file has changed since it was captured"))
                }
                FileCheck::Missing => problems.push(format!("{what}'s file is missing")),
                FileCheck::Unreadable => problems.push(format!("{what}'s file cannot be read")),
            }
        }
        let manifest = content.manifest();
        let recomputed = pod_hash::hash_manifest(&manifest);
        if let (Some(stored), Some(stored_manifest)) = (&pod.pod_sha256, &pod.pod_manifest) {
            if pod_hash::hash_manifest(stored_manifest) != *stored {
                problems.push("the stored manifest does not give the stored hash".into());
            }
            if recomputed != *stored {
                problems.push(
                    "the name, time, place or photos recorded no longer give the hash sent to UPN"
                        .into(),
                );
            }
        }
        Ok(PodVerification {
            barcode: barcode.to_string(),
            capture_id: pod.id.clone(),
            stored_sha256: pod.pod_sha256.clone(),
            recomputed_sha256: recomputed,
            photos_covered: u32::try_from(content.photos.len()).unwrap_or(u32::MAX),
            manifest,
            intact: problems.is_empty(),
            problems,
            originals_purged_at,
        })
    }

    /// A one-page receipt for a signed consignment: self-contained HTML (signature and photo
    /// thumbnails inline, no external resources), with name, time, place, sync state and the
    /// POD hash. Blocking: it makes thumbnails; call it off the UI thread.
    pub fn receipt_html(&self, barcode: &str) -> Result<String> {
        let detail = self.consignment(barcode)?;
        let verification = self.verify_pod(barcode)?;
        let Some(pod) = &detail.pod else {
            return Err(no_pod(barcode));
        };
        let signature = unless_purged(self.capture_image(&pod.id, None))?;
        let mut photos = Vec::with_capacity(detail.photos.len());
        for photo in &detail.photos {
            let image = unless_purged(self.capture_image(&photo.id, Some(RECEIPT_THUMBNAIL_SIDE)))?;
            photos.push((photo, image));
        }
        let distance = pod.fix.map(|f| {
            let c = &detail.consignment.address;
            distance_m(f.fix.point, geo_types::Point::new(c.lon, c.lat))
        });
        Ok(html::render(&html::Receipt {
            detail: &detail,
            pod,
            signature: signature.as_ref(),
            photos: &photos,
            verification: &verification,
            distance_m: distance,
            generated_at: self.shared.clock.now(),
        }))
    }
}

/// An image, or `None` when retention removed it (the receipt says so in its place).
fn unless_purged(image: Result<super::CaptureImage>) -> Result<Option<super::CaptureImage>> {
    match image {
        Ok(image) => Ok(Some(image)),
        Err(Error::OriginalsPurged { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn live_pod<'a>(barcode: &str, captures: &'a [Capture]) -> Result<&'a Capture> {
    Capture::live_pod(captures).ok_or_else(|| no_pod(barcode))
}

fn no_pod(barcode: &str) -> Error {
    Error::invalid(
        "barcode",
        format!("{barcode} has no signature on this device; capture the POD first"),
    )
}

/// An instant on a receipt.
fn shown(t: DateTime<Utc>) -> String {
    t.format("%-d %b %Y, %H:%M:%S UTC").to_string()
}

/// What the receipt says about the hash's standing.
fn content_note(v: &PodVerification) -> &'static str {
    match v.stored_sha256 {
        Some(_) => "fixed when the POD was first sent to UPN, and sent with it",
        None => "provisional: it is fixed (and sent to UPN) when the POD is first sent",
    }
}
