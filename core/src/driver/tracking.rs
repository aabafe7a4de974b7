//! Tracking sync as the driver sees it. (Filled by the tracking issue.)

use super::Shared;

/// Processes responses stored by a previous run before anything else happens.
pub(crate) fn resume(_shared: &Shared) -> crate::Result<()> {
    Ok(())
}

/// The scheduled pull (single-flight).
pub(crate) async fn scheduled_pull(_shared: &Shared) -> crate::Result<()> {
    Ok(())
}
