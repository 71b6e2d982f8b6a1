//! The `huddle-server` binary: parse flags, bind, serve until SIGTERM or ctrl-c.

use std::process::ExitCode;

use std::sync::Arc;

use clap::Parser;
use huddle_server::backplane::Backplane;
use huddle_server::metrics::Metrics;
use huddle_server::server::Context;
use huddle_server::{Args, Config};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    if config.turn.is_some() && config.tokens.is_empty() {
        warn!(
            "TURN is configured without --token: anyone who can reach this server gets TURN \
             credentials, and with them your relay's bandwidth; set --token on a public server"
        );
    }
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            error!("cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    info!("huddle-server listening on {scheme}://{addr}/ws");
    if !huddle_server::ui::is_built() {
        warn!(
            "this binary carries no browser UI (src-ui/dist was not built when it was \
             compiled): browsers opening {addr} get a page saying so, and only the desktop \
             app and huddle-peer can join; build it with `cargo xtask serve` or \
             `npm run build` in src-ui/ before `cargo build`"
        );
    }
    match args.redis.as_deref() {
        None => huddle_server::run(listener, config, shutdown_signal()).await,
        Some(url) => {
            let config = Arc::new(config);
            let metrics = Arc::new(Metrics::default());
            let registry = match Backplane::connect(url, config.clone(), metrics.clone()).await {
                Ok(registry) => registry,
                Err(e) => {
                    error!("{e}");
                    return ExitCode::from(1);
                }
            };
            info!(
                instance = registry.instance().unwrap_or_default(),
                "sharing rooms through Redis"
            );
            let ctx = Context::new(config, metrics, registry);
            huddle_server::server::run_with(listener, ctx, shutdown_signal()).await;
        }
    }
    info!("stopped");
    ExitCode::SUCCESS
}

/// Completes on ctrl-c or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
