use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

#[test]
fn a_proxys_plain_request_id_is_kept() {
    for id in ["abc", "0f1e-22:33/x+y=z@h", "req_1.2~3", &"a".repeat(128)] {
        assert_eq!(RequestId::choose(Some(id), None).as_str(), id);
    }
}

#[test]
fn an_unloggable_request_id_is_replaced_by_a_new_one() {
    let long = "a".repeat(129);
    for id in ["", "a b", "x\"y", "x\ny", "<script>", "é", long.as_str()] {
        let chosen = RequestId::choose(Some(id), None);
        assert_ne!(chosen.as_str(), id);
        assert_eq!(chosen.as_str().len(), 32, "{id:?}");
        assert!(chosen.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

#[test]
fn without_an_id_the_trace_id_of_traceparent_is_the_request_id() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(
        RequestId::choose(None, Some(tp)).as_str(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    // The proxy's own id wins over the trace id.
    assert_eq!(RequestId::choose(Some("r-1"), Some(tp)).as_str(), "r-1");
    // A later version may add fields; version 00 may not.
    assert!(
        RequestId::from_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
            .is_some()
    );
}

#[test]
fn a_malformed_traceparent_is_not_used() {
    for tp in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        assert!(RequestId::from_traceparent(tp).is_none(), "{tp:?}");
    }
}

#[test]
fn generated_ids_do_not_repeat() {
    let ids: std::collections::HashSet<String> = (0..10_000)
        .map(|_| RequestId::generate().to_string())
        .collect();
    assert_eq!(ids.len(), 10_000);
}

#[test]
fn the_context_keeps_no_query() {
    let c = RequestContext::new(
        RequestId::generate(),
        None,
        Some("app.example.com"),
        Some("/oauth2/callback?code=secret&state=s"),
    );
    assert_eq!(c.path.as_deref(), Some("/oauth2/callback"));
    let c = RequestContext::new(RequestId::generate(), None, None, Some("/a#frag"));
    assert_eq!(c.path.as_deref(), Some("/a"));
}

#[tokio::test]
async fn the_context_is_visible_inside_its_scope_only() {
    let ctx = RequestContext::new(RequestId::choose(Some("r-7"), None), None, None, None);
    let seen = scope(ctx, async {
        tokio::task::yield_now().await;
        with_current(|c| c.id.to_string())
    })
    .await;
    assert_eq!(seen.as_deref(), Some("r-7"));
    assert_eq!(with_current(|c| c.id.to_string()), None);
}

#[test]
fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
    let trusted = nets(&["10.0.0.0/8"]);
    assert_eq!(
        client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted),
        Some(ip("203.0.113.9"))
    );
}

#[test]
fn behind_trusted_proxies_the_first_untrusted_address_from_the_right_is_the_client() {
    let trusted = nets(&["10.0.0.0/8"]);
    // The client wrote 6.6.6.6 itself; Traefik (10.0.0.2) appended the address it saw.
    assert_eq!(
        client_ip(
            Some(ip("10.0.0.2")),
            Some("6.6.6.6, 198.51.100.7, 10.0.0.5"),
            &trusted
        ),
        Some(ip("198.51.100.7"))
    );
    assert_eq!(
        client_ip(Some(ip("10.0.0.2")), Some("[2001:db8::1]:443"), &trusted),
        Some(ip("2001:db8::1"))
    );
    assert_eq!(
        client_ip(Some(ip("10.0.0.2")), Some("198.51.100.7:5000"), &trusted),
        Some(ip("198.51.100.7"))
    );
    // Only proxies: the leftmost is as far as anyone can tell.
    assert_eq!(
        client_ip(Some(ip("10.0.0.2")), Some("10.1.1.1, 10.0.0.5"), &trusted),
        Some(ip("10.1.1.1"))
    );
    // Garbage ends the walk: the last good address stands.
    assert_eq!(
        client_ip(Some(ip("10.0.0.2")), Some("nonsense, 10.0.0.5"), &trusted),
        Some(ip("10.0.0.5"))
    );
    // No header: the proxy itself.
    assert_eq!(
        client_ip(Some(ip("10.0.0.2")), None, &trusted),
        Some(ip("10.0.0.2"))
    );
}

#[test]
fn without_trusted_proxies_the_rightmost_forwarded_address_is_the_client() {
    assert_eq!(
        client_ip(Some(ip("127.0.0.1")), Some("6.6.6.6, 198.51.100.7"), &[]),
        Some(ip("198.51.100.7"))
    );
    assert_eq!(
        client_ip(Some(ip("::ffff:192.0.2.1")), None, &[]),
        Some(ip("192.0.2.1"))
    );
}
