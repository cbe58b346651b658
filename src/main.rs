//! The binary: reads the command line ([`portcullis::cli`]) and carries it out. `run` (the
//! default) loads and validates the configuration (exit 64 listing every problem), starts
//! logging (and traces: [`portcullis::telemetry`]), serves HTTP — or HTTPS when `tls_cert_file` is set — until SIGTERM/SIGINT,
//! reloading a native file on SIGHUP or when it changes. `check` validates the same way and
//! exits; `convert` prints the native TOML of an oauth2-proxy configuration.

use portcullis::app::{App, CurrentApp};
use portcullis::cli::{self, Action, EXIT_USAGE, Source};
use portcullis::clock::{SharedClock, SystemClock};
use portcullis::config::Config;
use portcullis::http::server;
use portcullis::reload::ConfigReloader;
use portcullis::telemetry::{self, Traces};
use portcullis::tls;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// jemalloc, with its background thread purging freed pages: glibc's malloc kept 106 MiB of a
/// 4,000-connection burst after the connections closed; jemalloc gives it back (15 MiB). Its
/// decay time is set at build time in `.cargo/config.toml` (1 s instead of 10 s).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // The process-wide provider every rustls client and server here uses: the IdP's, the
    // trace exporter's, Redis', HTTPS.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: Vec<(String, String)> = std::env::vars().collect();
    match cli::parse(&args, &env) {
        Action::Print(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Action::Usage(text) => {
            eprint!("{text}");
            ExitCode::from(EXIT_USAGE)
        }
        Action::Run(source) => match load(&source, &env) {
            Ok(config) => start(config, source.native_path().map(PathBuf::from), env),
            Err(code) => code,
        },
        Action::Check(source) => check(&source, &env),
        Action::Convert(args) => match cli::convert(&args, &env) {
            Ok(converted) => {
                print_notices(&converted.notices);
                print!("{}", converted.toml);
                ExitCode::SUCCESS
            }
            Err(problems) => refused("cannot convert this oauth2-proxy configuration", &problems),
        },
    }
}

/// The validated configuration, its notices printed; or every problem printed, and exit 64.
fn load(source: &Source, env: &[(String, String)]) -> Result<Config, ExitCode> {
    let (config, notices) = source
        .load(env)
        .map_err(|r| refused(&r.title, &r.problems))?;
    print_notices(&notices);
    Ok(config)
}

fn print_notices(notices: &[String]) {
    for n in notices {
        eprintln!("portcullis: {n}");
    }
}

/// Every problem of a refused configuration on stderr, and exit 64.
fn refused(title: &str, problems: &[String]) -> ExitCode {
    eprintln!("portcullis: {title}:");
    for p in problems {
        eprintln!("  - {p}");
    }
    ExitCode::from(EXIT_USAGE)
}

/// `portcullis check`: what startup does up to listening, then exit.
fn check(source: &Source, env: &[(String, String)]) -> ExitCode {
    let config = match load(source, env) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(async { build(config, Arc::new(SystemClock)) }) {
        Ok(_) => {
            println!("portcullis: configuration OK ({source})");
            ExitCode::SUCCESS
        }
        Err(problems) => refused(&format!("invalid configuration ({source})"), &problems),
    }
}

/// What serving needs from a valid configuration, built before anything listens: the
/// certificates (read and parsed) and the [`App`] (CA bundles read, the session store set
/// up). `check` builds the same and drops it. Nothing here binds a port or contacts the IdP
/// ([`App::spawn_background`] does that). Call inside a Tokio runtime: the certificates'
/// reload poller is started. `Err` lists every problem.
fn build(
    config: Config,
    clock: SharedClock,
) -> Result<(Arc<App>, Option<tokio_rustls::TlsAcceptor>), Vec<String>> {
    let mut problems = Vec::new();
    let tls = match config
        .tls
        .as_ref()
        .map(|files| tls::acceptor(files, tls::RELOAD_INTERVAL))
    {
        None => None,
        Some(Ok(acceptor)) => Some(acceptor),
        Some(Err(e)) => {
            problems.push(format!("tls_cert_file/tls_key_file: {e}"));
            None
        }
    };
    match App::new(config, clock) {
        Ok(app) if problems.is_empty() => Ok((app, tls)),
        Ok(_) => Err(problems),
        Err(e) => {
            problems.push(e.to_string());
            Err(problems)
        }
    }
}

/// Logging, the runtime, and serving until a shutdown signal. `path`: the native file to
/// watch for reloads (none in oauth2-proxy compatibility mode, whose settings are flags).
fn start(config: Config, path: Option<PathBuf>, env: Vec<(String, String)>) -> ExitCode {
    // Built before the runtime: the exporter's blocking client runs on threads of its own.
    let traces = match config.telemetry.as_ref().map(Traces::new).transpose() {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dispatch = telemetry::subscriber(
        config.log_json,
        telemetry::log_filter(&env),
        std::io::stderr,
        traces.as_ref(),
    );
    // Also forwards the `log` crate's records (rustls says why a certificate was refused).
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(dispatch);
    let runtime = match runtime(tokio::runtime::Builder::new_multi_thread()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let code = runtime.block_on(run(config, path, env));
    drop(runtime);
    // The spans of the last requests, including those served during the shutdown grace.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    code
}

/// How often the configuration file is checked for changes.
const CONFIG_POLL: std::time::Duration = std::time::Duration::from_secs(1);

async fn run(config: Config, path: Option<PathBuf>, env: Vec<(String, String)>) -> ExitCode {
    let listen = config.listen;
    let metrics_listen = config.metrics_listen;
    let grace = config.shutdown_grace;
    let clock: SharedClock = Arc::new(SystemClock);
    let (app, tls) = match build(config, clock.clone()) {
        Ok(built) => built,
        Err(problems) => return refused("invalid configuration", &problems),
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
    // Bound before serving, so a taken port fails the start rather than only the metrics.
    let operations = match metrics_listen {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some((addr, l)),
            Err(e) => {
                eprintln!("portcullis: cannot listen on {addr} (metrics_listen): {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    if let Some((addr, operations)) = operations {
        tracing::info!(metrics_listen = %addr, "metrics, /ping and /ready listening");
        tokio::spawn(server::serve_operations(
            app.clone(),
            operations,
            shutdown_signal(),
            grace,
        ));
    }
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

/// A runtime from `builder`, with I/O and timers; on failure, said on stderr.
fn runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("portcullis: cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}
