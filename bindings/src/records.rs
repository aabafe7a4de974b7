//! Plain records crossing the FFI, converted from core values.

use upn_core::domain::Stop;
use upn_core::sync::ImportReport;
use upn_core::ConsignmentDetail;

/// How to reach UPN as this depot.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CoreConfig {
    /// UPN base URL (the simulator's for development).
    pub endpoint: String,
    pub depot_code: String,
    /// Never logged or shown.
    pub api_key: String,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct ImportSummary {
    pub added: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub cancelled: u32,
}

impl From<ImportReport> for ImportSummary {
    fn from(r: ImportReport) -> Self {
        Self {
            added: r.counts.added,
            updated: r.counts.updated,
            unchanged: r.counts.unchanged,
            cancelled: r.counts.cancelled,
        }
    }
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct StopRecord {
    pub position: u32,
    pub barcode: String,
    pub consignee: String,
    pub address: String,
    pub postcode: String,
    pub lat: f64,
    pub lon: f64,
    pub pallet_count: u32,
    pub weight_kg: f64,
    /// UPN service code (`PREMIUM`, `AM`, `TIMED`, ...).
    pub service: String,
    /// "HH:MM-HH:MM" for AM and timed services.
    pub window: Option<String>,
    pub instructions: Option<String>,
    /// `imported`, `cancelled`, a stage in lower case, or an unknown stage code verbatim.
    pub status: String,
    /// `none`, `waiting_for_signature`, `captured`, `queued`, `sending`, `sent`, `needs_attention`.
    pub sync: String,
}

impl From<&Stop> for StopRecord {
    fn from(s: &Stop) -> Self {
        let c = &s.consignment;
        Self {
            position: s.position,
            barcode: c.barcode.clone(),
            consignee: c.consignee.name.clone(),
            address: c.address.one_line(),
            postcode: c.address.postcode.clone(),
            lat: c.address.lat,
            lon: c.address.lon,
            pallet_count: u32::try_from(c.pallets.len()).unwrap_or(u32::MAX),
            weight_kg: c.weight_kg,
            service: c.service.code().to_string(),
            window: c
                .window
                .map(|w| format!("{}-{}", w.from.format("%H:%M"), w.to.format("%H:%M"))),
            instructions: c.instructions.clone(),
            status: s.status.code(),
            sync: s.sync.code().to_string(),
        }
    }
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct PalletRecord {
    pub barcode: String,
    pub size: String,
    pub weight_kg: f64,
    pub status: String,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct ConsignmentRecord {
    pub barcode: String,
    pub status: String,
    pub shipper: String,
    pub consignee: String,
    pub consignee_phone: Option<String>,
    pub address: String,
    pub service: String,
    pub instructions: Option<String>,
    pub pallets: Vec<PalletRecord>,
    pub sync: String,
}

impl From<&ConsignmentDetail> for ConsignmentRecord {
    fn from(d: &ConsignmentDetail) -> Self {
        let c = &d.consignment;
        Self {
            barcode: c.barcode.clone(),
            status: d.status.code(),
            shipper: c.shipper.name.clone(),
            consignee: c.consignee.name.clone(),
            consignee_phone: c.consignee.phone.clone(),
            address: c.address.one_line(),
            service: c.service.code().to_string(),
            instructions: c.instructions.clone(),
            pallets: d
                .pallets
                .iter()
                .map(|(p, status)| PalletRecord {
                    barcode: p.barcode.clone(),
                    size: p.size.clone(),
                    weight_kg: p.weight_kg,
                    status: status.code(),
                })
                .collect(),
            sync: d.sync.code().to_string(),
        }
    }
}
