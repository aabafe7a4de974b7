//! The domain: consignments, stages and the stop list, as plain data and pure decisions.
//! Nothing here touches the disk, the network or the clock.

pub mod capture;
pub mod consignment;
pub mod invoice;
pub mod outbox;
pub mod stop_list;
pub mod tracking;

pub use consignment::{
    Address, Cancellation, Consignment, Pallet, Party, ServiceLevel, Stage, Status, Window,
};
pub use stop_list::{order_stops, Stop, SyncBadge};
