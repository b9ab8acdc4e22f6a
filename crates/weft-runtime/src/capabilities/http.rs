//! Outbound HTTP through `wasi:http/outgoing-handler`: the task's egress policy.
//!
//! Every request the guest makes goes through [`WasiHttpHooks::send_request`], which
//! fails closed, in this order:
//!
//! 1. **Request budget**: at most [`EgressLimits::max_requests`] requests per task
//!    invocation (denied ones count too, so a guest cannot flood the log with denials).
//! 2. **Rules**: one of the task's [`HttpRule`]s must allow the scheme, host and port.
//! 3. **Name check**: cloud metadata names (`metadata.google.internal`, ...) are refused.
//! 4. **Resolution, once**: the host is resolved a single time (an IP literal is not
//!    resolved at all) and *every* resolved address is classified with
//!    [`classify_ip`]. Loopback, unspecified, link-local, private, shared (CGNAT),
//!    unique-local, multicast, broadcast, documentation, reserved and cloud metadata
//!    addresses — also written as IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 —
//!    are refused unless the matching rule explicitly allows private destinations
//!    (`!private:host[:port]`, see [`HttpRule::parse`]). A rule naming an IP literal does
//!    **not** by itself allow a non-public address: `169.254.169.254` still needs
//!    `!private:`.
//! 5. **Connect only to the vetted addresses**, in order, each within the connect
//!    timeout. There is no second lookup, so DNS rebinding between check and connect is
//!    impossible.
//! 6. **TLS** for `https`: rustls with the Mozilla roots (`webpki-roots`), SNI and
//!    certificate name checked against the URL's host; only HTTP/1.1 is offered.
//! 7. **Budgets**: connect, first-byte and between-bytes timeouts (the guest's
//!    `request-options`, defaulted and capped by [`EgressLimits`]); the request body and
//!    the response body are capped (a response that grows past its cap ends its stream
//!    with `HTTP-response-body-size`).
//!
//! **Redirects** are never followed by the host: `wasi:http` hands a 3xx response to the
//! guest as is, and if the guest follows it, that is a new request that goes through
//! every check above again.
//!
//! Every denial is a host line in the task's log naming the destination and the reason.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime::component::Linker;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView,
};

use super::log::{LogLevel, SharedOutput};

/// The prefix of a rule that may reach non-public addresses (`!private:localhost:8080`).
pub const PRIVATE_PREFIX: &str = "!private:";

/// Host names refused before resolution (cloud metadata services), unless the rule
/// allows private destinations.
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata.goog"];

/// One allowed destination: `[!private:][scheme://]host[:port]`, where host may be
/// `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRule {
    scheme: Option<String>,
    host: String,
    wildcard: bool,
    port: Option<u16>,
    allow_private: bool,
}

impl HttpRule {
    /// Parses a rule such as `gitlab.com`, `https://api.github.com`, `*.example.com:8443`,
    /// `127.0.0.1:8080` or `!private:http://localhost:8080`.
    ///
    /// Without the `!private:` prefix the destination must resolve to public addresses
    /// only; with it, loopback, private, link-local and metadata addresses are allowed
    /// too (for that rule's hosts only).
    pub fn parse(rule: &str) -> Result<HttpRule, String> {
        let (allow_private, body) = match rule.strip_prefix(PRIVATE_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, rule),
        };
        let (scheme, rest) = match body.split_once("://") {
            Some((scheme, rest)) if scheme == "http" || scheme == "https" => {
                (Some(scheme.to_string()), rest)
            }
            Some((scheme, _)) => return Err(format!("unsupported scheme `{scheme}` in `{rule}`")),
            None => (None, body),
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
        if host.is_empty()
            || host.contains('/')
            || host.contains('*')
            || host.contains('!')
            || host.contains('@')
        {
            return Err(format!("invalid host in `{rule}`"));
        }
        Ok(HttpRule {
            scheme,
            host: normalize_host(host),
            wildcard,
            port,
            allow_private,
        })
    }

    /// This rule, also allowing non-public destinations (what `!private:` says).
    #[must_use]
    pub fn with_private(mut self) -> HttpRule {
        self.allow_private = true;
        self
    }

    /// Whether this rule allows loopback, private, link-local and metadata addresses.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether a request to `scheme://host:port` is allowed by this rule (before the
    /// address check).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != scheme) {
            return false;
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        if self.port.unwrap_or(default_port) != port {
            return false;
        }
        let host = normalize_host(host);
        if self.wildcard {
            host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host[..host.len() - self.host.len()].ends_with('.')
        } else {
            host == self.host
        }
    }
}

/// Stored as the rule's text; reading one back parses it again, strictly: a rule that no
/// longer parses is an error, never dropped.
impl serde::Serialize for HttpRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HttpRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HttpRule::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("HTTP rule `{text}`: {e}")))
    }
}

impl std::fmt::Display for HttpRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.allow_private {
            f.write_str(PRIVATE_PREFIX)?;
        }
        if let Some(scheme) = &self.scheme {
            write!(f, "{scheme}://")?;
        }
        if self.wildcard {
            f.write_str("*.")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// What kind of address an IP is, for the egress policy. Only [`AddressClass::Public`]
/// is reachable without a `!private:` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A globally routable unicast address.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `10/8`, `172.16/12`, `192.168/16`, `fec0::/10` (site-local).
    Private,
    /// `100.64.0.0/10` (carrier-grade NAT).
    SharedCgnat,
    /// `fc00::/7`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Special-purpose blocks that are not destinations: `240/4`, `192.0.0/24`,
    /// `198.18/15`, `100::/64`, `2001::/23`.
    Reserved,
    /// Cloud metadata services: `169.254.169.254`, `169.254.170.2`, `fd00:ec2::254`.
    CloudMetadata,
}

impl AddressClass {
    /// Whether this class may be reached without a private allowance.
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }

    /// `a loopback address`, `a cloud metadata address`, ...
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Private => "a private address",
            AddressClass::SharedCgnat => "a shared (carrier-grade NAT) address",
            AddressClass::UniqueLocal => "a unique-local IPv6 address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Documentation => "a documentation address",
            AddressClass::Reserved => "a reserved address",
            AddressClass::CloudMetadata => "a cloud metadata address",
        }
    }
}

/// Classifies an address. IPv6 forms that embed an IPv4 address (IPv4-mapped
/// `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
/// `2002::/16`) are classified by the IPv4 address they carry.
pub fn classify_ip(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        (169, 254, 169, 254) | (169, 254, 170, 2) => AddressClass::CloudMetadata,
        (255, 255, 255, 255) => AddressClass::Broadcast,
        (0, ..) => AddressClass::Unspecified,
        (127, ..) => AddressClass::Loopback,
        (169, 254, ..) => AddressClass::LinkLocal,
        (10, ..) | (192, 168, ..) => AddressClass::Private,
        (172, b, ..) if (16..32).contains(&b) => AddressClass::Private,
        (100, b, ..) if (64..128).contains(&b) => AddressClass::SharedCgnat,
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => AddressClass::Documentation,
        (224..=239, ..) => AddressClass::Multicast,
        (240..=255, ..) | (192, 0, 0, _) => AddressClass::Reserved,
        (198, 18 | 19, ..) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    let embedded_low =
        || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-compatible (deprecated) `::a.b.c.d`.
    if s[..6] == [0; 6] {
        return non_public_or(classify_v4(embedded_low()), AddressClass::Reserved);
    }
    // NAT64 well-known prefix `64:ff9b::/96` and local-use `64:ff9b:1::/48`.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_low());
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        return AddressClass::Private;
    }
    // 6to4 `2002:AABB:CCDD::/48` carries AA.BB.CC.DD.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return non_public_or(classify_v4(v4), AddressClass::Public);
    }
    if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return AddressClass::CloudMetadata;
    }
    match s[0] {
        x if x & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        x if x & 0xffc0 == 0xfec0 => AddressClass::Private,
        x if x & 0xfe00 == 0xfc00 => AddressClass::UniqueLocal,
        x if x & 0xff00 == 0xff00 => AddressClass::Multicast,
        0x2001 if s[1] == 0x0db8 => AddressClass::Documentation,
        x if x & 0xfff0 == 0x3ff0 => AddressClass::Documentation,
        0x2001 if s[1] < 0x0200 => AddressClass::Reserved,
        0x0100 if s[1..4] == [0, 0, 0] => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn non_public_or(class: AddressClass, otherwise: AddressClass) -> AddressClass {
    if class.is_public() { otherwise } else { class }
}

/// Budgets for one task's outbound HTTP. The timeouts are used when the guest sets none
/// in its `request-options`; whatever the guest sets is capped at [`Self::max_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressLimits {
    /// Time to resolve the host name.
    pub dns_timeout: Duration,
    /// Time to establish the TCP connection to one address (and the TLS handshake).
    pub connect_timeout: Duration,
    /// Time from sending the request to the response head.
    pub first_byte_timeout: Duration,
    /// Longest silence while reading the response body.
    pub between_bytes_timeout: Duration,
    /// Cap on any timeout the guest asks for.
    pub max_timeout: Duration,
    /// Largest request body the guest may send, in bytes.
    pub max_request_body: u64,
    /// Largest response body the guest may receive, in bytes.
    pub max_response_body: u64,
    /// Requests per task invocation (denied ones included).
    pub max_requests: u32,
}

impl Default for EgressLimits {
    fn default() -> Self {
        EgressLimits {
            dns_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            between_bytes_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(300),
            max_request_body: 32 << 20,
            max_response_body: 256 << 20,
            max_requests: 1_000,
        }
    }
}

impl EgressLimits {
    fn resolve_timeouts(&self, options: Option<RequestOptions>) -> Timeouts {
        let pick = |asked: Option<Duration>, default: Duration| {
            asked.unwrap_or(default).min(self.max_timeout)
        };
        let options = options.unwrap_or_default();
        Timeouts {
            dns: self.dns_timeout.min(self.max_timeout),
            connect: pick(options.connect_timeout, self.connect_timeout),
            first_byte: pick(options.first_byte_timeout, self.first_byte_timeout),
            between_bytes: pick(options.between_bytes_timeout, self.between_bytes_timeout),
        }
    }
}

#[derive(Clone, Copy)]
struct Timeouts {
    dns: Duration,
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

/// The per-task state of the egress hook that is not the rules: budgets and counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct EgressBudget {
    pub(crate) limits: EgressLimits,
    pub(crate) requests: u32,
}

impl EgressBudget {
    /// A budget with these limits and no request made yet.
    #[allow(dead_code)]
    pub(crate) fn new(limits: EgressLimits) -> Self {
        EgressBudget {
            limits,
            requests: 0,
        }
    }
}

/// The task's egress hook.
pub(crate) struct EgressHooks {
    pub(crate) rules: Vec<HttpRule>,
    pub(crate) output: SharedOutput,
    pub(crate) budget: EgressBudget,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

fn deny(error: HttpError) -> ResponseFuture {
    Box::new(async move { Err(error) })
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let limits = self.budget.limits;
        self.budget.requests = self.budget.requests.saturating_add(1);
        if self.budget.requests > limits.max_requests {
            if self.budget.requests == limits.max_requests.saturating_add(1) {
                self.output.host_line(
                    LogLevel::Error,
                    format!(
                        "HTTP request denied: this task used its budget of {} requests; further requests are refused",
                        limits.max_requests
                    ),
                );
            }
            return deny(HttpError::ConnectionLimitReached);
        }
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some(raw_host) = uri.host() else {
            self.output.host_line(
                LogLevel::Error,
                "HTTP request denied: the request has no host".to_string(),
            );
            return deny(HttpError::HttpRequestUriInvalid);
        };
        let host = normalize_host(raw_host);
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let dest = format!("{scheme}://{}:{port}", display_host(&host));
        if scheme != "http" && scheme != "https" {
            self.output.host_line(
                LogLevel::Error,
                format!("HTTP request to {dest} denied: only http and https are supported"),
            );
            return deny(HttpError::HttpRequestDenied);
        }
        let matching: Vec<&HttpRule> = self
            .rules
            .iter()
            .filter(|r| r.allows(&scheme, &host, port))
            .collect();
        if matching.is_empty() {
            self.output.host_line(
                LogLevel::Error,
                format!(
                    "HTTP request to {dest} denied: not among this task's allowed hosts ({})",
                    describe_rules(&self.rules)
                ),
            );
            return deny(HttpError::HttpRequestDenied);
        }
        let allow_private = matching.iter().any(|r| r.allow_private);
        let suggestion = format!("{PRIVATE_PREFIX}{}", matching[0]);
        let bare = host.trim_end_matches('.');
        if !allow_private && METADATA_NAMES.contains(&bare) {
            self.output.host_line(
                LogLevel::Error,
                format!(
                    "HTTP request to {dest} denied: {host} is a cloud metadata service; allow it explicitly with the rule `{suggestion}`"
                ),
            );
            return deny(HttpError::DestinationIpProhibited);
        }
        if let Some(length) = content_length(&request)
            && length > limits.max_request_body
        {
            self.output.host_line(
                LogLevel::Error,
                format!(
                    "HTTP request to {dest} denied: its body of {length} bytes is over the limit of {} bytes",
                    limits.max_request_body
                ),
            );
            return deny(HttpError::HttpRequestBodySize(Some(length)));
        }
        let target = Target {
            dest,
            host,
            port,
            tls: scheme == "https",
            allow_private,
            suggestion,
        };
        let timeouts = limits.resolve_timeouts(options);
        let output = self.output.clone();
        Box::new(send(request, target, timeouts, limits, output))
    }
}

/// Where a vetted request goes.
struct Target {
    /// `scheme://host:port`, for messages.
    dest: String,
    host: String,
    port: u16,
    tls: bool,
    allow_private: bool,
    suggestion: String,
}

fn display_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn content_length(request: &http::Request<WasiBody>) -> Option<u64> {
    request
        .headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Resolves `target` once and vets every address. Returns the addresses to connect to.
async fn vetted_addresses(
    target: &Target,
    timeouts: Timeouts,
    output: &SharedOutput,
) -> Result<Vec<SocketAddr>, HttpError> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
            match tokio::time::timeout(timeouts.dns, lookup).await {
                Err(_) => {
                    output.host_line(
                        LogLevel::Error,
                        format!(
                            "HTTP request to {} failed: resolving {} took longer than {:?}",
                            target.dest, target.host, timeouts.dns
                        ),
                    );
                    return Err(HttpError::DnsTimeout);
                }
                Ok(Err(err)) => {
                    output.host_line(
                        LogLevel::Error,
                        format!(
                            "HTTP request to {} failed: cannot resolve {}: {err}",
                            target.dest, target.host
                        ),
                    );
                    return Err(HttpError::DnsError {
                        rcode: Some(err.to_string()),
                        info_code: None,
                    });
                }
                Ok(Ok(addrs)) => addrs.collect(),
            }
        }
    };
    if addrs.is_empty() {
        output.host_line(
            LogLevel::Error,
            format!(
                "HTTP request to {} failed: {} has no addresses",
                target.dest, target.host
            ),
        );
        return Err(HttpError::DestinationNotFound);
    }
    if !target.allow_private {
        for addr in &addrs {
            let class = classify_ip(addr.ip());
            if !class.is_public() {
                let what = if target.host.parse::<IpAddr>().is_ok() {
                    format!("{} is {}", addr.ip(), class.describe())
                } else {
                    format!(
                        "{} resolves to {}, {}",
                        target.host,
                        addr.ip(),
                        class.describe()
                    )
                };
                output.host_line(
                    LogLevel::Error,
                    format!(
                        "HTTP request to {} denied: {what}; allow it explicitly with the rule `{}`",
                        target.dest, target.suggestion
                    ),
                );
                return Err(HttpError::DestinationIpProhibited);
            }
        }
    }
    Ok(addrs)
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Connects to the first vetted address that answers, then does the TLS handshake.
async fn connect(
    target: &Target,
    addrs: &[SocketAddr],
    timeouts: Timeouts,
    output: &SharedOutput,
) -> Result<Box<dyn Io>, HttpError> {
    let mut failures = Vec::new();
    let mut stream = None;
    let mut timed_out = false;
    for addr in addrs {
        match tokio::time::timeout(timeouts.connect, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                stream = Some(tcp);
                break;
            }
            Ok(Err(err)) => failures.push(format!("{addr}: {err}")),
            Err(_) => {
                timed_out = true;
                failures.push(format!("{addr}: no answer within {:?}", timeouts.connect));
            }
        }
    }
    let Some(tcp) = stream else {
        output.host_line(
            LogLevel::Error,
            format!(
                "HTTP request to {} failed: cannot connect ({})",
                target.dest,
                failures.join("; ")
            ),
        );
        return Err(if timed_out {
            HttpError::ConnectionTimeout
        } else {
            HttpError::ConnectionRefused
        });
    };
    let _ = tcp.set_nodelay(true);
    if !target.tls {
        return Ok(Box::new(tcp));
    }
    let server_name = match target.host.parse::<IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => match rustls::pki_types::ServerName::try_from(target.host.clone()) {
            Ok(name) => name,
            Err(err) => {
                output.host_line(
                    LogLevel::Error,
                    format!(
                        "HTTPS request to {} failed: {} is not a valid TLS server name: {err}",
                        target.dest, target.host
                    ),
                );
                return Err(HttpError::TlsProtocolError);
            }
        },
    };
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    match tokio::time::timeout(timeouts.connect, connector.connect(server_name, tcp)).await {
        Ok(Ok(tls)) => Ok(Box::new(tls)),
        Ok(Err(err)) => {
            let (error, what) = classify_tls_error(&err);
            output.host_line(
                LogLevel::Error,
                format!("HTTPS request to {} failed: {what}: {err}", target.dest),
            );
            Err(error)
        }
        Err(_) => {
            output.host_line(
                LogLevel::Error,
                format!(
                    "HTTPS request to {} failed: the TLS handshake took longer than {:?}",
                    target.dest, timeouts.connect
                ),
            );
            Err(HttpError::ConnectionTimeout)
        }
    }
}

fn classify_tls_error(err: &std::io::Error) -> (HttpError, &'static str) {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_)) => (
            HttpError::TlsCertificateError,
            "the server's TLS certificate was rejected",
        ),
        Some(rustls::Error::AlertReceived(alert)) => (
            HttpError::TlsAlertReceived {
                alert_id: Some(u8::from(*alert)),
                alert_message: Some(format!("{alert:?}")),
            },
            "the server sent a TLS alert",
        ),
        _ => (HttpError::TlsProtocolError, "the TLS handshake failed"),
    }
}

/// The client configuration: ring, Mozilla roots, HTTP/1.1 only.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = match rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
            {
                Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
                // The ring provider supports the default versions; fall back to the
                // process default provider rather than panic.
                Err(_) => rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore {
                        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
                    })
                    .with_no_client_auth(),
            };
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

/// Does the checked request: resolve and vet, connect, send, and wrap the response.
async fn send(
    request: http::Request<WasiBody>,
    target: Target,
    timeouts: Timeouts,
    limits: EgressLimits,
    output: SharedOutput,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let addrs = vetted_addresses(&target, timeouts, &output).await?;
    let stream = connect(&target, &addrs, timeouts, &output).await?;
    let (mut sender, conn) = tokio::time::timeout(
        timeouts.connect,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)?
    .map_err(HttpError::Hyper)?;

    // Origin-form on the wire (the absolute form is for proxies); `Host` is already set.
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    parts.uri = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let over_limit = Arc::new(AtomicBool::new(false));
    let body = CappedRequestBody {
        inner: body,
        sent: 0,
        limit: limits.max_request_body,
        over_limit: over_limit.clone(),
    };
    let request = http::Request::from_parts(parts, body);

    let response =
        async { tokio::time::timeout(timeouts.first_byte, sender.send_request(request)).await };
    let mut response = pin!(response);
    let mut conn = Some(conn);
    // Drive the connection while waiting for the response head.
    let result = std::future::poll_fn(|cx| match response.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(Ok(result)),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(c).poll(cx));
            conn = None;
            match done {
                Ok(()) => response.as_mut().poll(cx).map(Ok),
                Err(err) => Poll::Ready(Err(err)),
            }
        }
    })
    .await;
    let response = match result {
        Ok(Ok(Ok(response))) => response,
        Ok(Err(_)) => {
            output.host_line(
                LogLevel::Error,
                format!(
                    "HTTP request to {} failed: no response within {:?}",
                    target.dest, timeouts.first_byte
                ),
            );
            return Err(HttpError::ConnectionReadTimeout);
        }
        Ok(Ok(Err(err))) | Err(err) => {
            if over_limit.load(Ordering::Relaxed) {
                output.host_line(
                    LogLevel::Error,
                    format!(
                        "HTTP request to {} stopped: its body is over the limit of {} bytes",
                        target.dest, limits.max_request_body
                    ),
                );
                return Err(HttpError::HttpRequestBodySize(None));
            }
            output.host_line(
                LogLevel::Error,
                format!("HTTP request to {} failed: {err}", target.dest),
            );
            return Err(HttpError::Hyper(err));
        }
    };
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(conn) => conn.await.map_err(HttpError::Hyper),
            None => Ok(()),
        }
    });
    let dest = target.dest;
    let response = response.map(|incoming| {
        CappedResponseBody {
            inner: incoming,
            received: 0,
            limit: limits.max_response_body,
            between_bytes: timeouts.between_bytes,
            idle: Box::pin(tokio::time::sleep(timeouts.between_bytes)),
            output,
            dest,
            done: false,
        }
        .boxed_unsync()
    });
    Ok((response, io))
}

/// The guest's request body, ending with an error past the limit.
struct CappedRequestBody {
    inner: WasiBody,
    sent: u64,
    limit: u64,
    over_limit: Arc<AtomicBool>,
}

impl Body for CappedRequestBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            self.sent = self.sent.saturating_add(data.len() as u64);
            if self.sent > self.limit {
                self.over_limit.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(HttpError::HttpRequestBodySize(Some(self.sent)))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body handed to the guest: capped in size and in silence between frames.
struct CappedResponseBody {
    inner: hyper::body::Incoming,
    received: u64,
    limit: u64,
    between_bytes: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    output: SharedOutput,
    dest: String,
    done: bool,
}

impl CappedResponseBody {
    fn fail(
        &mut self,
        error: HttpError,
        message: String,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        self.done = true;
        self.output.host_line(LogLevel::Error, message);
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for CappedResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(err))) => {
                let message = format!("HTTP response from {} failed: {err}", this.dest);
                this.fail(HttpError::Hyper(err), message)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                    if this.received > this.limit {
                        let message = format!(
                            "HTTP response from {} stopped: its body is over the limit of {} bytes",
                            this.dest, this.limit
                        );
                        let received = this.received;
                        return this.fail(HttpError::HttpResponseBodySize(Some(received)), message);
                    }
                }
                let deadline = tokio::time::Instant::now() + this.between_bytes;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(this.idle.as_mut().poll(cx));
                let message = format!(
                    "HTTP response from {} stopped: no data for {:?}",
                    this.dest, this.between_bytes
                );
                this.fail(HttpError::ConnectionReadTimeout, message)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
    use std::sync::atomic::AtomicUsize;

    use http_body_util::{Empty, Full};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::capabilities::log::MemorySink;

    /// A loopback server that writes `reply` to each connection after the request head,
    /// then keeps the connection open (`stall`) or closes it.
    async fn server(reply: Vec<u8>, stall: bool) -> (u16, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let reply = Arc::new(reply);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(&reply).await;
                    if stall {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        (port, connections)
    }

    fn hooks(port: u16, limits: EgressLimits) -> (EgressHooks, Arc<MemorySink>) {
        let sink = Arc::new(MemorySink::default());
        let rule = HttpRule::parse(&format!("!private:127.0.0.1:{port}")).expect("rule");
        let hooks = EgressHooks {
            rules: vec![rule],
            output: SharedOutput::new(sink.clone(), 1 << 20),
            budget: EgressBudget::new(limits),
        };
        (hooks, sink)
    }

    fn get(port: u16) -> http::Request<WasiBody> {
        http::Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
            .expect("request")
    }

    /// Sends through the hook like wasi-http does; returns the response body or error.
    async fn exchange(
        hooks: &mut EgressHooks,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Bytes, HttpError> {
        let future = hooks.send_request(request, options, Box::new(async { Ok(()) }));
        let (response, io) = Pin::from(future).await?;
        tokio::spawn(Pin::from(io));
        Ok(response.into_body().collect().await?.to_bytes())
    }

    fn reply(body: &[u8]) -> Vec<u8> {
        let mut out =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn a_response_within_the_cap_arrives() {
        let (port, _) = server(reply(&[b'x'; 1000]), false).await;
        let limits = EgressLimits {
            max_response_body: 1000,
            ..EgressLimits::default()
        };
        let (mut hooks, _) = hooks(port, limits);
        let body = exchange(&mut hooks, get(port), None).await.expect("body");
        assert_eq!(body.len(), 1000);
    }

    #[tokio::test]
    async fn a_response_over_the_cap_ends_with_an_error() {
        let (port, _) = server(reply(&vec![b'x'; 200_000]), false).await;
        let limits = EgressLimits {
            max_response_body: 64 * 1024,
            ..EgressLimits::default()
        };
        let (mut hooks, sink) = hooks(port, limits);
        let err = exchange(&mut hooks, get(port), None)
            .await
            .expect_err("over the cap");
        assert!(
            matches!(err, HttpError::HttpResponseBodySize(Some(n)) if n > 64 * 1024),
            "{err:?}"
        );
        assert!(
            sink.text().contains("over the limit of 65536 bytes"),
            "{}",
            sink.text()
        );
    }

    #[tokio::test]
    async fn a_request_body_over_the_cap_is_refused() {
        let (port, connections) = server(reply(b"ok"), false).await;
        let limits = EgressLimits {
            max_request_body: 100,
            ..EgressLimits::default()
        };
        let (mut hooks, sink) = hooks(port, limits);
        let body = || {
            Full::new(Bytes::from(vec![b'y'; 1000]))
                .map_err(|never| match never {})
                .boxed_unsync()
        };
        // Declared length: refused before connecting.
        let request = http::Request::post(format!("http://127.0.0.1:{port}/"))
            .header(http::header::CONTENT_LENGTH, "1000")
            .body(body())
            .expect("request");
        let err = exchange(&mut hooks, request, None)
            .await
            .expect_err("too big");
        assert!(matches!(err, HttpError::HttpRequestBodySize(_)), "{err:?}");
        assert_eq!(connections.load(Ordering::SeqCst), 0);
        // No declared length (chunked): stopped while sending.
        let request = http::Request::post(format!("http://127.0.0.1:{port}/"))
            .body(body())
            .expect("request");
        let err = exchange(&mut hooks, request, None)
            .await
            .expect_err("too big");
        assert!(matches!(err, HttpError::HttpRequestBodySize(_)), "{err:?}");
        assert!(
            sink.text().contains("over the limit of 100 bytes"),
            "{}",
            sink.text()
        );
    }

    #[tokio::test]
    async fn requests_are_counted_per_task() {
        let (port, connections) = server(reply(b"ok"), false).await;
        let limits = EgressLimits {
            max_requests: 2,
            ..EgressLimits::default()
        };
        let (mut hooks, sink) = hooks(port, limits);
        for _ in 0..2 {
            exchange(&mut hooks, get(port), None)
                .await
                .expect("within budget");
        }
        for _ in 0..3 {
            let err = exchange(&mut hooks, get(port), None)
                .await
                .expect_err("over budget");
            assert!(matches!(err, HttpError::ConnectionLimitReached), "{err:?}");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        assert_eq!(
            sink.text().matches("budget of 2 requests").count(),
            1,
            "one line, not one per refused request"
        );
    }

    #[tokio::test]
    async fn a_silent_server_hits_the_first_byte_timeout() {
        let (port, _) = server(Vec::new(), true).await;
        let (mut hooks, sink) = hooks(port, EgressLimits::default());
        let options = RequestOptions {
            first_byte_timeout: Some(Duration::from_millis(200)),
            ..RequestOptions::default()
        };
        let err = exchange(&mut hooks, get(port), Some(options))
            .await
            .expect_err("timeout");
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
        assert!(
            sink.text().contains("no response within"),
            "{}",
            sink.text()
        );
    }

    #[tokio::test]
    async fn a_stalled_body_hits_the_between_bytes_timeout() {
        let mut partial = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_vec();
        partial.extend_from_slice(&[b'z'; 10]);
        let (port, _) = server(partial, true).await;
        let limits = EgressLimits {
            between_bytes_timeout: Duration::from_millis(200),
            ..EgressLimits::default()
        };
        let (mut hooks, sink) = hooks(port, limits);
        let err = exchange(&mut hooks, get(port), None)
            .await
            .expect_err("timeout");
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
        assert!(sink.text().contains("no data for"), "{}", sink.text());
    }

    #[test]
    fn guest_timeouts_are_defaulted_and_capped() {
        let limits = EgressLimits {
            max_timeout: Duration::from_secs(60),
            ..EgressLimits::default()
        };
        let t = limits.resolve_timeouts(None);
        assert_eq!(t.connect, limits.connect_timeout);
        assert_eq!(t.first_byte, limits.first_byte_timeout);
        assert_eq!(t.between_bytes, limits.between_bytes_timeout);
        let t = limits.resolve_timeouts(Some(RequestOptions {
            connect_timeout: Some(Duration::from_secs(3600)),
            first_byte_timeout: Some(Duration::from_secs(1)),
            between_bytes_timeout: None,
        }));
        assert_eq!(t.connect, Duration::from_secs(60));
        assert_eq!(t.first_byte, Duration::from_secs(1));
        assert_eq!(t.between_bytes, limits.between_bytes_timeout);
    }
}
