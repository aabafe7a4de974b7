//! Depot support through the FFI: the troubleshooting checks, the support bundle, the POD
//! receipt and the verification of its tamper-evident hash. Records mirror
//! `domain::diagnostics` and `driver::PodVerification`; instants are epoch ms.

use upn_core::domain::diagnostics::{Check, CheckId, CheckStatus, Diagnosis};
use upn_core::driver::PodVerification;

use crate::{blocking, CoreError, DriverCore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CheckStatusRecord {
    Ok,
    Warning,
    Problem,
}

/// One row of the troubleshooting table (and the checks beyond it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CheckKind {
    ConsignmentsImport,
    Tracking,
    Pod,
    Images,
    Invoice,
    Geofence,
    GpsFix,
    DeviceClock,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EvidenceRecord {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CheckRecord {
    pub kind: CheckKind,
    /// The question the check answers, for a heading.
    pub title: String,
    pub status: CheckStatusRecord,
    pub summary: String,
    pub evidence: Vec<EvidenceRecord>,
    /// What to do, when something needs doing.
    pub action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DiagnosisRecord {
    pub generated_at_ms: i64,
    pub barcode: Option<String>,
    /// The worst status of any check.
    pub worst: CheckStatusRecord,
    pub checks: Vec<CheckRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PodVerificationRecord {
    pub barcode: String,
    pub capture_id: String,
    /// Fixed when the POD was first sent (and sent to UPN); null before.
    pub stored_sha256: Option<String>,
    pub recomputed_sha256: String,
    pub manifest: String,
    pub photos_covered: u32,
    pub intact: bool,
    pub problems: Vec<String>,
    /// When retention removed the covered originals (after UPN acknowledged them): checked
    /// against the stored records only, not tampering.
    pub originals_purged_at_ms: Option<i64>,
}

fn status(s: CheckStatus) -> CheckStatusRecord {
    match s {
        CheckStatus::Ok => CheckStatusRecord::Ok,
        CheckStatus::Warning => CheckStatusRecord::Warning,
        CheckStatus::Problem => CheckStatusRecord::Problem,
    }
}

fn kind(id: CheckId) -> CheckKind {
    match id {
        CheckId::ConsignmentsImport => CheckKind::ConsignmentsImport,
        CheckId::Tracking => CheckKind::Tracking,
        CheckId::Pod => CheckKind::Pod,
        CheckId::Images => CheckKind::Images,
        CheckId::Invoice => CheckKind::Invoice,
        CheckId::Geofence => CheckKind::Geofence,
        CheckId::GpsFix => CheckKind::GpsFix,
        CheckId::DeviceClock => CheckKind::DeviceClock,
    }
}

impl From<&Check> for CheckRecord {
    fn from(c: &Check) -> Self {
        Self {
            kind: kind(c.id),
            title: c.id.title().to_string(),
            status: status(c.status),
            summary: c.summary.clone(),
            evidence: c
                .evidence
                .iter()
                .map(|e| EvidenceRecord {
                    label: e.label.clone(),
                    value: e.value.clone(),
                })
                .collect(),
            action: c.action.clone(),
        }
    }
}

impl From<&Diagnosis> for DiagnosisRecord {
    fn from(d: &Diagnosis) -> Self {
        Self {
            generated_at_ms: d.generated_at.timestamp_millis(),
            barcode: d.barcode.clone(),
            worst: status(d.worst()),
            checks: d.checks.iter().map(Into::into).collect(),
        }
    }
}

impl From<PodVerification> for PodVerificationRecord {
    fn from(v: PodVerification) -> Self {
        Self {
            barcode: v.barcode,
            capture_id: v.capture_id,
            stored_sha256: v.stored_sha256,
            recomputed_sha256: v.recomputed_sha256,
            manifest: v.manifest,
            photos_covered: v.photos_covered,
            intact: v.intact,
            problems: v.problems,
            originals_purged_at_ms: v.originals_purged_at.map(|t| t.timestamp_millis()),
        }
    }
}

#[uniffi::export]
impl DriverCore {
    /// The troubleshooting checks for one consignment (`barcode`) or the whole device (null).
    /// `invoice_csv` (a purchase invoice's charge lines) adds the invoice check's findings.
    pub async fn diagnose(
        &self,
        barcode: Option<String>,
        invoice_csv: Option<Vec<u8>>,
    ) -> Result<DiagnosisRecord, CoreError> {
        blocking(self.driver()?, "diagnose", move |driver| {
            let invoice = invoice_csv
                .map(|csv| driver.match_invoice(&csv))
                .transpose()?;
            Ok((&driver.diagnose(barcode.as_deref(), invoice)?).into())
        })
        .await
    }

    /// The support bundle as zip bytes, for `barcodes` (every consignment with an open problem
    /// when empty). Holds no API key, no signature or photo images and no GPS fix.
    pub async fn support_bundle(
        &self,
        barcodes: Vec<String>,
        app_version: Option<String>,
    ) -> Result<Vec<u8>, CoreError> {
        blocking(self.driver()?, "support_bundle", move |driver| {
            Ok(driver.support_bundle(&barcodes, app_version.as_deref())?)
        })
        .await
    }

    /// A one-page POD receipt as self-contained HTML (show it in a WebView, share or print it).
    pub async fn receipt_html(&self, barcode: String) -> Result<String, CoreError> {
        blocking(self.driver()?, "receipt_html", move |driver| {
            Ok(driver.receipt_html(&barcode)?)
        })
        .await
    }

    /// Recomputes a POD's tamper-evident hash from the stored files and rows.
    pub async fn verify_pod(&self, barcode: String) -> Result<PodVerificationRecord, CoreError> {
        blocking(self.driver()?, "verify_pod", move |driver| {
            Ok(driver.verify_pod(&barcode)?.into())
        })
        .await
    }
}
