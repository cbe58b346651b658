//! The connection limit: at `max_connections`, idle connections make room for new ones (the
//! unit tests in `src/http/connections.rs` cover busy connections, which are never closed,
//! and a newcomer that waits for one to become idle).

use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn ping(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 512];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn at_max_connections_an_idle_connection_makes_room_for_a_new_one() {
    let h = Harness::start_with(|t| format!("max_connections = 2\n{t}")).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    // The harness's own client holds no connection now; take both slots, leave them idle.
    let mut a = TcpStream::connect(&addr).await.unwrap();
    assert!(ping(&mut a).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut b = TcpStream::connect(&addr).await.unwrap();
    assert!(ping(&mut b).await.starts_with("HTTP/1.1 200"));
    // A third client is served at once: the connection idle the longest (`a`) was closed.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(2), ping(&mut c))
        .await
        .expect("served without waiting for an idle connection to time out");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(2), a.read(&mut buf))
        .await
        .expect("the idle connection is closed, not left hanging");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    // `b` was quiet for a shorter time and is still served.
    assert!(ping(&mut b).await.starts_with("HTTP/1.1 200"));
    drop((a, b, c));
    let m = h.get("/metrics", &[]).await.text().await.unwrap();
    let value = |name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing: {m}"))
    };
    assert!(
        value("portcullis_connection_limit_reached_total ") >= 1,
        "{m}"
    );
    assert!(
        value("portcullis_idle_connections_closed_total ") >= 1,
        "{m}"
    );
    assert!(m.contains("portcullis_open_connections "), "{m}");
}
