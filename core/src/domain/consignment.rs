//! A UPN consignment as the driver's device knows it.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// A UPN shipment: one or more pallets under one consignment barcode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consignment {
    pub barcode: String,
    pub shipper: Party,
    pub consignee: Party,
    pub address: Address,
    pub pallets: Vec<Pallet>,
    pub weight_kg: f64,
    pub service: ServiceLevel,
    pub window: Option<Window>,
    pub delivery_date: NaiveDate,
    pub instructions: Option<String>,
    /// The latest tracking stage applied to the whole consignment, if any.
    pub stage: Option<Stage>,
    pub cancelled: Option<Cancellation>,
    /// UPN's last change to the record.
    pub upn_updated_at: DateTime<Utc>,
}

impl Consignment {
    pub fn status(&self) -> Status {
        Status::of(self.stage.as_ref(), self.cancelled.is_some())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub lines: Vec<String>,
    pub town: String,
    pub postcode: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
}

impl Address {
    /// "12 Mill Lane, Tyseley, Birmingham B11 2QR": how a driver reads an address.
    pub fn one_line(&self) -> String {
        let mut parts: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        parts.push(&self.town);
        let mut text = parts
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        if !self.postcode.is_empty() {
            text.push(' ');
            text.push_str(&self.postcode);
        }
        text
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pallet {
    pub barcode: String,
    pub size: String,
    pub weight_kg: f64,
    /// The latest tracking stage that applies to this pallet (its own or its consignment's).
    pub stage: Option<Stage>,
}

impl Pallet {
    pub fn status(&self, consignment_cancelled: bool) -> Status {
        Status::of(self.stage.as_ref(), consignment_cancelled)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cancellation {
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// A booked delivery window (UK local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: NaiveTime,
    pub to: NaiveTime,
}

impl Window {
    /// "10:00-11:00": how the app and the CLI show a window.
    pub fn label(&self) -> String {
        format!("{}-{}", self.from.format("%H:%M"), self.to.format("%H:%M"))
    }
}

/// UPN service levels. Codes UPN adds later are kept verbatim in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceLevel {
    Am,
    Timed,
    Premium,
    Saturday,
    Economy,
    Other(String),
}

impl ServiceLevel {
    pub fn from_code(code: &str) -> Self {
        match code {
            "AM" => Self::Am,
            "TIMED" => Self::Timed,
            "PREMIUM" => Self::Premium,
            "SATURDAY" => Self::Saturday,
            "ECONOMY" => Self::Economy,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::Am => "AM",
            Self::Timed => "TIMED",
            Self::Premium => "PREMIUM",
            Self::Saturday => "SATURDAY",
            Self::Economy => "ECONOMY",
            Self::Other(code) => code,
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Self::Am => "AM",
            Self::Timed => "Timed",
            Self::Premium => "Premium",
            Self::Saturday => "Saturday",
            Self::Economy => "Economy",
            Self::Other(code) => code,
        }
    }

    /// Lower is more urgent: the order a driver works through untimed stops.
    pub fn urgency(&self) -> u8 {
        match self {
            Self::Am => 0,
            Self::Timed => 1,
            Self::Premium => 2,
            Self::Saturday => 3,
            Self::Economy => 4,
            Self::Other(_) => 5,
        }
    }
}

/// A tracking stage. Unknown codes are kept verbatim, never dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    Booked,
    OutForDelivery,
    Arrived,
    Unloaded,
    Delivered,
    Carded,
    ComplaintRaised,
    Other(String),
}

impl Stage {
    pub fn from_code(code: &str) -> Self {
        match code {
            "BOOKED" => Self::Booked,
            "OUT_FOR_DELIVERY" => Self::OutForDelivery,
            "ARRIVED" => Self::Arrived,
            "UNLOADED" => Self::Unloaded,
            "DELIVERED" => Self::Delivered,
            "CARDED" => Self::Carded,
            "COMPLAINT_RAISED" => Self::ComplaintRaised,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::Booked => "BOOKED",
            Self::OutForDelivery => "OUT_FOR_DELIVERY",
            Self::Arrived => "ARRIVED",
            Self::Unloaded => "UNLOADED",
            Self::Delivered => "DELIVERED",
            Self::Carded => "CARDED",
            Self::ComplaintRaised => "COMPLAINT_RAISED",
            Self::Other(code) => code,
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Self::Booked => "Booked",
            Self::OutForDelivery => "Out for delivery",
            Self::Arrived => "Arrived",
            Self::Unloaded => "Unloaded",
            Self::Delivered => "Delivered",
            Self::Carded => "Carded",
            Self::ComplaintRaised => "Complaint raised",
            Self::Other(code) => code,
        }
    }
}

/// What the stop list shows as a consignment's or pallet's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Imported, no tracking event yet.
    Imported,
    AtStage(Stage),
    Cancelled,
}

impl Status {
    fn of(stage: Option<&Stage>, cancelled: bool) -> Self {
        match (cancelled, stage) {
            (true, _) => Status::Cancelled,
            (false, Some(stage)) => Status::AtStage(stage.clone()),
            (false, None) => Status::Imported,
        }
    }

    /// Stable machine code: `imported`, `cancelled`, or the stage code in lower case
    /// (`out_for_delivery`); unknown stage codes verbatim.
    pub fn code(&self) -> String {
        match self {
            Status::Imported => "imported".into(),
            Status::Cancelled => "cancelled".into(),
            Status::AtStage(Stage::Other(code)) => code.clone(),
            Status::AtStage(stage) => stage.code().to_ascii_lowercase(),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Status::Imported => "Imported".into(),
            Status::Cancelled => "Cancelled".into(),
            Status::AtStage(stage) => stage.label().into(),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Status::AtStage(Stage::Delivered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_survive() {
        for code in [
            "BOOKED",
            "OUT_FOR_DELIVERY",
            "ARRIVED",
            "UNLOADED",
            "DELIVERED",
            "CARDED",
            "COMPLAINT_RAISED",
            "HELD_AT_HUB",
        ] {
            assert_eq!(Stage::from_code(code).code(), code);
        }
        for code in [
            "AM",
            "TIMED",
            "PREMIUM",
            "SATURDAY",
            "ECONOMY",
            "PALLET_PLUS",
        ] {
            assert_eq!(ServiceLevel::from_code(code).code(), code);
        }
        assert_eq!(
            Status::AtStage(Stage::from_code("HELD_AT_HUB")).code(),
            "HELD_AT_HUB"
        );
        assert_eq!(
            Status::AtStage(Stage::OutForDelivery).code(),
            "out_for_delivery"
        );
    }

    #[test]
    fn address_reads_on_one_line() {
        let a = Address {
            lines: vec!["Unit 4".into(), "Tyseley Industrial Estate".into()],
            town: "Birmingham".into(),
            postcode: "B11 2QR".into(),
            country: "GB".into(),
            lat: 52.46,
            lon: -1.83,
        };
        assert_eq!(
            a.one_line(),
            "Unit 4, Tyseley Industrial Estate, Birmingham B11 2QR"
        );
    }
}
