//! The backplane over TLS (`rediss://`) to a real Redis that speaks only
//! TLS: the instance trusts the CA given with `--redis-ca`, refuses a Redis
//! whose certificate it cannot verify, and serves rooms through it.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Client;
use huddle_server::backplane::Backplane;
use huddle_server::metrics::Metrics;
use huddle_server::server::{run_with, Context};
use huddle_server::Config;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_backplane_speaks_tls_to_redis() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("huddle-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("redis.pem"), dir.join("redis.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let port = huddle_testkit::free_port();
    let _redis = Killed(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(&cert_path)
            .arg("--tls-key-file")
            .arg(&key_path)
            .arg("--tls-ca-cert-file")
            .arg(&cert_path)
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's is built with TLS)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("rediss://127.0.0.1:{port}/0");

    // Without the CA the certificate cannot be verified: no connection.
    let untrusted = Backplane::connect(
        &url,
        Arc::new(Config::default()),
        Arc::new(Metrics::default()),
    )
    .await;
    assert!(
        untrusted.is_err(),
        "a Redis with an unknown certificate was trusted"
    );
    // Plain text to the TLS port does not work either.
    let plain = Backplane::connect(
        &format!("redis://127.0.0.1:{port}/0"),
        Arc::new(Config::default()),
        Arc::new(Metrics::default()),
    )
    .await;
    assert!(plain.is_err());

    // With it, the instance registers and serves a room through Redis.
    let config = Arc::new(Config {
        redis_ca: Some(cert.cert.pem().into_bytes()),
        ..Config::default()
    });
    let metrics = Arc::new(Metrics::default());
    let backplane = Backplane::connect(&url, config.clone(), metrics.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run_with(
        listener,
        Context::new(config, metrics, backplane),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut ada = Client::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(
        ada.join("over-tls", "Ada").await["room"]["name"],
        "over-tls"
    );
    let stored = redis_keys(port, &cert_path).await;
    assert!(
        stored.contains("over-tls"),
        "the room is not in Redis: {stored}"
    );
    let _ = stop.send(());
    server.await.unwrap();
}

/// The keys Redis holds, read over TLS by Redis's own client.
async fn redis_keys(port: u16, ca: &std::path::Path) -> String {
    let out = Command::new("redis-cli")
        .args(["--tls", "-h", "127.0.0.1", "-p", &port.to_string()])
        .arg("--cacert")
        .arg(ca)
        .args(["--scan"])
        .output()
        .expect("redis-cli (Debian package redis-tools)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
