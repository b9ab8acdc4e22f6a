//! The egress policy: the address classifier, rule matching, and end to end with the
//! `hostile` plugin against servers started here on loopback. Nothing here contacts any
//! address outside the machine.
//!
//! The end-to-end tests need the plugins built (`cargo xtask build-plugins`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use weft_core::contract::{ParamValue, TaskEnding};
use weft_runtime::{
    AddressClass, HttpRule, MemorySink, Plugin, Runtime, RuntimeConfig, TaskReport, TaskRequest,
    classify_ip,
};

// ---------------------------------------------------------------------------------------
// The address classifier.

#[test]
fn classifies_every_non_public_range() {
    use AddressClass::*;
    let cases: &[(&str, AddressClass)] = &[
        // IPv4
        ("127.0.0.1", Loopback),
        ("127.255.255.254", Loopback),
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("169.254.0.1", LinkLocal),
        ("169.254.255.255", LinkLocal),
        ("169.254.169.254", CloudMetadata),
        ("169.254.170.2", CloudMetadata),
        ("10.0.0.1", Private),
        ("10.255.255.255", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("192.168.1.1", Private),
        ("100.64.0.1", SharedCgnat),
        ("100.127.255.255", SharedCgnat),
        ("224.0.0.1", Multicast),
        ("239.255.255.250", Multicast),
        ("255.255.255.255", Broadcast),
        ("192.0.2.1", Documentation),
        ("198.51.100.7", Documentation),
        ("203.0.113.9", Documentation),
        ("240.0.0.1", Reserved),
        ("192.0.0.8", Reserved),
        ("198.18.0.1", Reserved),
        // IPv6
        ("::1", Loopback),
        ("::", Unspecified),
        ("fe80::1", LinkLocal),
        ("febf::1", LinkLocal),
        ("fec0::1", Private),
        ("fc00::1", UniqueLocal),
        ("fd12:3456::1", UniqueLocal),
        ("fd00:ec2::254", CloudMetadata),
        ("ff02::1", Multicast),
        ("2001:db8::1", Documentation),
        ("3fff::1", Documentation),
        ("100::1", Reserved),
        ("2001::1", Reserved),
        // IPv4-mapped IPv6 forms of the IPv4 ranges
        ("::ffff:127.0.0.1", Loopback),
        ("::ffff:0.0.0.0", Unspecified),
        ("::ffff:169.254.169.254", CloudMetadata),
        ("::ffff:169.254.1.1", LinkLocal),
        ("::ffff:10.1.2.3", Private),
        ("::ffff:172.20.0.1", Private),
        ("::ffff:192.168.0.1", Private),
        ("::ffff:100.64.0.1", SharedCgnat),
        ("::ffff:224.0.0.1", Multicast),
        ("::ffff:255.255.255.255", Broadcast),
        ("::ffff:192.0.2.1", Documentation),
        ("::ffff:7f00:1", Loopback),
        // IPv4-compatible (deprecated) forms
        ("::127.0.0.1", Loopback),
        ("::169.254.169.254", CloudMetadata),
        ("::10.0.0.1", Private),
        ("::8.8.8.8", Reserved),
        // NAT64 and 6to4 embeddings
        ("64:ff9b::169.254.169.254", CloudMetadata),
        ("64:ff9b::127.0.0.1", Loopback),
        ("64:ff9b:1::1", Private),
        ("2002:7f00:1::", Loopback),
        ("2002:a9fe:a9fe::1", CloudMetadata),
        ("2002:c0a8:101::1", Private),
    ];
    for (text, class) in cases {
        let ip: IpAddr = text.parse().expect(text);
        assert_eq!(classify_ip(ip), *class, "{text}");
        assert!(!class.is_public(), "{text}");
    }
}

#[test]
fn public_addresses_are_public() {
    for text in [
        "1.1.1.1",
        "8.8.8.8",
        "93.184.216.34",
        "172.15.255.255",
        "172.32.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "169.253.1.1",
        "192.169.0.1",
        "223.255.255.254",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "2001:4860::8888",
    ] {
        let ip: IpAddr = text.parse().expect(text);
        assert_eq!(classify_ip(ip), AddressClass::Public, "{text}");
    }
}

// ---------------------------------------------------------------------------------------
// Rules.

#[test]
fn rules_match_scheme_host_and_port() {
    let cases = [
        ("gitlab.com", "https", "gitlab.com", 443, true),
        ("gitlab.com", "http", "gitlab.com", 80, true),
        ("gitlab.com", "https", "gitlab.com", 8443, false),
        ("gitlab.com", "https", "evil-gitlab.com", 443, false),
        ("gitlab.com", "https", "gitlab.com.evil.net", 443, false),
        ("https://gitlab.com", "http", "gitlab.com", 80, false),
        ("http://gitlab.com:8080", "http", "gitlab.com", 8080, true),
        ("*.example.com", "https", "api.example.com", 443, true),
        ("*.example.com", "https", "a.b.example.com", 443, true),
        ("*.example.com", "https", "example.com", 443, false),
        ("*.example.com", "https", "apiexample.com", 443, false),
        ("127.0.0.1:8080", "http", "127.0.0.1", 8080, true),
        ("127.0.0.1:8080", "http", "127.0.0.1", 8081, false),
        ("[::1]:8080", "http", "[::1]", 8080, true),
        ("[::1]:8080", "http", "::1", 8080, true),
        ("GitLab.COM", "https", "gitlab.com", 443, true),
        ("!private:localhost:8080", "http", "localhost", 8080, true),
        (
            "!private:https://db.internal",
            "https",
            "db.internal",
            443,
            true,
        ),
        (
            "!private:https://db.internal",
            "http",
            "db.internal",
            80,
            false,
        ),
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
fn private_allowance_is_explicit() {
    let cases = [
        ("localhost:8080", false),
        ("127.0.0.1:8080", false),
        ("169.254.169.254", false),
        ("!private:localhost:8080", true),
        ("!private:127.0.0.1:8080", true),
        ("!private:*.corp.example", true),
    ];
    for (rule, private) in cases {
        let parsed = HttpRule::parse(rule).expect(rule);
        assert_eq!(parsed.allows_private(), private, "{rule}");
        // Display round-trips, marker included.
        assert_eq!(
            HttpRule::parse(&parsed.to_string()),
            Ok(parsed.clone()),
            "{rule}"
        );
    }
    let built = HttpRule::parse("localhost:8080")
        .expect("rule")
        .with_private();
    assert_eq!(built.to_string(), "!private:localhost:8080");
    assert_eq!(
        HttpRule::parse("[::1]:80").expect("rule").to_string(),
        "[::1]:80"
    );
}

#[test]
fn bad_rules_are_rejected() {
    for rule in [
        "",
        "ftp://x",
        "host:notaport",
        "a/b",
        "*.",
        "x.*.y",
        "!private:",
        "!private:!private:x",
        "user@host",
        "!public:x",
    ] {
        assert!(HttpRule::parse(rule).is_err(), "{rule:?}");
    }
}

// ---------------------------------------------------------------------------------------
// End to end with `hostile`, against loopback servers.

fn plugin_dir() -> PathBuf {
    match std::env::var_os("WEFT_PLUGIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/target/wasm32-wasip2/release"),
    }
}

fn hostile() -> Plugin {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache),
            ..RuntimeConfig::default()
        })
        .expect("runtime starts")
    });
    let path = plugin_dir().join("hostile.wasm");
    assert!(
        path.exists(),
        "{} is missing: build the plugins first (`cargo xtask build-plugins`)",
        path.display()
    );
    runtime.load_file(&path).expect("plugin loads")
}

/// Runs hostile's `http` mode on `url` with `rules`; returns the report and the log.
async fn fetch(url: &str, rules: &[&str]) -> (TaskReport, String) {
    let sink = Arc::new(MemorySink::default());
    let mut request = TaskRequest::new("hostile-http");
    request.log = sink.clone();
    request
        .params
        .insert("mode".into(), ParamValue::Str("http".into()));
    request
        .params
        .insert("url".into(), ParamValue::Str(url.into()));
    request.grants.http = rules
        .iter()
        .map(|r| HttpRule::parse(r).expect("rule"))
        .collect();
    request.limits.cpu_budget = Duration::from_secs(2);
    request.limits.wall_clock = Some(Duration::from_secs(30));
    request.limits.memory_bytes = 128 << 20;
    request.limits.log_bytes = 1 << 20;
    let report = hostile().run(request).await;
    (report, sink.text())
}

fn blocked(report: &TaskReport, log: &str) -> String {
    match &report.ending {
        TaskEnding::Failure {
            message,
            exit_code: 3,
        } if message.starts_with("blocked:") => message.clone(),
        other => panic!("expected the request to be blocked, got {other:?}\nlog: {log}"),
    }
}

fn escaped(report: &TaskReport, log: &str) -> String {
    match &report.ending {
        TaskEnding::Failure {
            message,
            exit_code: 66,
        } if message.starts_with("ESCAPED:") => message.clone(),
        other => panic!("expected the request to get through, got {other:?}\nlog: {log}"),
    }
}

/// A plain HTTP/1.1 server on 127.0.0.1 that answers every request with `body` and
/// counts the connections it accepted.
struct TestServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

async fn http_server(body: Vec<u8>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_none() {
                    return;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    TestServer { addr, connections }
}

async fn read_head<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(head)
}

#[tokio::test]
async fn metadata_address_without_allowance_is_blocked() {
    let (report, log) = fetch(
        "http://169.254.169.254/latest/meta-data/",
        &["169.254.169.254"],
    )
    .await;
    blocked(&report, &log);
    assert!(
        log.contains("169.254.169.254 is a cloud metadata address")
            && log.contains("!private:169.254.169.254"),
        "log: {log}"
    );
}

#[tokio::test]
async fn metadata_name_without_allowance_is_blocked_before_resolution() {
    let (report, log) = fetch(
        "http://metadata.google.internal/computeMetadata/v1/",
        &["metadata.google.internal"],
    )
    .await;
    blocked(&report, &log);
    assert!(log.contains("cloud metadata service"), "log: {log}");
}

#[tokio::test]
async fn loopback_literal_without_allowance_is_never_connected() {
    let server = http_server(b"hello".to_vec()).await;
    let port = server.addr.port();
    let (report, log) = fetch(
        &format!("http://127.0.0.1:{port}/"),
        &[&format!("127.0.0.1:{port}")],
    )
    .await;
    blocked(&report, &log);
    assert!(
        log.contains("127.0.0.1 is a loopback address")
            && log.contains(&format!("!private:127.0.0.1:{port}")),
        "log: {log}"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        0,
        "no connection"
    );
}

#[tokio::test]
async fn name_resolving_to_loopback_is_blocked() {
    let server = http_server(b"hello".to_vec()).await;
    let port = server.addr.port();
    let (report, log) = fetch(
        &format!("http://localhost:{port}/"),
        &[&format!("localhost:{port}")],
    )
    .await;
    blocked(&report, &log);
    assert!(
        log.contains("localhost resolves to") && log.contains("a loopback address"),
        "log: {log}"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        0,
        "no connection"
    );
}

#[tokio::test]
async fn explicit_private_allowance_reaches_the_server() {
    let server = http_server(b"hello from loopback".to_vec()).await;
    let port = server.addr.port();
    for (url, rule) in [
        (
            format!("http://127.0.0.1:{port}/x"),
            format!("!private:127.0.0.1:{port}"),
        ),
        (
            format!("http://localhost:{port}/y?z=1"),
            format!("!private:http://localhost:{port}"),
        ),
    ] {
        let (report, log) = fetch(&url, &[&rule]).await;
        let message = escaped(&report, &log);
        assert!(message.contains("200"), "{message}");
        assert!(message.contains("19 bytes"), "{message}");
    }
    assert!(server.connections.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn host_not_in_rules_is_blocked() {
    let server = http_server(b"hello".to_vec()).await;
    let port = server.addr.port();
    let cases = [
        // Another host.
        (
            format!("http://127.0.0.2:{port}/"),
            format!("!private:127.0.0.1:{port}"),
        ),
        // Another port.
        (
            format!("http://127.0.0.1:{port}/"),
            format!("!private:127.0.0.1:{}", port.wrapping_add(1)),
        ),
        // Another scheme.
        (
            format!("http://127.0.0.1:{port}/"),
            format!("!private:https://127.0.0.1:{port}"),
        ),
    ];
    for (url, rule) in cases {
        let (report, log) = fetch(&url, &[&rule]).await;
        blocked(&report, &log);
        assert!(
            log.contains("denied: not among this task's allowed hosts"),
            "log: {log}"
        );
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn response_under_the_cap_arrives_whole() {
    // The cap itself is tested with a small limit in `capabilities::http`'s unit tests
    // (a task's `EgressLimits` are not settable through `TaskRequest` yet).
    let body = vec![b'x'; 3 << 20];
    let server = http_server(body).await;
    let port = server.addr.port();
    let (report, log) = fetch(
        &format!("http://127.0.0.1:{port}/big"),
        &[&format!("!private:127.0.0.1:{port}")],
    )
    .await;
    let message = escaped(&report, &log);
    assert!(message.contains(&format!("{} bytes", 3 << 20)), "{message}");
}

const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBvzCCAWWgAwIBAgIUEYm+9o9RnbxHiazH+P0iNAHwcC8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjEwNTczOFoYDzIxMjYxMDI5
MTA1NzM4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAS54HZ+oomhmqH5hbE1uGCM/0JAQwBrTkIzvQcVOOx1Fa3kwRwGEze4
NV8JHAU+LL9wlfhgh26CMoE3T/PJ0pPfo4GSMIGPMB0GA1UdDgQWBBRZcMTqULwH
MZ2DfKQ9kF8iV2k7QzAfBgNVHSMEGDAWgBRZcMTqULwHMZ2DfKQ9kF8iV2k7QzAa
BgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwDAYDVR0TAQH/BAIwADAOBgNVHQ8B
Af8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwCgYIKoZIzj0EAwIDSAAwRQIg
KLOICs2ZGglf7J6Mz4HMYDk4oD61w9unWU9uMwPGErkCIQDCxa3Qdk/SbhvC8ZER
WApkDd7XaGLUOSbnyWdP6lif1g==
-----END CERTIFICATE-----
";

/// Test-only key of the self-signed certificate above (P-256, `CN=localhost`,
/// SAN `localhost` and `127.0.0.1`).
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXg1BE1sszm/0wywM
NuSJ49rM3QgUQyW9d0hWW5wMEKKhRANCAAS54HZ+oomhmqH5hbE1uGCM/0JAQwBr
TkIzvQcVOOx1Fa3kwRwGEze4NV8JHAU+LL9wlfhgh26CMoE3T/PJ0pPf
-----END PRIVATE KEY-----
";

/// An HTTPS server on 127.0.0.1 with the self-signed certificate; counts completed
/// handshakes.
async fn tls_server() -> (SocketAddr, Arc<AtomicUsize>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counter = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                if read_head(&mut tls).await.is_some() {
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, handshakes)
}

#[tokio::test]
async fn https_with_an_untrusted_certificate_fails_verification() {
    let (addr, handshakes) = tls_server().await;
    let port = addr.port();
    for (url, rule) in [
        (
            format!("https://localhost:{port}/"),
            format!("!private:localhost:{port}"),
        ),
        (
            format!("https://127.0.0.1:{port}/"),
            format!("!private:127.0.0.1:{port}"),
        ),
    ] {
        let (report, log) = fetch(&url, &[&rule]).await;
        let message = blocked(&report, &log);
        assert!(
            message.to_ascii_lowercase().contains("certificate"),
            "{message}"
        );
        assert!(
            log.contains("TLS certificate was rejected") && log.contains("UnknownIssuer"),
            "log: {log}"
        );
    }
    assert_eq!(
        handshakes.load(Ordering::SeqCst),
        0,
        "no handshake completed"
    );
}
