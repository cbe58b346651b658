//! `portcullis-test-idp [--port N] [--user alice|bob] [--realm R] [--client-id ID] [--client-secret S]`
//!
//! Runs the test IdP on 127.0.0.1 (random port by default), prints `issuer=<url>` on
//! one line to stdout, and serves until SIGTERM or Ctrl-C. Used by benches and the demo.

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::ExitCode;

use portcullis_test_idp::{IdpOptions, TestIdp, TestUser};

const USAGE: &str = "usage: portcullis-test-idp [--port N] [--user alice|bob] [--realm NAME] \
[--client-id ID] [--client-secret SECRET] [--access-ttl SECS] [--refresh-ttl SECS]";

struct Args {
    port: u16,
    opts: IdpOptions,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        opts: IdpOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--user" => {
                let name = value()?;
                args.opts.user = TestUser::by_name(&name)
                    .ok_or_else(|| format!("--user: unknown user {name:?} (alice|bob)"))?;
            }
            "--realm" => args.opts.realm = value()?,
            "--client-id" => args.opts.client_id = value()?,
            "--client-secret" => args.opts.client_secret = value()?,
            "--access-ttl" => {
                args.opts.access_token_ttl_secs =
                    value()?.parse().map_err(|e| format!("--access-ttl: {e}"))?
            }
            "--refresh-ttl" => {
                args.opts.refresh_token_ttl_secs = value()?
                    .parse()
                    .map_err(|e| format!("--refresh-ttl: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis-test-idp: cannot build runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let idp = match TestIdp::try_start_on_port(args.opts, args.port).await {
            Ok(idp) => idp,
            Err(e) => {
                eprintln!(
                    "portcullis-test-idp: cannot listen on 127.0.0.1:{}: {e}",
                    args.port
                );
                return ExitCode::FAILURE;
            }
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "issuer={}", idp.issuer())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
        drop(out);
        shutdown_signal().await;
        idp.stop().await;
        ExitCode::SUCCESS
    })
}
