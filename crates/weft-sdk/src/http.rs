//! Outbound HTTP over `wasi:http` (cargo feature `http`).
//!
//! Only hosts the plugin was granted (see [`PluginInfo::http_host`](crate::PluginInfo::http_host))
//! are reachable; others fail with [`HttpError::Denied`].
//!
//! ```no_run
//! use weft_sdk::http::{self, HttpError};
//!
//! let body = br#"{"state":"success"}"#;
//! match http::request("POST", "https://forge.example/api/statuses/abc",
//!                     &[("content-type", "application/json")], Some(body)) {
//!     Ok(resp) if resp.is_success() => {}
//!     Ok(resp) => weft_sdk::log::warn!("HTTP {}: {}", resp.status, resp.text()),
//!     Err(e) if e.is_transient() => { /* try again later */ }
//!     Err(e) => weft_sdk::log::error!("{e}"),
//! }
//! ```
//!
//! For anything beyond this, use the [`wasip2`] crate's `wasi::http` bindings directly
//! (re-exported here).

pub use wasip2;

use std::fmt;
use std::time::Duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

/// How long connecting may take before [`HttpError::Timeout`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the first response byte may take before [`HttpError::Timeout`].
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// A response: status, headers (names lower-cased, in order) and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers as `(lower-case name, value)`; values that are not UTF-8 are lossy.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL, method or a header is not valid; nothing was sent.
    InvalidRequest(String),
    /// The host's egress policy does not allow this destination.
    Denied,
    /// The name did not resolve (or resolving timed out).
    Dns(String),
    /// The connection was refused, reset or the destination is unreachable.
    Connection(String),
    /// Connecting or waiting for the response took too long.
    Timeout(String),
    /// TLS failed (protocol, certificate or alert).
    Tls(String),
    /// Anything else (protocol errors, body errors, host internal errors).
    Other(String),
}

impl HttpError {
    /// True when trying again later may succeed (DNS, connection, timeout, other
    /// protocol errors); false for invalid requests, policy denials and TLS failures.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Dns(_)
                | HttpError::Connection(_)
                | HttpError::Timeout(_)
                | HttpError::Other(_)
        )
    }

    fn from_code(code: &ErrorCode) -> Self {
        let text = code.to_string();
        match code {
            ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => HttpError::Denied,
            ErrorCode::DnsTimeout | ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
                HttpError::Dns(text)
            }
            ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTerminated
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpUnroutable
            | ErrorCode::HttpResponseIncomplete => HttpError::Connection(text),
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => HttpError::Timeout(text),
            ErrorCode::TlsProtocolError
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_) => HttpError::Tls(text),
            ErrorCode::HttpRequestMethodInvalid
            | ErrorCode::HttpRequestUriInvalid
            | ErrorCode::HttpRequestUriTooLong => HttpError::InvalidRequest(text),
            _ => HttpError::Other(text),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidRequest(e) => write!(f, "invalid request: {e}"),
            HttpError::Denied => f.write_str("destination not allowed by the host's HTTP policy"),
            HttpError::Dns(e) => write!(f, "DNS: {e}"),
            HttpError::Connection(e) => write!(f, "connection: {e}"),
            HttpError::Timeout(e) => write!(f, "timeout: {e}"),
            HttpError::Tls(e) => write!(f, "TLS: {e}"),
            HttpError::Other(e) => write!(f, "HTTP: {e}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Splits `http(s)://authority/path?query#frag` into scheme, authority and path+query.
fn split_url(url: &str) -> Result<(Scheme, &str, String), HttpError> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(HttpError::InvalidRequest(format!(
            "unsupported URL {url:?}: only http:// and https://"
        )));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if authority.is_empty() {
        return Err(HttpError::InvalidRequest(format!(
            "URL {url:?} has no host"
        )));
    }
    Ok((scheme, authority, path))
}

fn method_of(method: &str) -> Method {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// Sends one request and returns the response with its whole body. `headers` are
/// `(name, value)` pairs; `body` is sent as is (set `content-type` yourself). Redirects
/// are not followed. Transport failures come back as a typed [`HttpError`].
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, HttpError> {
    let (scheme, authority, path) = split_url(url)?;
    let invalid = |what: &str| HttpError::InvalidRequest(format!("invalid {what} in {url:?}"));

    let entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries)
        .map_err(|e| HttpError::InvalidRequest(format!("invalid header: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    request
        .set_method(&method_of(method))
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid("authority"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| invalid("path"))?;
    let outgoing_body = request
        .body()
        .map_err(|()| HttpError::Other("request body already taken".into()))?;

    let options = RequestOptions::new();
    // A host that does not support a timeout refuses it; its own defaults apply then.
    let _ = options.set_connect_timeout(Some(duration_ns(CONNECT_TIMEOUT)));
    let _ = options.set_first_byte_timeout(Some(duration_ns(FIRST_BYTE_TIMEOUT)));

    let pending =
        outgoing_handler::handle(request, Some(options)).map_err(|e| HttpError::from_code(&e))?;
    write_body(outgoing_body, body.unwrap_or_default())?;

    let response = loop {
        match pending.get() {
            Some(result) => break result,
            None => pending.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| HttpError::Other("response already taken".into()))?
        .map_err(|e| HttpError::from_code(&e))?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();

    let incoming = response
        .consume()
        .map_err(|()| HttpError::Other("response body already taken".into()))?;
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::Other("response body stream already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(HttpError::Connection(format!(
                    "reading response body: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
    drop(stream);
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn write_body(outgoing: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let mut closed = false;
    {
        let stream = outgoing
            .write()
            .map_err(|()| HttpError::Other("request body stream already taken".into()))?;
        // `blocking-write-and-flush` takes at most 4096 bytes per call.
        for chunk in bytes.chunks(4096) {
            match stream.blocking_write_and_flush(chunk) {
                Ok(()) => {}
                // The host stopped taking the body: it sent all of a body of known length
                // (and may already hold the answer), or the request failed. The response
                // says which, so it is read rather than this taken as a failure.
                Err(StreamError::Closed) => {
                    closed = true;
                    break;
                }
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Connection(format!(
                        "writing request body: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
    match OutgoingBody::finish(outgoing, None) {
        Ok(()) => Ok(()),
        Err(_) if closed => Ok(()),
        Err(e) => Err(HttpError::from_code(&e)),
    }
}

/// Fetches `url` (`http://` or `https://`) with a GET and returns the status code and the
/// whole body. Errors (denied host, DNS, connection, protocol) come back as text; use
/// [`request`] for a typed error and the response headers.
pub fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
    request("GET", url, &[], None)
        .map(|r| (r.status, r.body))
        .map_err(|e| e.to_string())
}
