//! `seal-sessions`: N distinct session cookies for the scale runs of `scripts/bench`.
//!
//! ```text
//! seal-sessions --config PORTCULLIS.TOML --cookie-file FILE --count N --out FILE
//! ```
//!
//! Opens the session in `--cookie-file` (the `Cookie` header a real login left in the
//! bench's jar) with the configuration's session store, and stores `--count` copies of it,
//! each for a different user (`sub`, `sid` and username suffixed `-<i>`), the way a login
//! stores one (`SessionStore::create`): with the cookie store a cookie sealed with the
//! configuration's secret; with the Redis store a record written to its Redis and the
//! sealed ticket that names it. Writes one `Cookie` header value per line, the same size and
//! shape as the real one, so every line costs the server what a different signed-in user
//! would.

use portcullis::clock::{Clock, SystemClock};
use portcullis::config::Config;
use portcullis::metrics::Metrics;
use portcullis::seal::Sealer;
use portcullis::session::cookie_domains::CookieContext;
use portcullis::session::store::SessionStore;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

struct Args {
    config: PathBuf,
    cookie_file: PathBuf,
    count: usize,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut config, mut cookie_file, mut count, mut out) = (None, None, None, None);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--config" => config = Some(PathBuf::from(value)),
            "--cookie-file" => cookie_file = Some(PathBuf::from(value)),
            "--count" => count = Some(value.parse().map_err(|_| "--count: not a number")?),
            "--out" => out = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        config: config.ok_or("--config is required")?,
        cookie_file: cookie_file.ok_or("--cookie-file is required")?,
        count: count.ok_or("--count is required")?,
        out: out.ok_or("--out is required")?,
    })
}

async fn run(args: &Args) -> Result<(), String> {
    let config = Config::load(&args.config, &[]).map_err(|e| e.join("; "))?;
    let sealer = Arc::new(Sealer::new(config.session.keys.expose()).map_err(|e| e.to_string())?);
    let metrics = Arc::new(Metrics::default());
    let store = SessionStore::new(&config.session, sealer, metrics, Arc::new(SystemClock))
        .map_err(|e| e.to_string())?;
    if let Some(background) = store.background() {
        tokio::spawn(background);
    }
    for _ in 0..500 {
        if store.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let header = std::fs::read_to_string(&args.cookie_file).map_err(|e| e.to_string())?;
    let header = header.trim().trim_start_matches("Cookie:").trim();
    let template = store
        .load(header)
        .await
        .map_err(|e| format!("the session store is unavailable: {e:?}"))?
        .ok_or("the cookie does not hold a session of this configuration's store")?
        .session;
    let now = SystemClock.now();
    let file = std::fs::File::create(&args.out).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::new(file);
    for i in 0..args.count {
        let mut s = template.clone();
        s.identity.sub = format!("{}-{i}", s.identity.sub);
        s.identity.sid = s.identity.sid.as_ref().map(|sid| format!("{sid}-{i}"));
        s.identity.preferred_username = s
            .identity
            .preferred_username
            .as_ref()
            .map(|u| format!("{u}-{i}"));
        let set = store
            .create(&s, now, CookieContext::new(None, None))
            .await
            .map_err(|e| format!("the session store is unavailable: {e:?}"))?
            .ok_or("cannot store a session")?;
        // `Set-Cookie: name=value; Path=…` → the `name=value` pairs a browser sends back.
        let pairs: Vec<&str> = set
            .iter()
            .filter_map(|c| c.as_str().split(';').next())
            .collect();
        writeln!(out, "{}", pairs.join("; ")).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let done = parse_args().and_then(|a| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(run(&a))
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seal-sessions: {e}");
            ExitCode::FAILURE
        }
    }
}
