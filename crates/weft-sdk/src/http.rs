//! Minimal outbound HTTP over `wasi:http` (cargo feature `http`).
//!
//! Only hosts the task was granted (see [`PluginInfo::http_host`](crate::PluginInfo::http_host))
//! are reachable; others fail with an error. For anything beyond a simple GET, use the
//! [`wasip2`] crate's `wasi::http` bindings directly (re-exported here as [`wasip2`]).

pub use wasip2;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Fetches `url` (`http://` or `https://`) with a GET and returns the status code and the
/// whole body. Errors (denied host, DNS, connection, protocol) come back as text.
pub fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(format!(
            "unsupported URL {url:?}: only http:// and https://"
        ));
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
        return Err(format!("URL {url:?} has no host"));
    }

    let request = OutgoingRequest::new(Fields::new());
    let bad = |what: &str| format!("invalid {what} in URL {url:?}");
    request
        .set_method(&Method::Get)
        .map_err(|()| bad("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| bad("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| bad("authority"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| bad("path"))?;

    let pending = outgoing_handler::handle(request, None).map_err(|e| e.to_string())?;
    let response = loop {
        match pending.get() {
            Some(result) => break result,
            None => pending.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| "response already taken".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status();

    let body = response
        .consume()
        .map_err(|()| "response body already taken".to_string())?;
    let stream = body
        .stream()
        .map_err(|()| "response body stream already taken".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading response body: {}", e.to_debug_string()));
            }
        }
    }
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok((status, bytes))
}
