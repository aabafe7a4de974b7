//! The domain: consignments, stages and the stop list, as plain data and pure decisions.
//! Nothing here touches the disk, the network or the clock.

pub mod capture;
pub mod consignment;
pub mod data_saver;
pub mod diagnostics;
pub mod invoice;
pub mod outbox;
pub mod pod_hash;
pub mod reason;
pub mod stop_list;
pub mod tracking;

pub use consignment::{
    Address, Cancellation, Consignment, Pallet, Party, ServiceLevel, Stage, Status, Window,
};
pub use stop_list::{
    order_stops, DeviceFacts, Stop, StopChange, StopChangeKind, StopPhase, SyncBadge,
};

/// The years any instant the core accepts (from UPN or the app) and stores may fall in. A value
/// outside is a broken or hostile clock; kept, it would not read back or would sort wrongly.
/// The wire checks, the store's reads and the tracking event checks all use this one range.
pub const INSTANT_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Whether `year` is in [`INSTANT_YEARS`].
pub fn year_in_range(year: i32) -> bool {
    INSTANT_YEARS.contains(&year)
}
