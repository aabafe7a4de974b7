//! Services that move data between UPN and the store. Each one: read what it needs from the
//! store, talk to UPN through [`crate::upn::UpnApi`], commit the result in one transaction.

pub mod import;
pub mod outbox;
pub mod render;
pub mod tracking;

pub use import::{import_consignments, ImportReport};
