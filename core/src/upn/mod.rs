//! The UPN API: wire types ([`wire`]), the [`UpnApi`] trait every service talks to, its typed
//! refusals ([`UpnError`]) and the reqwest implementation ([`http::HttpUpn`]).

pub mod http;
pub mod wire;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use wire::{ConsignmentFeed, ImageQuery, ImageReceipt, PodReceipt, PodSubmission};

/// The depot's UPN API key. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
    /// The secret itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Where and as whom to talk to UPN.
#[derive(Debug, Clone)]
pub struct UpnConfig {
    /// Base URL, e.g. `https://api.upn.example` or `http://127.0.0.1:8080` for the simulator.
    pub endpoint: String,
    /// Depot code as UPN knows it.
    pub depot: String,
    pub api_key: ApiKey,
}

impl UpnConfig {
    /// Checks the whole configuration as bad input before anything is opened or sent, and
    /// returns the endpoint as a URL. The key goes only to this origin, so: `https://`, or
    /// `http://` to this device's loopback (the simulator); no credentials, query or fragment
    /// in the URL; a depot code that is a single path segment; a key that is a valid header.
    pub fn validate(&self) -> Result<reqwest::Url> {
        if let Some(problem) = wire::depot_problem(&self.depot) {
            return Err(Error::invalid("depot", problem));
        }
        let key = self.api_key.expose();
        if key.is_empty() {
            return Err(Error::invalid(
                "api key",
                "is empty; set the depot's UPN API key",
            ));
        }
        // Visible ASCII only: whitespace or a control character (a newline pasted with it) can
        // never be a valid header value, so it would fail every request as "unreachable".
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "api key",
                "contains whitespace, control or non-ASCII characters; paste the key exactly as UPN issued it",
            ));
        }
        endpoint_url(&self.endpoint)
    }
}

/// The endpoint as a base URL, refused as bad input unless the API key is safe to send there.
fn endpoint_url(endpoint: &str) -> Result<reqwest::Url> {
    let bad = |reason: &str| Error::invalid("endpoint", reason.to_string());
    let url = reqwest::Url::parse(endpoint.trim()).map_err(|e| match e {
        // The build carries no IDNA tables (Cargo.toml: idna_adapter 1.0), so the parser
        // refuses a Unicode host name; say what to give instead.
        url::ParseError::IdnaError => bad(
            "has a non-ASCII host name; give it in its ASCII form (xn--...), as UPN publishes it",
        ),
        _ => bad("is not a URL; give e.g. https://api.upn.example"),
    })?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(bad("has no host; give e.g. https://api.upn.example"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials; the API key comes from the configuration",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(bad(
            "uses http:// to a host that is not this device; UPN needs https:// (http:// is only for a simulator on 127.0.0.1, ::1 or localhost)",
        )),
        _ => Err(bad(
            "must start with https:// (or http:// for a simulator on this device)",
        )),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    // The URL parser has already normalised IPv4 forms (`127.1`) and bracketed IPv6.
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A tracking-feed response exactly as it came off the wire: stored before it is parsed.
#[derive(Debug, Clone)]
pub struct RawTrackingResponse {
    pub body: Vec<u8>,
    pub server_time: Option<DateTime<Utc>>,
}

/// Upload progress: called with (bytes sent, bytes total) as the body leaves.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// A progress callback that ignores progress.
pub fn no_progress() -> Progress {
    Arc::new(|_, _| {})
}

/// Everything that can go wrong talking to UPN, classified once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpnError {
    #[error("UPN refused the API key (401): check the depot's UPN credentials")]
    Unauthorized,
    #[error("the UPN integration is not enabled for this depot (403): ask UPN and the admin team to enable it")]
    IntegrationDisabled,
    #[error("UPN has not enabled the tracking action for this depot (403): ask UPN IT to enable the tracking action for the depot")]
    TrackingActionDisabled,
    #[error("UPN has not enabled the image action for this depot (403): ask UPN IT to enable the image action for the depot")]
    ImageActionDisabled,
    #[error("UPN refused the request (403): {message}")]
    Forbidden { message: String },
    #[error("UPN does not know consignment {barcode} (404)")]
    UnknownBarcode { barcode: String },
    #[error("UPN already holds a POD for this consignment from another capture (409)")]
    AlreadyDelivered,
    #[error("UPN refused an image because the consignment has no POD yet (409)")]
    PodRequired,
    #[error("UPN refused the request as too large (413)")]
    TooLarge,
    /// A 3xx: never followed, so the API key and the body never go to another origin.
    #[error("UPN answered with a redirect ({status}); it was not followed, so the API key stayed with the configured endpoint: check the endpoint URL")]
    Redirected { status: u16 },
    #[error("UPN rejected the request as invalid ({status}): {message}")]
    Invalid { status: u16, message: String },
    #[error("UPN asked to slow down (429){}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("UPN failed ({status}): {message}")]
    Server {
        status: u16,
        message: String,
        /// UPN's `Retry-After` on a 503, honoured like a 429's.
        retry_after: Option<Duration>,
    },
    #[error("UPN is unreachable: {reason}")]
    Unreachable { reason: String },
    #[error("UPN did not answer in time")]
    Timeout,
    #[error("UPN sent a response that could not be read: {reason}")]
    BadResponse { reason: String },
}

impl UpnError {
    /// Worth retrying later without anyone acting: the network, UPN's load or a garbled answer.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            UpnError::RateLimited { .. }
                | UpnError::Server { .. }
                | UpnError::Unreachable { .. }
                | UpnError::Timeout
                | UpnError::BadResponse { .. }
        )
    }

    /// How long UPN asked us to wait before the next attempt, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpnError::RateLimited { retry_after } | UpnError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A stable code for the refusal, for apps and stored diagnostics to decide on (the text
    /// is for people and may change).
    pub fn code(&self) -> &'static str {
        match self {
            UpnError::Unauthorized => "unauthorized",
            UpnError::IntegrationDisabled => "integration_disabled",
            UpnError::TrackingActionDisabled => "tracking_action_disabled",
            UpnError::ImageActionDisabled => "image_action_disabled",
            UpnError::Forbidden { .. } => "forbidden",
            UpnError::UnknownBarcode { .. } => "unknown_barcode",
            UpnError::AlreadyDelivered => "already_delivered",
            UpnError::PodRequired => "pod_required",
            UpnError::TooLarge => "too_large",
            UpnError::Redirected { .. } => "redirected",
            UpnError::Invalid { .. } => "invalid",
            UpnError::RateLimited { .. } => "rate_limited",
            UpnError::Server { .. } => "server",
            UpnError::Unreachable { .. } => "unreachable",
            UpnError::Timeout => "timeout",
            UpnError::BadResponse { .. } => "bad_response",
        }
    }

    /// True when the device simply could not reach UPN (as opposed to UPN answering "no").
    pub fn is_connectivity(&self) -> bool {
        matches!(self, UpnError::Unreachable { .. } | UpnError::Timeout)
    }
}

/// The UPN API as the services see it. One implementation speaks HTTP ([`http::HttpUpn`]);
/// tests may provide others.
pub trait UpnApi: Send + Sync {
    /// The consignments feed; `since` is the cursor of the previous import, if any.
    fn fetch_consignments(
        &self,
        since: Option<&str>,
    ) -> impl Future<Output = Result<ConsignmentFeed, UpnError>> + Send;

    /// Takes the next batch of tracking events. UPN hands each batch out once: the caller must
    /// store the returned bytes durably before parsing them.
    fn take_tracking_batch(
        &self,
        max_events: u32,
    ) -> impl Future<Output = Result<RawTrackingResponse, UpnError>> + Send;

    fn submit_pod(
        &self,
        barcode: &str,
        idempotency_key: &str,
        pod: &PodSubmission,
    ) -> impl Future<Output = Result<PodReceipt, UpnError>> + Send;

    fn upload_image(
        &self,
        barcode: &str,
        idempotency_key: &str,
        query: &ImageQuery,
        jpeg: Vec<u8>,
        progress: Progress,
    ) -> impl Future<Output = Result<ImageReceipt, UpnError>> + Send;
}

/// A boxed future, for [`DynUpnApi`].
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`UpnApi`], so a UPN other than HTTP can be given to the
/// [`crate::Driver`] at open (`Seams::api`): the simulation harness runs the core against the
/// simulator's state in-process, with no sockets. Same contract as [`UpnApi`], method by method.
pub trait DynUpnApi: Send + Sync {
    fn fetch_consignments<'a>(
        &'a self,
        since: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ConsignmentFeed, UpnError>>;

    fn take_tracking_batch(
        &self,
        max_events: u32,
    ) -> BoxFuture<'_, Result<RawTrackingResponse, UpnError>>;

    fn submit_pod<'a>(
        &'a self,
        barcode: &'a str,
        idempotency_key: &'a str,
        pod: &'a PodSubmission,
    ) -> BoxFuture<'a, Result<PodReceipt, UpnError>>;

    fn upload_image<'a>(
        &'a self,
        barcode: &'a str,
        idempotency_key: &'a str,
        query: &'a ImageQuery,
        jpeg: Vec<u8>,
        progress: Progress,
    ) -> BoxFuture<'a, Result<ImageReceipt, UpnError>>;
}

/// The UPN the driver talks to: the HTTP client (always, in the product), or one given
/// in-process. The services stay generic over [`UpnApi`]; this is the one dispatch point.
#[derive(Clone)]
pub enum Api {
    Http(Box<http::HttpUpn>),
    InProcess(Arc<dyn DynUpnApi>),
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Api::Http(http) => http.config().fmt(f),
            Api::InProcess(_) => f.write_str("in-process UPN"),
        }
    }
}

impl UpnApi for Api {
    async fn fetch_consignments(&self, since: Option<&str>) -> Result<ConsignmentFeed, UpnError> {
        match self {
            Api::Http(h) => h.fetch_consignments(since).await,
            Api::InProcess(a) => a.fetch_consignments(since).await,
        }
    }

    async fn take_tracking_batch(&self, max_events: u32) -> Result<RawTrackingResponse, UpnError> {
        match self {
            Api::Http(h) => h.take_tracking_batch(max_events).await,
            Api::InProcess(a) => a.take_tracking_batch(max_events).await,
        }
    }

    async fn submit_pod(
        &self,
        barcode: &str,
        idempotency_key: &str,
        pod: &PodSubmission,
    ) -> Result<PodReceipt, UpnError> {
        match self {
            Api::Http(h) => h.submit_pod(barcode, idempotency_key, pod).await,
            Api::InProcess(a) => a.submit_pod(barcode, idempotency_key, pod).await,
        }
    }

    async fn upload_image(
        &self,
        barcode: &str,
        idempotency_key: &str,
        query: &ImageQuery,
        jpeg: Vec<u8>,
        progress: Progress,
    ) -> Result<ImageReceipt, UpnError> {
        match self {
            Api::Http(h) => {
                h.upload_image(barcode, idempotency_key, query, jpeg, progress)
                    .await
            }
            Api::InProcess(a) => {
                a.upload_image(barcode, idempotency_key, query, jpeg, progress)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, depot: &str, key: &str) -> UpnConfig {
        UpnConfig {
            endpoint: endpoint.into(),
            depot: depot.into(),
            api_key: ApiKey::new(key),
        }
    }

    fn refused_field(c: UpnConfig) -> &'static str {
        match c.validate() {
            Err(Error::InvalidInput { field, reason }) => {
                assert!(!reason.contains("s3cr3t"), "{reason}");
                field
            }
            other => panic!("{c:?} was accepted: {other:?}"),
        }
    }

    #[test]
    fn the_key_goes_only_to_https_or_this_device() {
        for ok in [
            "https://api.upn.example",
            "https://api.upn.example:8443/base/",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9000",
            "http://localhost:8080",
            "http://LOCALHOST",
            "https://xn--pi-via.upn.example",
            "https://API.UPN.Example",
            "https://api.upn.example/é",
        ] {
            assert!(config(ok, "042", "k").validate().is_ok(), "{ok}");
        }
        for bad in [
            "ftp://127.0.0.1",
            "http://upn.example",
            "http://10.0.0.1",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
            "https://user:pw@upn.example",
            "https://upn.example/?x=1",
            "https://upn.example/#f",
            "file:///etc/passwd",
            "data:text/plain,x",
            "upn.example",
            "https://äpi.upn.example",
            "",
        ] {
            assert_eq!(refused_field(config(bad, "042", "k")), "endpoint", "{bad}");
        }
    }

    #[test]
    fn a_unicode_host_is_named_as_such() {
        // No IDNA tables are built in (idna_adapter 1.0): the reason says what to give instead.
        match config("https://äpi.upn.example", "042", "k").validate() {
            Err(Error::InvalidInput { field, reason }) => {
                assert_eq!(field, "endpoint");
                assert!(reason.contains("ASCII form (xn--"), "{reason}");
            }
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn depot_and_key_are_checked_strictly() {
        let e = "https://upn.example";
        for bad in [
            "",
            "../../x",
            "042?x=1",
            "04 2",
            "042/",
            "é42",
            "12345678901234567",
        ] {
            assert_eq!(refused_field(config(e, bad, "k")), "depot", "{bad:?}");
        }
        for bad in [
            "",
            "s3cr3t\n",
            " s3cr3t",
            "s3 cr3t",
            "s3cr3t\u{7f}",
            "s3cr3té",
        ] {
            assert_eq!(refused_field(config(e, "042", bad)), "api key", "{bad:?}");
        }
        assert!(config(e, "ABC123", "s3cr3t-_.~!").validate().is_ok());
    }
}
