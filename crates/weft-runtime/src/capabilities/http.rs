//! Outbound HTTP through `wasi:http/outgoing-handler`, fail closed: a request leaves only
//! when one of the task's [`HttpRule`]s allows its scheme, host and port. The full egress
//! policy (address vetting after DNS, redirects, size budgets) builds on this hook.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView,
};

use super::log::{LogLevel, SharedOutput};

/// One allowed destination: `[scheme://]host[:port]`, where host may be `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRule {
    scheme: Option<String>,
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HttpRule {
    /// Parses a rule such as `gitlab.com`, `https://api.github.com`, `*.example.com:8443`
    /// or `127.0.0.1:8080`.
    pub fn parse(rule: &str) -> Result<HttpRule, String> {
        let (scheme, rest) = match rule.split_once("://") {
            Some((scheme, rest)) if scheme == "http" || scheme == "https" => {
                (Some(scheme.to_string()), rest)
            }
            Some((scheme, _)) => return Err(format!("unsupported scheme `{scheme}` in `{rule}`")),
            None => (None, rule),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("invalid port `{port}` in `{rule}`"))?;
                (host, Some(port))
            }
            _ => (rest, None),
        };
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix),
            None => (false, host),
        };
        if host.is_empty() || host.contains('/') || host.contains('*') {
            return Err(format!("invalid host in `{rule}`"));
        }
        Ok(HttpRule {
            scheme,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            wildcard,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this rule.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != scheme) {
            return false;
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        if self.port.unwrap_or(default_port) != port {
            return false;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host[..host.len() - self.host.len()].ends_with('.')
        } else {
            host == self.host
        }
    }
}

impl std::fmt::Display for HttpRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(scheme) = &self.scheme {
            write!(f, "{scheme}://")?;
        }
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The task's egress hook.
pub(crate) struct EgressHooks {
    pub(crate) rules: Vec<HttpRule>,
    pub(crate) output: SharedOutput,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("https").to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        if !self.rules.iter().any(|r| r.allows(&scheme, &host, port)) {
            self.output.host_line(
                LogLevel::Error,
                format!(
                    "HTTP request to {scheme}://{host}:{port} denied: not among this task's allowed hosts ({})",
                    describe_rules(&self.rules)
                ),
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        if scheme != "http" {
            self.output.host_line(
                LogLevel::Error,
                format!(
                    "HTTPS request to {host}:{port} denied: TLS egress is not enabled on this host"
                ),
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(Duration::from_secs(10));
        Box::new(async move {
            let stream = tokio::time::timeout(
                connect_timeout,
                tokio::net::TcpStream::connect((host.as_str(), port)),
            )
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(|_| HttpError::ConnectionRefused)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(HttpError::Hyper)?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async move { conn.await.map_err(HttpError::Hyper) });
            let response = sender
                .send_request(request)
                .await
                .map_err(HttpError::Hyper)?;
            let response = response.map(|body| body.map_err(HttpError::Hyper).boxed_unsync());
            Ok((response, io))
        })
    }
}

fn describe_rules(rules: &[HttpRule]) -> String {
    if rules.is_empty() {
        return "none".to_string();
    }
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds `wasi:http/outgoing-handler` and `wasi:http/types` to `linker`.
pub fn add_to_linker<T: WasiHttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_scheme_host_and_port() {
        let cases = [
            ("gitlab.com", "https", "gitlab.com", 443, true),
            ("gitlab.com", "http", "gitlab.com", 80, true),
            ("gitlab.com", "https", "gitlab.com", 8443, false),
            ("gitlab.com", "https", "evil-gitlab.com", 443, false),
            ("https://gitlab.com", "http", "gitlab.com", 80, false),
            ("*.example.com", "https", "api.example.com", 443, true),
            ("*.example.com", "https", "example.com", 443, false),
            ("*.example.com", "https", "apiexample.com", 443, false),
            ("127.0.0.1:8080", "http", "127.0.0.1", 8080, true),
            ("127.0.0.1:8080", "http", "127.0.0.1", 8081, false),
            ("GitLab.COM", "https", "gitlab.com", 443, true),
        ];
        for (rule, scheme, host, port, allowed) in cases {
            let parsed = HttpRule::parse(rule).expect(rule);
            assert_eq!(
                parsed.allows(scheme, host, port),
                allowed,
                "{rule} vs {scheme}://{host}:{port}"
            );
        }
    }

    #[test]
    fn bad_rules_are_rejected() {
        for rule in ["", "ftp://x", "host:notaport", "a/b", "*.", "x.*.y"] {
            assert!(HttpRule::parse(rule).is_err(), "{rule}");
        }
    }
}
