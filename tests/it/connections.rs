//! The connection limit: at `max_connections`, a new connection waits (it is not served, and
//! nothing crashes) until one closes; then it is served.

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
async fn beyond_max_connections_new_connections_wait_until_one_closes() {
    let h = Harness::start_with(|t| format!("max_connections = 2\n{t}")).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    // The harness's own client holds no connection now; take both slots.
    let mut a = TcpStream::connect(&addr).await.unwrap();
    let mut b = TcpStream::connect(&addr).await.unwrap();
    assert!(ping(&mut a).await.starts_with("HTTP/1.1 200"));
    assert!(ping(&mut b).await.starts_with("HTTP/1.1 200"));
    // The third connection is accepted by the kernel but not served.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 512];
    let waited = tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond the limit");
    // One closes: the waiting connection is served.
    drop(a);
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(b);
    drop(c);
    let m = h.get("/metrics", &[]).await.text().await.unwrap();
    let reached = m
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_connection_limit_reached_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(reached >= 1, "{m}");
    assert!(m.contains("portcullis_open_connections "), "{m}");
}
