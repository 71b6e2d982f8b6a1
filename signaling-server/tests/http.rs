//! HTTP beside the socket, the handshake deadline, origin checks, TLS, and
//! graceful shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{get, Client, Closed, TestServer};
use huddle_server::Config;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn healthz_metrics_and_not_found() {
    let server = TestServer::default().await;
    let health = get(server.addr, "/healthz").await;
    assert!(
        health.starts_with("HTTP/1.1 200 OK\r\n") && health.ends_with("\r\n\r\nok\n"),
        "{health}"
    );
    let (mut a, _) = server.join("r", "A").await;
    let (_b, _) = server.join("r", "B").await;
    a.expect("peer_joined").await;
    a.send(json!({"type":"call_join","video":true})).await;
    a.expect("call_joined").await;
    a.send(json!({"type":"dance"})).await;
    a.expect("call_started").await;
    a.expect_error("unknown_type").await;
    let metrics = get(server.addr, "/metrics").await;
    for line in [
        "huddle_connections 2",
        "huddle_rooms 1",
        "huddle_members 2",
        "huddle_calls 1",
        "huddle_messages_received_total{type=\"join\"} 2",
        "huddle_messages_received_total{type=\"call_join\"} 1",
        "huddle_messages_received_total{type=\"invalid\"} 1",
        "huddle_messages_sent_total{type=\"call_started\"} 2",
        "huddle_errors_total{code=\"unknown_type\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    assert!(get(server.addr, "/nope.txt")
        .await
        .starts_with("HTTP/1.1 404"));
    assert!(get(server.addr, "/ws").await.starts_with("HTTP/1.1 426"));
}

#[tokio::test]
async fn the_browser_ui_is_served_for_app_routes_and_nothing_else_leaks() {
    assert!(
        huddle_server::ui::is_built(),
        "the UI is not built: run `npm install && npm run build` in src-ui/ (`cargo xtask test` does)"
    );
    let server = TestServer::default().await;
    for path in ["/", "/r/standup", "/r/Stand%20up?x=1"] {
        let page = get(server.addr, path).await;
        assert!(page.starts_with("HTTP/1.1 200"), "{path}: {page}");
        assert!(page.contains("Content-Type: text/html"), "{path}");
        assert!(page.contains(r#"<div id="root">"#), "{path}");
        // A hostile page can neither frame it nor learn the room from Referer.
        assert!(page.contains("frame-ancestors 'none'"), "{path}: {page}");
        assert!(page.contains("script-src 'self';"), "{path}");
        assert!(page.contains("Referrer-Policy: no-referrer"), "{path}");
        assert!(!page.contains("unsafe-eval"), "{path}");
    }
    // The page's own script is served, with a long cache life.
    let page = get(server.addr, "/").await;
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("index.html names its script");
    let js = get(server.addr, script).await;
    assert!(js.starts_with("HTTP/1.1 200"), "{script}");
    assert!(js.contains("Content-Type: text/javascript"));
    assert!(js.contains("immutable"));
    for path in [
        "/assets/missing-123.js",
        "/../Cargo.toml",
        "/assets/../../Cargo.toml",
        "/.env",
    ] {
        assert!(
            get(server.addr, path).await.starts_with("HTTP/1.1 404"),
            "{path}"
        );
    }
    assert!(get(server.addr, "/ws?x=1")
        .await
        .starts_with("HTTP/1.1 426"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_handshake_is_dropped() {
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closes without answering");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Others are unaffected.
    server.join("r", "A").await;
}

#[tokio::test]
async fn origins_are_checked_when_configured() {
    let config = Config {
        allowed_origins: vec!["https://huddle.example".into()],
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let request = |origin: &str| {
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                server.url(),
            )
            .unwrap();
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        req
    };
    let refused = tokio_tungstenite::connect_async(request("https://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    assert!(
        tokio_tungstenite::connect_async(request("https://huddle.example"))
            .await
            .is_ok()
    );
    // Native clients send no Origin.
    server.join("r", "native").await;
}

#[tokio::test]
async fn too_many_connections_from_one_address() {
    let server = TestServer::start(Config {
        max_connections_per_ip: 2,
        ..Config::default()
    })
    .await;
    let _a = server.connect().await;
    let _b = server.connect().await;
    match tokio_tungstenite::connect_async(server.url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429)
        }
        other => panic!("expected 429, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001() {
    let server = TestServer::default().await;
    let (mut a, _) = server.join("r", "A").await;
    let mut lobby = server.connect().await;
    lobby.send(json!({"type":"ping"})).await;
    lobby.expect("pong").await;
    let addr = server.addr;
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(
        a.closed().await,
        Closed::Frame(1001, "server shutting down".into())
    );
    assert_eq!(
        lobby.closed().await,
        Closed::Frame(1001, "server shutting down".into())
    );
    stopping.await.unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn tls_serves_wss_and_https_on_one_port() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("huddle-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = huddle_server::tls::server_config(&cert_path, &key_path).unwrap();
    let server = TestServer::start(Config {
        tls: Some(tls),
        ..Config::default()
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut https = connector.connect(name.clone(), tcp).await.unwrap();
    https
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    https.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");

    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls_stream = connector.connect(name, tcp).await.unwrap();
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (ws, _) = tokio_tungstenite::client_async(url, tls_stream)
        .await
        .unwrap();
    let mut ws = ws;
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        r#"{"type":"ping","rid":"tls"}"#.into(),
    ))
    .await
    .unwrap();
    let pong = ws.next().await.unwrap().unwrap();
    assert_eq!(
        pong.into_text().unwrap().as_str(),
        r#"{"type":"pong","rid":"tls"}"#
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Client::connect; // keep the harness's helpers in use
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let config = Config {
        metrics_token: Some("m3trics".into()),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    assert!(get(server.addr, "/metrics")
        .await
        .starts_with("HTTP/1.1 401"));
    let raw = |auth: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(raw("Authorization: Bearer wrong\r\n")
        .await
        .starts_with("HTTP/1.1 401"));
    let ok = raw("Authorization: Bearer m3trics\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("huddle_connections"));
    // /healthz stays open for load balancers.
    assert!(get(server.addr, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
}
