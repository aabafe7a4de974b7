//! How the app configures the core: where UPN is, as which depot, how often to sync, and the
//! size limits for photos. Everything but the first three fields has the core's default.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use upn_core::driver::{Intervals, Retention};
use upn_core::media::MediaLimits;
use upn_core::upn::UpnConfig;
use upn_core::DriverConfig;

use crate::CoreError;

/// The depot's UPN API key, opaque on purpose: Kotlin data classes and Swift structs print every
/// field, so a plain string in [`CoreConfig`] would end up in the first log line that prints the
/// config. This object prints as `ApiKey@...` and has no getter. Kotlin: `ApiKey("...")`.
#[derive(uniffi::Object)]
pub struct ApiKey(upn_core::upn::ApiKey);

#[uniffi::export]
impl ApiKey {
    #[uniffi::constructor]
    pub fn new(secret: String) -> Arc<Self> {
        Arc::new(Self(upn_core::upn::ApiKey::new(secret)))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How to reach UPN as this depot, and the core's tunables. Kotlin:
/// `CoreConfig(endpoint = ..., depotCode = ..., apiKey = ApiKey(...))`; the rest are optional
/// (null means the core's default).
#[derive(Clone, uniffi::Record)]
pub struct CoreConfig {
    /// UPN base URL (the simulator's during development).
    pub endpoint: String,
    /// The depot code UPN issued.
    pub depot_code: String,
    /// The depot's UPN API key. Never logged, shown, or put in an error.
    pub api_key: Arc<ApiKey>,
    /// Consignment import while online (default 5 minutes).
    #[uniffi(default = None)]
    pub import_interval_ms: Option<u64>,
    /// Tracking pull while online (default 10 minutes, UPN's cycle).
    #[uniffi(default = None)]
    pub tracking_interval_ms: Option<u64>,
    /// Tracking counts as stale after this long without a successful pull (default 15 minutes).
    #[uniffi(default = None)]
    pub tracking_stale_after_ms: Option<u64>,
    /// Largest photo or signature accepted, in bytes (default 30 MiB).
    #[uniffi(default = None)]
    pub max_photo_bytes: Option<u64>,
    /// Largest photo accepted, in pixels (default 64 000 000).
    #[uniffi(default = None)]
    pub max_photo_pixels: Option<u64>,
    /// Long side of the uploaded photo rendition, in pixels (default 1600).
    #[uniffi(default = None)]
    pub upload_long_side_px: Option<u32>,
    /// JPEG quality of the uploaded photo rendition, 1..=100 (default 80).
    #[uniffi(default = None)]
    pub upload_jpeg_quality: Option<u8>,
    /// A signature's or photo's image is removed from the device this long after UPN
    /// acknowledged it: 1 hour to 365 days, at most `retention_consignments_after_ms`
    /// (default 7 days).
    #[uniffi(default = None)]
    pub retention_originals_after_ms: Option<u64>,
    /// A consignment leaves the stop list and the device this long after its delivery date
    /// and last activity, once nothing of it is unsent: 1 to 365 days (default 14 days).
    #[uniffi(default = None)]
    pub retention_consignments_after_ms: Option<u64>,
}

impl std::fmt::Debug for CoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreConfig")
            .field("endpoint", &self.endpoint)
            .field("depot_code", &self.depot_code)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

fn interval(field: &str, ms: Option<u64>, default: Duration) -> Result<Duration, CoreError> {
    match ms {
        None => Ok(default),
        Some(0) => Err(CoreError::invalid(
            field,
            "must be at least 1 millisecond; leave it null for the default",
        )),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

fn positive<T: Copy + PartialEq + Default>(
    field: &str,
    value: Option<T>,
    default: T,
) -> Result<T, CoreError> {
    match value {
        None => Ok(default),
        Some(v) if v == T::default() => Err(CoreError::invalid(
            field,
            "must be positive; leave it null for the default",
        )),
        Some(v) => Ok(v),
    }
}

impl CoreConfig {
    /// UPN as this depot with every tunable at the core's default (what Kotlin's and Swift's
    /// default arguments give an app).
    pub fn new(endpoint: String, depot_code: String, api_key: Arc<ApiKey>) -> Self {
        Self {
            endpoint,
            depot_code,
            api_key,
            import_interval_ms: None,
            tracking_interval_ms: None,
            tracking_stale_after_ms: None,
            max_photo_bytes: None,
            max_photo_pixels: None,
            upload_long_side_px: None,
            upload_jpeg_quality: None,
            retention_originals_after_ms: None,
            retention_consignments_after_ms: None,
        }
    }

    /// The core's configuration for `data_dir`. Range checks only; the core checks the rest.
    pub(crate) fn into_driver_config(self, data_dir: String) -> Result<DriverConfig, CoreError> {
        if data_dir.trim().is_empty() {
            return Err(CoreError::invalid(
                "data_dir",
                "is empty; pass the app's private data folder",
            ));
        }
        let d = Intervals::default();
        let intervals = Intervals {
            import: interval(
                "config.import_interval_ms",
                self.import_interval_ms,
                d.import,
            )?,
            tracking: interval(
                "config.tracking_interval_ms",
                self.tracking_interval_ms,
                d.tracking,
            )?,
            tracking_stale_after: interval(
                "config.tracking_stale_after_ms",
                self.tracking_stale_after_ms,
                d.tracking_stale_after,
            )?,
            ..d
        };
        let m = MediaLimits::default();
        let max_input_bytes = positive(
            "config.max_photo_bytes",
            self.max_photo_bytes,
            m.max_input_bytes as u64,
        )?;
        let jpeg_quality = positive(
            "config.upload_jpeg_quality",
            self.upload_jpeg_quality,
            m.jpeg_quality,
        )?;
        if jpeg_quality > 100 {
            return Err(CoreError::invalid(
                "config.upload_jpeg_quality",
                "must be between 1 and 100",
            ));
        }
        let media = MediaLimits {
            max_input_bytes: usize::try_from(max_input_bytes).unwrap_or(usize::MAX),
            max_pixels: positive(
                "config.max_photo_pixels",
                self.max_photo_pixels,
                m.max_pixels,
            )?,
            max_dimension: m.max_dimension,
            max_long_side: positive(
                "config.upload_long_side_px",
                self.upload_long_side_px,
                m.max_long_side,
            )?,
            jpeg_quality,
        };
        let upn = UpnConfig {
            endpoint: self.endpoint,
            depot: self.depot_code,
            api_key: self.api_key.0.clone(),
        };
        let r = Retention::default();
        let retention = Retention {
            originals_after: interval(
                "config.retention_originals_after_ms",
                self.retention_originals_after_ms,
                r.originals_after,
            )?,
            consignments_after: interval(
                "config.retention_consignments_after_ms",
                self.retention_consignments_after_ms,
                r.consignments_after,
            )?,
        };
        // The core's ranges, reported under the names the app used.
        retention.validate().map_err(|e| match e {
            upn_core::Error::InvalidInput { field, reason } => {
                CoreError::invalid(&format!("config.{}_ms", field.replace('.', "_")), reason)
            }
            other => other.into(),
        })?;
        let mut config = DriverConfig::new(PathBuf::from(data_dir), upn);
        config.intervals = intervals;
        config.media = media;
        config.retention = retention;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CoreConfig {
        CoreConfig::new(
            "http://127.0.0.1:1".into(),
            "042".into(),
            ApiKey::new("secret-key-123".into()),
        )
    }

    #[test]
    fn retention_outside_its_range_is_refused_naming_the_field() {
        let mut c = config();
        c.retention_originals_after_ms = Some(60_000);
        match c.into_driver_config("/data".into()) {
            Err(CoreError::InvalidInput { field, .. }) => {
                assert_eq!(field, "config.retention_originals_after_ms")
            }
            other => panic!("{other:?}"),
        }
        let mut c = config();
        c.retention_consignments_after_ms = Some(400 * 24 * 3_600_000);
        match c.into_driver_config("/data".into()) {
            Err(CoreError::InvalidInput { field, .. }) => {
                assert_eq!(field, "config.retention_consignments_after_ms")
            }
            other => panic!("{other:?}"),
        }
        let mut c = config();
        c.retention_originals_after_ms = Some(3 * 24 * 3_600_000);
        c.retention_consignments_after_ms = Some(2 * 24 * 3_600_000);
        assert!(c.into_driver_config("/data".into()).is_err());
        let mut c = config();
        c.retention_originals_after_ms = Some(2 * 3_600_000);
        let d = c.into_driver_config("/data".into()).expect("in range");
        assert_eq!(d.retention.originals_after, Duration::from_secs(7200));
    }

    #[test]
    fn debug_never_shows_the_api_key() {
        let text = format!("{:?}", config());
        assert!(!text.contains("secret-key-123"), "{text}");
        assert!(text.contains("042"));
    }

    #[test]
    fn nulls_are_the_core_defaults_and_values_apply() {
        let d = config().into_driver_config("/tmp/x".into()).unwrap();
        assert_eq!(d.intervals, Intervals::default());
        assert_eq!(d.media, MediaLimits::default());
        let mut c = config();
        c.import_interval_ms = Some(1_000);
        c.max_photo_bytes = Some(1_000_000);
        c.upload_long_side_px = Some(1024);
        c.upload_jpeg_quality = Some(70);
        let d = c.into_driver_config("/tmp/x".into()).unwrap();
        assert_eq!(d.intervals.import, Duration::from_secs(1));
        assert_eq!(d.media.max_input_bytes, 1_000_000);
        assert_eq!(d.media.max_long_side, 1024);
        assert_eq!(d.media.jpeg_quality, 70);
    }

    #[test]
    fn out_of_range_values_are_refused_by_field() {
        let field = |c: CoreConfig| match c.into_driver_config("/tmp/x".into()) {
            Err(CoreError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut c = config();
        c.tracking_interval_ms = Some(0);
        assert_eq!(field(c), "config.tracking_interval_ms");
        let mut c = config();
        c.upload_jpeg_quality = Some(101);
        assert_eq!(field(c), "config.upload_jpeg_quality");
        let mut c = config();
        c.max_photo_pixels = Some(0);
        assert_eq!(field(c), "config.max_photo_pixels");
        assert_eq!(field_of_dir(), "data_dir");
    }

    /// Bad configuration is `InvalidInput` naming the field, from `DriverCore::open` itself,
    /// before any file is created or anything sent.
    #[test]
    fn open_refuses_bad_configuration_as_invalid_input() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let dir = tmp.path().join("data");
        let with = |f: fn(&mut CoreConfig)| {
            let mut c = config();
            f(&mut c);
            c
        };
        let cases: Vec<(CoreConfig, &std::path::Path, &str)> = vec![
            (with(|c| c.depot_code = "../../x".into()), &dir, "depot"),
            (with(|c| c.depot_code = "042?x=1".into()), &dir, "depot"),
            (
                with(|c| c.endpoint = "ftp://127.0.0.1".into()),
                &dir,
                "endpoint",
            ),
            (
                with(|c| c.endpoint = "http://upn.example".into()),
                &dir,
                "endpoint",
            ),
            (
                with(|c| c.api_key = ApiKey::new("key\n".into())),
                &dir,
                "api key",
            ),
            (
                with(|c| c.api_key = ApiKey::new("a key".into())),
                &dir,
                "api key",
            ),
            (config(), &file, "data_dir"),
        ];
        for (c, data_dir, expected) in cases {
            match crate::DriverCore::open(data_dir.to_string_lossy().into(), c) {
                Err(CoreError::InvalidInput { field, reason }) => {
                    assert_eq!(field, expected, "{reason}");
                    assert!(!reason.contains("secret-key-123"), "{reason}");
                }
                Err(other) => panic!("{expected}: {other:?}"),
                Ok(_) => panic!("{expected}: opened"),
            }
            assert!(
                !dir.exists(),
                "{expected}: a refused open created the folder"
            );
        }
    }

    fn field_of_dir() -> String {
        match config().into_driver_config("  ".into()) {
            Err(CoreError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }
}
