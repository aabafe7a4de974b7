//! [`SimConfig`]: what a simulator run is made of.

use std::fmt;

use crate::faults::FaultSpec;

/// Everything a simulator run is made of. Everything generated and every fault decision derive
/// from `seed`.
#[derive(Clone)]
pub struct SimConfig {
    /// Seed of the depot data and of the fault decisions.
    pub seed: u64,
    /// How many consignments are generated at start (1-6 pallets each).
    pub consignments: usize,
    /// The depot code UPN knows the depot by; paths for any other depot answer 403.
    pub depot: String,
    /// The only `X-UPN-Api-Key` accepted.
    pub api_key: String,
    /// Injected failures (see [`FaultSpec`]).
    pub faults: FaultSpec,
    /// Request bodies are read and response bodies written at no more than this many bytes per
    /// second (emulates a mobile uplink). `None` or `Some(0)`: full speed.
    pub throttle_bytes_per_s: Option<u64>,
    /// `false`: every UPN route answers 403 `integration_disabled`.
    pub integration_enabled: bool,
    /// `false`: the tracking feed answers 403 `tracking_action_disabled`.
    pub tracking_enabled: bool,
    /// `false`: image uploads answer 403 `image_action_disabled`.
    pub images_enabled: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            consignments: 12,
            depot: "042".to_string(),
            api_key: "sim-key-042".to_string(),
            faults: FaultSpec::none(),
            throttle_bytes_per_s: None,
            integration_enabled: true,
            tracking_enabled: true,
            images_enabled: true,
        }
    }
}

/// The API key is never shown, so configs can be logged.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("consignments", &self.consignments)
            .field("depot", &self.depot)
            .field("api_key", &"<redacted>")
            .field("faults", &self.faults.to_string())
            .field("throttle_bytes_per_s", &self.throttle_bytes_per_s)
            .field("integration_enabled", &self.integration_enabled)
            .field("tracking_enabled", &self.tracking_enabled)
            .field("images_enabled", &self.images_enabled)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let c = SimConfig::default();
        assert_eq!(c.seed, 1);
        assert_eq!(c.consignments, 12);
        assert_eq!(c.depot, "042");
        assert_eq!(c.api_key, "sim-key-042");
        assert!(c.faults.is_empty());
        assert_eq!(c.throttle_bytes_per_s, None);
        assert!(c.integration_enabled && c.tracking_enabled && c.images_enabled);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = SimConfig {
            api_key: "very-secret".into(),
            ..SimConfig::default()
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
