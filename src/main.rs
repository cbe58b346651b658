//! `portcullis --config FILE` (or `PORTCULLIS_CONFIG`), or an oauth2-proxy command line /
//! `OAUTH2_PROXY_*` environment / `.cfg` file: load and validate the configuration (exit 64
//! listing every problem), start logging, serve HTTP — or HTTPS when `tls_cert_file`
//! is set — until SIGTERM/SIGINT, reloading the configuration on SIGHUP or when it changes.

use portcullis::app::{App, CurrentApp};
use portcullis::clock::SystemClock;
use portcullis::config::{Config, oauth2_proxy};
use portcullis::http::server;
use portcullis::reload::ConfigReloader;
use portcullis::tls;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// jemalloc, with its background thread purging freed pages: glibc's malloc kept 106 MiB of a
/// 4,000-connection burst after the connections closed; jemalloc gives it back (15 MiB). Its
/// decay time is set at build time in `.cargo/config.toml` (1 s instead of 10 s).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// EX_USAGE from sysexits.h: bad configuration.
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: portcullis --config FILE.toml   (or PORTCULLIS_CONFIG=FILE)\n       portcullis --provider=keycloak-oidc --client-id=... [oauth2-proxy flags, OAUTH2_PROXY_* or --config FILE.cfg]\nSee config/example.toml for every key, and docs/deploy.md (Migrating from oauth2-proxy) for the flags."
        );
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("portcullis {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    // oauth2-proxy's flags, OAUTH2_PROXY_* environment or .cfg file: the same deployment,
    // another image (docs/deploy.md, "Migrating from oauth2-proxy").
    if oauth2_proxy::is_oauth2_proxy_invocation(&args, &env) {
        let (config, notices) = match Config::from_oauth2_proxy(&args, &env) {
            Ok(c) => c,
            Err(problems) => return refused("invalid oauth2-proxy configuration", &problems),
        };
        for n in notices {
            eprintln!("portcullis: {n}");
        }
        return start(config, None, env);
    }
    let path = match (args.as_slice(), std::env::var_os("PORTCULLIS_CONFIG")) {
        ([flag, path], _) if flag == "--config" || flag == "-c" => PathBuf::from(path),
        ([one], _) if one.starts_with("--config=") => {
            PathBuf::from(one.trim_start_matches("--config="))
        }
        ([], Some(p)) => PathBuf::from(p),
        _ => {
            eprintln!("usage: portcullis --config FILE   (or PORTCULLIS_CONFIG=FILE)");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match Config::load(&path, &env) {
        Ok(c) => c,
        Err(problems) => {
            let title = format!("invalid configuration ({})", path.display());
            return refused(&title, &problems);
        }
    };
    start(config, Some(path), env)
}

/// Every problem of a refused configuration on stderr, and exit 64.
fn refused(title: &str, problems: &[String]) -> ExitCode {
    eprintln!("portcullis: {title}:");
    for p in problems {
        eprintln!("  - {p}");
    }
    ExitCode::from(EXIT_CONFIG)
}

/// Logging, the runtime, and serving until a shutdown signal. `path`: the native file to
/// watch for reloads (none in oauth2-proxy compatibility mode, whose settings are flags).
fn start(config: Config, path: Option<PathBuf>, env: Vec<(String, String)>) -> ExitCode {
    init_tracing(config.log_json);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, path, env))
}

/// How often the configuration file is checked for changes.
const CONFIG_POLL: std::time::Duration = std::time::Duration::from_secs(1);

async fn run(config: Config, path: Option<PathBuf>, env: Vec<(String, String)>) -> ExitCode {
    let listen = config.listen;
    let grace = config.shutdown_grace;
    // Unreadable or invalid certificate files are a configuration problem, found before
    // anything listens.
    let tls = match config
        .tls
        .as_ref()
        .map(|files| tls::acceptor(files, tls::RELOAD_INTERVAL))
    {
        None => None,
        Some(Ok(acceptor)) => Some(acceptor),
        Some(Err(e)) => {
            eprintln!("portcullis: invalid configuration: tls_cert_file/tls_key_file: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let clock: portcullis::clock::SharedClock = Arc::new(SystemClock);
    let app = match App::new(config, clock.clone()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    app.spawn_background();
    let app = CurrentApp::new(app);
    // SIGHUP or an edited file (a ConfigMap update) reloads everything reloadable.
    match path {
        Some(path) => {
            tokio::spawn(ConfigReloader::new(path, env, app.clone(), clock).run(CONFIG_POLL));
        }
        None => tracing::info!(
            code = "config.no_reload",
            "oauth2-proxy compatibility mode: settings come from flags and environment; restart to change them"
        ),
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("portcullis: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%listen, https = tls.is_some(), "portcullis listening");
    match tls {
        Some(tls) => server::serve_tls(app, listener, tls, shutdown_signal(), grace).await,
        None => server::serve(app, listener, shutdown_signal(), grace).await,
    }
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("PORTCULLIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
