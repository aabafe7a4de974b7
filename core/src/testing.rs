//! Not API. The tests, benches, the simulation harness and the kill tests check the core's
//! promises from outside (rows in the database, files in the data folder, failpoint and fault
//! names, a tracking pull over a seam), so they reach the crate-private `store` and `sync` here,
//! under the same paths: `upn_core::testing::store::Store`, `upn_core::testing::sync::tracking`.
//! The product (CLI, FFI) uses only the façade at the crate root; new product needs get a
//! `Driver` method or a re-export there, never a path through this module.

/// The on-device store, as `crate::store`.
pub mod store {
    pub use crate::store::*;
}

/// The services, as `crate::sync`.
pub mod sync {
    pub use crate::sync::*;
}
