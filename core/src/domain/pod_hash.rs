//! The tamper-evident POD hash: one sha256 over what a POD attests (the signature, the photos,
//! the printed name, the time and the place), in a documented canonical order.
//!
//! The hash is taken over a *manifest*, a short UTF-8 text whose lines are, in this order:
//!
//! ```text
//! upn-pod-hash-v1
//! barcode:<consignment barcode>
//! signed_by:<printed name, as sent>
//! signed_at:<capture instant, RFC 3339 UTC, milliseconds: 2026-12-01T10:15:00.000Z>
//! place:<lat>,<lon>,<accuracy_m>      (6, 6 and 1 decimals)   or   place:none
//! signature:<sha256 hex of the signature file as captured>
//! photo:<capture id>:<kind>:<sha256 hex of the photo file as captured>   (one per photo, capture order)
//! ```
//!
//! each line ended by `\n`. The POD hash is the lowercase hex sha256 of those bytes. Files are
//! named by their own sha256, so the hash covers their exact bytes without reading them twice.
//! The photos covered are the live ones when the POD is first sent (the same set its
//! `image_count` counts); the manifest is stored with the POD so `verify` knows them.
//! Pure: no I/O.

use chrono::{DateTime, SecondsFormat, Utc};

use super::capture::GpsFix;
use super::outbox::CaptureKind;

/// The first line: a later change to the format gets a new one.
pub const MANIFEST_VERSION: &str = "upn-pod-hash-v1";

/// One photo covered by the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoveredPhoto {
    pub capture_id: String,
    pub kind: CaptureKind,
    pub sha256: String,
}

/// What a POD attests.
#[derive(Debug, Clone, PartialEq)]
pub struct PodContent {
    pub barcode: String,
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
    pub place: Option<GpsFix>,
    pub signature_sha256: String,
    /// In capture order.
    pub photos: Vec<CoveredPhoto>,
}

impl PodContent {
    /// The canonical manifest (see the module documentation).
    pub fn manifest(&self) -> String {
        let mut m = String::new();
        let mut line = |text: &str| {
            m.push_str(text);
            m.push('\n');
        };
        line(MANIFEST_VERSION);
        line(&format!("barcode:{}", self.barcode));
        // A name never holds a line break (capture validation refuses control characters).
        line(&format!("signed_by:{}", self.signed_by));
        line(&format!(
            "signed_at:{}",
            self.signed_at.to_rfc3339_opts(SecondsFormat::Millis, true)
        ));
        match &self.place {
            Some(fix) => line(&format!(
                "place:{:.6},{:.6},{:.1}",
                fix.lat(),
                fix.lon(),
                fix.accuracy_m
            )),
            None => line("place:none"),
        }
        line(&format!("signature:{}", self.signature_sha256));
        for p in &self.photos {
            line(&format!(
                "photo:{}:{}:{}",
                p.capture_id,
                p.kind.code(),
                p.sha256
            ));
        }
        m
    }

    /// The POD hash: lowercase hex sha256 of the manifest.
    pub fn hash(&self) -> String {
        hash_manifest(&self.manifest())
    }
}

pub fn hash_manifest(manifest: &str) -> String {
    crate::digest::sha256_hex(manifest.as_bytes())
}

/// The photo capture ids a stored manifest covers, in order.
pub fn covered_photo_ids(manifest: &str) -> Vec<&str> {
    manifest
        .lines()
        .filter_map(|l| l.strip_prefix("photo:"))
        .filter_map(|rest| rest.split(':').next())
        .collect()
}

/// Whether `text` looks like a POD hash (64 lowercase hex digits), as the contract requires.
pub fn is_pod_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn content() -> PodContent {
        PodContent {
            barcode: "UPN0001".into(),
            signed_by: "J. Smith".into(),
            signed_at: Utc.with_ymd_and_hms(2026, 12, 1, 10, 15, 0).unwrap(),
            place: Some(GpsFix::new(
                52.4862,
                -1.8904,
                8.0,
                Utc.with_ymd_and_hms(2026, 12, 1, 10, 14, 0).unwrap(),
            )),
            signature_sha256: "a".repeat(64),
            photos: vec![CoveredPhoto {
                capture_id: "c1".into(),
                kind: CaptureKind::Goods,
                sha256: "b".repeat(64),
            }],
        }
    }

    #[test]
    fn the_manifest_is_the_documented_canonical_text() {
        let expected = format!(
            "upn-pod-hash-v1\nbarcode:UPN0001\nsigned_by:J. Smith\nsigned_at:2026-12-01T10:15:00.000Z\nplace:52.486200,-1.890400,8.0\nsignature:{}\nphoto:c1:goods:{}\n",
            "a".repeat(64),
            "b".repeat(64)
        );
        assert_eq!(content().manifest(), expected);
        assert_eq!(
            content().hash(),
            crate::digest::sha256_hex(expected.as_bytes())
        );
        assert!(is_pod_hash(&content().hash()));
        assert_eq!(covered_photo_ids(&expected), ["c1"]);
    }

    #[test]
    fn every_attested_part_changes_the_hash() {
        let base = content().hash();
        let mut changed = Vec::new();
        let mut c = content();
        c.signed_by = "J. Smyth".into();
        changed.push(c);
        let mut c = content();
        c.signed_at += chrono::Duration::milliseconds(1);
        changed.push(c);
        let mut c = content();
        c.place = None;
        changed.push(c);
        let mut c = content();
        c.signature_sha256 = "c".repeat(64);
        changed.push(c);
        let mut c = content();
        c.photos[0].sha256 = "d".repeat(64);
        changed.push(c);
        let mut c = content();
        c.photos.clear();
        changed.push(c);
        for c in changed {
            assert_ne!(c.hash(), base, "{c:?}");
        }
    }

    #[test]
    fn only_64_lowercase_hex_digits_are_a_pod_hash() {
        assert!(!is_pod_hash(&"A".repeat(64)));
        assert!(!is_pod_hash(&"a".repeat(63)));
        assert!(!is_pod_hash(&"g".repeat(64)));
    }
}
