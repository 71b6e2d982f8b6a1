//! The backplane over TLS (`rediss://`) to a real Redis that speaks only
//! TLS and knows only the ACL user of `docs/security.md`: the instance trusts
//! the CA given with `--redis-ca`, refuses a Redis whose certificate it
//! cannot verify, serves rooms through it with that user's rights alone, and
//! stores no secret in clear.

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

/// The instances' Redis user, as `docs/security.md` gives it.
const ACL: &str = "huddle on >a-long-random-password resetkeys ~huddle:* resetchannels &huddle:* \
     -@all +@read +@write +@pubsub +@scripting +@connection +ping";
const PASSWORD: &str = "a-long-random-password";

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
            // The ACL of docs/security.md, and no default user.
            .args(["--user", "default", "off", "--user"])
            .args(ACL.split_whitespace())
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
    let url = format!("rediss://huddle:{PASSWORD}@127.0.0.1:{port}/0");

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
        &format!("redis://huddle:{PASSWORD}@127.0.0.1:{port}/0"),
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
    let joined = ada
        .join_with(serde_json::json!({"type":"join","v":1,"room":"over-tls","name":"Ada","password":"open sesame"}))
        .await;
    assert_eq!(joined["room"]["locked"], true, "{joined}");
    let resume = joined["resume"].as_str().unwrap();
    // What Redis holds of the room: no password, no resume token in clear.
    let mut state = String::new();
    for _ in 0..100 {
        state = redis_cli(port, &cert_path, &["GET", "huddle:room:over-tls:state"]).await;
        if state.contains("Ada") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(state.contains("Ada"), "the room is not in Redis: {state}");
    assert!(state.contains("$argon2id$"), "{state}");
    assert!(
        !state.contains("open sesame"),
        "the password is in Redis: {state}"
    );
    assert!(
        !state.contains(resume),
        "a resume token is in Redis: {state}"
    );
    let _ = stop.send(());
    server.await.unwrap();
}

/// A command's answer, by Redis's own client over TLS.
async fn redis_cli(port: u16, ca: &std::path::Path, command: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["--tls", "-h", "127.0.0.1", "-p", &port.to_string()])
        .arg("--cacert")
        .arg(ca)
        .args(["--user", "huddle", "--pass", PASSWORD, "--no-auth-warning"])
        .args(command)
        .output()
        .expect("redis-cli (Debian package redis-tools)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
