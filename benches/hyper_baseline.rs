//! `hyper-baseline --listen ADDR`: the smallest honest hyper 1 server, the ceiling that
//! `scripts/bench` measures Portcullis against. Every request gets `200 OK` with an empty
//! body; nothing is parsed, logged or allocated beyond what hyper itself does.
//!
//! It serves connections the way Portcullis does (`src/http/server.rs`) so that the ratio
//! measures Portcullis' own work and not a different server setup: the tokio
//! **multi-thread** runtime (sized by the CPU affinity mask, so one worker when pinned to
//! one core, like Portcullis under `taskset`), hyper-util's `auto` builder (HTTP/1.1 with
//! HTTP/2 prior-knowledge detection), keep-alive and `TCP_NODELAY` on every accepted socket.
//! It leaves out what is Portcullis' choice rather than hyper's: the header-read timeout,
//! the header size cap and graceful shutdown.
//!
//! `--spin-ns N` makes it busy-wait N nanoseconds in every request before answering: a
//! calibration of the machine, showing what a given amount of extra work per request costs
//! in req/s under `scripts/bench`'s load (see the README's performance section).
//!
//! Built only with `--features bench-tools` (see `Cargo.toml`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

const USAGE: &str =
    "usage: hyper-baseline --listen ADDR [--spin-ns N]   (e.g. --listen 127.0.0.1:8080)";

fn parse_args() -> Result<(SocketAddr, Duration), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = |addr: &String| {
        addr.parse()
            .map_err(|e| format!("--listen {addr:?}: {e}\n{USAGE}"))
    };
    let spin = |n: &String| {
        n.parse()
            .map(Duration::from_nanos)
            .map_err(|e| format!("--spin-ns {n:?}: {e}\n{USAGE}"))
    };
    match args.as_slice() {
        [flag, addr] if flag == "--listen" => Ok((listen(addr)?, Duration::ZERO)),
        [flag, addr, s, n] if flag == "--listen" && s == "--spin-ns" => {
            Ok((listen(addr)?, spin(n)?))
        }
        _ => Err(USAGE.to_owned()),
    }
}

async fn ok(
    _req: Request<hyper::body::Incoming>,
    spin: Duration,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    if !spin.is_zero() {
        let start = Instant::now();
        while start.elapsed() < spin {
            std::hint::spin_loop();
        }
    }
    Ok(Response::new(Empty::new()))
}

async fn serve(listener: TcpListener, spin: Duration) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("hyper-baseline: accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = builder
            .serve_connection(TokioIo::new(stream), service_fn(move |req| ok(req, spin)))
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn main() -> ExitCode {
    let (listen, spin) = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hyper-baseline: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hyper-baseline: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        serve(listener, spin).await;
        ExitCode::SUCCESS
    })
}
