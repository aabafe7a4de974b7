//! [`UpnApi`] over HTTPS with reqwest (rustls): timeouts, bounded response bodies, and one
//! mapping from HTTP status and refusal code to [`UpnError`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::digest::sha256_hex;

use super::wire::{self, ConsignmentFeed, ImageQuery, ImageReceipt, PodReceipt, PodSubmission};
use super::{ApiKey, Progress, RawTrackingResponse, UpnApi, UpnConfig, UpnError};

/// Upload bodies leave in chunks of this size, each reported to the progress callback.
const UPLOAD_CHUNK_BYTES: usize = 32 * 1024;

/// Largest response body we read; anything bigger is a broken or hostile server.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest refusal body worth reading for its message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Longest server message kept in an error (and so in the store and on screen).
const MAX_MESSAGE_CHARS: usize = 500;
/// Longest wait UPN's `Retry-After` can impose: a larger value is a broken or hostile server,
/// and must neither overflow the backoff arithmetic nor park an item for years.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Network timeouts. Uploads get a longer total budget than feed calls.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
    pub upload: Duration,
    /// The consuming tracking GET: longest wait for the response head or for the next bytes
    /// of its body. No total deadline short of [`TRACKING_CEILING`]: a body may take long on a
    /// slow link as long as it keeps arriving (giving up mid-body loses the batch).
    pub read_idle: Duration,
}

/// Outer bound on one consuming tracking GET, however steadily its bytes arrive.
pub const TRACKING_CEILING: Duration = Duration::from_secs(30 * 60);

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
            upload: Duration::from_secs(300),
            read_idle: Duration::from_secs(30),
        }
    }
}

/// The real UPN client.
#[derive(Debug, Clone)]
pub struct HttpUpn {
    client: reqwest::Client,
    config: UpnConfig,
    base: reqwest::Url,
    timeouts: Timeouts,
}

impl HttpUpn {
    /// A client for `config`; bad configuration is refused as [`crate::Error::InvalidInput`].
    pub fn new(config: UpnConfig) -> crate::Result<Self> {
        Self::with_timeouts(config, Timeouts::default())
    }

    pub fn with_timeouts(config: UpnConfig, timeouts: Timeouts) -> crate::Result<Self> {
        let base = config.validate()?;
        // The API key goes to the configured origin and nowhere else: a redirect is a refusal
        // (never followed, so neither the key header nor a POD body nor a consuming GET goes
        // elsewhere), and no proxy from the environment sees the traffic.
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("upn-driver-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpnError::Unreachable {
                reason: format!("could not set up the HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            config,
            base,
            timeouts,
        })
    }

    pub fn config(&self) -> &UpnConfig {
        &self.config
    }

    /// The URL of `segments` under the endpoint, each segment percent-encoded on its own.
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        // Cannot fail: `UpnConfig::validate` refused URLs that cannot be a base.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str], timeout: Duration) -> RequestBuilder {
        self.client
            .request(method, self.url(segments))
            .timeout(timeout)
            .header(wire::API_KEY_HEADER, self.config.api_key.expose())
            .header(header::ACCEPT, "application/json")
    }

    async fn send(&self, builder: RequestBuilder) -> Result<(Response, Vec<u8>), UpnError> {
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            let mut response = response;
            let body = read_bounded(&mut response, MAX_RESPONSE_BYTES).await?;
            Ok((response, body))
        } else {
            Err(refusal(response, &self.config.api_key).await)
        }
    }

    async fn send_json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, UpnError> {
        let (_, body) = self.send(builder).await?;
        parse_json(&body)
    }
}

/// Parses a JSON body, naming what was wrong without echoing the body (it may hold personal data).
/// `T` may borrow from `body` (the tracking pull splits its events as raw slices).
pub fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, UpnError> {
    serde_json::from_slice(body).map_err(|e| UpnError::BadResponse {
        reason: format!(
            "malformed JSON ({} bytes): {} at line {} column {}",
            body.len(),
            e.classify_name(),
            e.line(),
            e.column()
        ),
    })
}

/// A parsed body that must also pass `check` (a receipt's range checks): a failed check is a
/// bad response, with the check's reason.
pub fn checked<T>(
    parsed: Result<T, UpnError>,
    check: fn(&T) -> Result<(), String>,
) -> Result<T, UpnError> {
    let value = parsed?;
    check(&value).map_err(|reason| UpnError::BadResponse { reason })?;
    Ok(value)
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

fn transport_error(e: reqwest::Error) -> UpnError {
    if e.is_timeout() {
        UpnError::Timeout
    } else if e.is_connect() {
        UpnError::Unreachable {
            reason: "could not connect".into(),
        }
    } else if e.is_body() || e.is_decode() {
        UpnError::BadResponse {
            reason: "the connection broke while reading the response".into(),
        }
    } else {
        // reqwest's Display of a request error includes the URL but never headers, so the key
        // stays out; the URL holds only the depot code and barcode.
        UpnError::Unreachable {
            reason: format!("the request failed: {}", without_url(&e)),
        }
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn read_bounded(response: &mut Response, limit: usize) -> Result<Vec<u8>, UpnError> {
    read_limited(response, limit, None).await
}

/// Reads a body of at most `limit` bytes; with `idle`, each next piece must come within it.
async fn read_limited(
    response: &mut Response,
    limit: usize,
    idle: Option<Duration>,
) -> Result<Vec<u8>, UpnError> {
    if let Some(len) = response.content_length() {
        if len as usize > limit {
            return Err(UpnError::BadResponse {
                reason: format!("response of {len} bytes exceeds the {limit}-byte limit"),
            });
        }
    }
    let mut body = Vec::new();
    loop {
        let next = match idle {
            Some(idle) => within_idle(idle, response.chunk()).await?,
            None => response.chunk().await,
        };
        let Some(chunk) = next.map_err(body_error)? else {
            break;
        };
        if body.len() + chunk.len() > limit {
            return Err(UpnError::BadResponse {
                reason: format!("response exceeds the {limit}-byte limit"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn body_error(e: reqwest::Error) -> UpnError {
    if e.is_timeout() {
        UpnError::Timeout
    } else {
        UpnError::BadResponse {
            reason: "the connection broke while reading the response".into(),
        }
    }
}

/// Awaits `step` (the response head, or the next piece of a body) for at most `idle`: the
/// read-progress timeout of the consuming tracking GET.
async fn within_idle<T>(
    idle: Duration,
    step: impl std::future::Future<Output = T>,
) -> Result<T, UpnError> {
    tokio::time::timeout(idle, step)
        .await
        .map_err(|_| UpnError::Timeout)
}

/// UPN's clock from its header; a malformed or out-of-range value counts as absent.
fn server_time(response: &Response) -> Option<DateTime<Utc>> {
    header_text(response.headers(), wire::SERVER_TIME_HEADER).and_then(wire::parse_instant)
}

fn header_text(headers: &header::HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Retry-After` of a response, relative to the server's own clock when it sent one.
fn retry_after(response: &Response) -> Option<Duration> {
    let headers = response.headers();
    let value = header_text(headers, header::RETRY_AFTER)?;
    let now = server_time(response)
        .or_else(|| header_text(headers, header::DATE).and_then(http_date))
        .unwrap_or_else(Utc::now);
    parse_retry_after(value, now)
}

/// `Retry-After` as delta-seconds or an HTTP-date, clamped to [`MAX_RETRY_AFTER`]; garbage is
/// ignored (`None`) and a date in the past means "now".
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits too many for a u64 are still "a very long time", not garbage.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = http_date(value)?;
        at.signed_duration_since(now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An HTTP-date (IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`), range-checked.
fn http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .and_then(|t| wire::check_instant("", t).ok())
}

/// Turns a non-2xx response into the typed refusal.
async fn refusal(mut response: Response, key: &ApiKey) -> UpnError {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = read_bounded(&mut response, MAX_ERROR_BODY_BYTES).await.ok();
    refusal_of(status, body.as_deref(), retry_after, key)
}

/// The typed refusal for a non-2xx status and its (bounded) body, if one could be read: the
/// code and the scrubbed message of a well-formed error body, else the status's own reason.
/// Public so an in-process UPN (the simulation harness) and the fuzz targets read refusals
/// as HTTP does.
pub fn refusal_of(
    status: StatusCode,
    body: Option<&[u8]>,
    retry_after: Option<Duration>,
    key: &ApiKey,
) -> UpnError {
    let detail = body
        .and_then(|body| serde_json::from_slice::<wire::ErrorBody>(body).ok())
        .map(|b| b.error);
    let code = detail.as_ref().map(|d| d.code.as_str()).unwrap_or("");
    let message = detail
        .as_ref()
        .map(|d| scrub(&d.message, key))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason").to_string());
    classify(status, code, message, retry_after)
}

/// A server message made safe to store and show: the API key (a server may echo the request
/// header) replaced, control characters dropped, length bounded. The one place server text
/// enters an error.
pub fn scrub(message: &str, key: &ApiKey) -> String {
    let secret = key.expose();
    let text = if secret.is_empty() {
        message.to_string()
    } else {
        message.replace(secret, "<redacted>")
    };
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if text.chars().count() > MAX_MESSAGE_CHARS {
        clean.push('…');
    }
    clean
}

/// The single place that decides what a refusal means.
pub fn classify(
    status: StatusCode,
    code: &str,
    message: String,
    retry_after: Option<Duration>,
) -> UpnError {
    match (status.as_u16(), code) {
        (s @ 300..=399, _) => UpnError::Redirected { status: s },
        (401, _) => UpnError::Unauthorized,
        (403, wire::code::INTEGRATION_DISABLED) => UpnError::IntegrationDisabled,
        (403, wire::code::TRACKING_ACTION_DISABLED) => UpnError::TrackingActionDisabled,
        (403, wire::code::IMAGE_ACTION_DISABLED) => UpnError::ImageActionDisabled,
        (403, _) => UpnError::Forbidden { message },
        (409, wire::code::POD_REQUIRED) => UpnError::PodRequired,
        (409, _) => UpnError::AlreadyDelivered,
        (413, _) => UpnError::TooLarge,
        (429, _) => UpnError::RateLimited { retry_after },
        (408, _) => UpnError::Timeout,
        (s, _) if s >= 500 => UpnError::Server {
            status: s,
            message,
            retry_after,
        },
        (s, _) => UpnError::Invalid { status: s, message },
    }
}

/// On a consignment's own routes, a 404 means UPN does not know that barcode.
pub fn with_barcode(e: UpnError, barcode: &str) -> UpnError {
    match e {
        UpnError::Invalid { status: 404, .. } => UpnError::UnknownBarcode {
            barcode: barcode.to_string(),
        },
        other => other,
    }
}

/// A body that reports each chunk to `progress` as hyper takes it for the socket.
fn progress_body(bytes: Vec<u8>, progress: Progress) -> reqwest::Body {
    let total = bytes.len() as u64;
    let bytes = bytes::Bytes::from(bytes);
    let chunks: Vec<bytes::Bytes> = (0..bytes.len())
        .step_by(UPLOAD_CHUNK_BYTES)
        .map(|start| bytes.slice(start..(start + UPLOAD_CHUNK_BYTES).min(bytes.len())))
        .collect();
    let mut sent = 0u64;
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        sent += chunk.len() as u64;
        progress(sent, total);
        Ok::<_, std::io::Error>(chunk)
    }));
    reqwest::Body::wrap_stream(stream)
}

impl UpnApi for HttpUpn {
    async fn fetch_consignments(&self, since: Option<&str>) -> Result<ConsignmentFeed, UpnError> {
        let query = wire::ConsignmentsQuery {
            since: since.map(str::to_string),
        };
        let mut builder = self.request(
            Method::GET,
            &wire::consignments_segments(&self.config.depot),
            self.timeouts.request,
        );
        if let Some(since) = &query.since {
            builder = builder.query(&[("since", since)]);
        }
        self.send_json(builder).await
    }

    async fn take_tracking_batch(&self, max_events: u32) -> Result<RawTrackingResponse, UpnError> {
        let idle = self.timeouts.read_idle;
        let builder = self
            .request(
                Method::GET,
                &wire::tracking_events_segments(&self.config.depot),
                TRACKING_CEILING,
            )
            .query(&[("max", max_events)]);
        let mut response = within_idle(idle, builder.send())
            .await?
            .map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(refusal(response, &self.config.api_key).await);
        }
        let body = read_limited(&mut response, MAX_RESPONSE_BYTES, Some(idle)).await?;
        Ok(RawTrackingResponse {
            server_time: server_time(&response),
            body,
        })
    }

    async fn submit_pod(
        &self,
        barcode: &str,
        idempotency_key: &str,
        pod: &PodSubmission,
    ) -> Result<PodReceipt, UpnError> {
        let builder = self
            .request(
                Method::POST,
                &wire::pod_segments(&self.config.depot, barcode),
                self.timeouts.upload,
            )
            .header(wire::IDEMPOTENCY_KEY_HEADER, idempotency_key)
            .json(pod);
        checked(self.send_json(builder).await, PodReceipt::check)
            .map_err(|e| with_barcode(e, barcode))
    }

    async fn upload_image(
        &self,
        barcode: &str,
        idempotency_key: &str,
        query: &ImageQuery,
        jpeg: Vec<u8>,
        progress: Progress,
    ) -> Result<ImageReceipt, UpnError> {
        let total = jpeg.len() as u64;
        let builder = self
            .request(
                Method::POST,
                &wire::images_segments(&self.config.depot, barcode),
                self.timeouts.upload,
            )
            .header(wire::IDEMPOTENCY_KEY_HEADER, idempotency_key)
            .header(wire::CONTENT_SHA256_HEADER, sha256_hex(&jpeg))
            .header(header::CONTENT_TYPE, "image/jpeg")
            .header(header::CONTENT_LENGTH, total)
            .query(query)
            .body(progress_body(jpeg, progress));
        checked(self.send_json(builder).await, ImageReceipt::check)
            .map_err(|e| with_barcode(e, barcode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_shows_in_debug() {
        let config = UpnConfig {
            endpoint: "http://127.0.0.1:1".into(),
            depot: "042".into(),
            api_key: ApiKey::new("super-secret-key"),
        };
        let client = HttpUpn::new(config).expect("client");
        assert!(!format!("{client:?}").contains("super-secret-key"));
    }

    #[test]
    fn refusals_are_classified_once() {
        let c = |s: u16, code: &str| {
            classify(
                StatusCode::from_u16(s).expect("status"),
                code,
                "m".into(),
                None,
            )
        };
        assert_eq!(c(401, ""), UpnError::Unauthorized);
        assert_eq!(
            c(403, wire::code::INTEGRATION_DISABLED),
            UpnError::IntegrationDisabled
        );
        assert_eq!(
            c(403, wire::code::TRACKING_ACTION_DISABLED),
            UpnError::TrackingActionDisabled
        );
        assert_eq!(
            c(403, wire::code::IMAGE_ACTION_DISABLED),
            UpnError::ImageActionDisabled
        );
        assert_eq!(c(409, wire::code::POD_REQUIRED), UpnError::PodRequired);
        assert_eq!(
            c(409, wire::code::ALREADY_DELIVERED),
            UpnError::AlreadyDelivered
        );
        assert_eq!(c(413, ""), UpnError::TooLarge);
        assert!(c(503, "").is_recoverable());
        assert!(c(500, "").is_recoverable());
        assert!(c(429, "").is_recoverable());
        assert!(!c(400, "").is_recoverable());
        assert!(!c(409, "").is_recoverable());
    }

    #[test]
    fn redirects_are_a_refusal_of_their_own() {
        for s in [301, 302, 303, 307, 308] {
            let e = classify(StatusCode::from_u16(s).unwrap(), "", "m".into(), None);
            assert_eq!(e, UpnError::Redirected { status: s });
            assert!(!e.is_recoverable());
        }
    }

    #[test]
    fn retry_after_is_clamped_and_garbage_ignored() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = |v: &str| parse_retry_after(v, now);
        assert_eq!(p("120"), Some(Duration::from_secs(120)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(p("99999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(p("99999999999999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            p("Sun, 01 Mar 2026 12:10:00 GMT"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(p("Sun, 01 Mar 2099 12:10:00 GMT"), Some(MAX_RETRY_AFTER));
        assert_eq!(p("Sat, 01 Jan 2000 00:00:00 GMT"), Some(Duration::ZERO));
        for garbage in [
            "",
            "-5",
            "1.5",
            "soon",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "1e9",
        ] {
            assert_eq!(p(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn server_messages_are_scrubbed_of_the_key_and_bounded() {
        let key = ApiKey::new("k-123");
        assert_eq!(
            scrub("bad k-123, really k-123\n", &key),
            "bad <redacted>, really <redacted> "
        );
        let long = "x".repeat(10_000);
        assert_eq!(scrub(&long, &key).chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn path_values_are_percent_encoded_one_segment_each() {
        let client = HttpUpn::new(UpnConfig {
            endpoint: "https://upn.example/api/".into(),
            depot: "042".into(),
            api_key: ApiKey::new("k"),
        })
        .expect("client");
        // Barcodes are validated before this point; the encoding is the second line of defence.
        let url = client.url(&wire::pod_segments("042", "../a/b?c=1#d"));
        assert_eq!(
            url.as_str(),
            "https://upn.example/api/v1/depots/042/consignments/..%2Fa%2Fb%3Fc=1%23d/pod"
        );
        assert_eq!(url.query(), None);
    }

    #[test]
    fn rejects_non_http_endpoint() {
        let config = UpnConfig {
            endpoint: "ftp://x".into(),
            depot: "042".into(),
            api_key: ApiKey::new("k"),
        };
        assert!(matches!(
            HttpUpn::new(config),
            Err(crate::Error::InvalidInput {
                field: "endpoint",
                ..
            })
        ));
    }
}
