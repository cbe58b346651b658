//! HTTPS with certificate rotation: Portcullis serves a test certificate; the files are replaced
//! the way kubelet updates a Secret volume (new directory, atomic `..data` symlink swap); new
//! connections get the new certificate without a restart, open connections keep working, and a
//! broken pair is ignored. Invalid files at startup exit 64.

use crate::support::base_toml;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis::app::App;
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis_test_idp::{IdpOptions, TestIdp};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const POLL: Duration = Duration::from_millis(100);

/// A test CA, and leaf certificates for `localhost` issued by it (as cert-manager would).
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        Arc::new(roots)
    }
}

/// A Secret volume laid out like kubelet's: `tls.crt -> ..data/tls.crt`, `..data -> ..gen-N`.
struct SecretVolume {
    dir: PathBuf,
    generation: u32,
}

impl SecretVolume {
    fn new() -> SecretVolume {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("portcullis-tls-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
        }
        SecretVolume { dir, generation: 0 }
    }

    /// Writes a new generation and swaps `..data` to it atomically (symlink + rename).
    fn publish(&mut self, cert_pem: &str, key_pem: &str) {
        self.generation += 1;
        let generation = format!("..gen-{}", self.generation);
        let target = self.dir.join(&generation);
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("tls.crt"), cert_pem).unwrap();
        std::fs::write(target.join("tls.key"), key_pem).unwrap();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&generation, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }

    fn toml(&self, issuer: &str) -> String {
        format!(
            "tls_cert_file = {:?}\ntls_key_file = {:?}\n{}",
            self.dir.join("tls.crt"),
            self.dir.join("tls.key"),
            base_toml(issuer)
        )
    }
}

impl Drop for SecretVolume {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts Portcullis over HTTPS from `toml` (its `tls_*_file` keys), re-reading every `POLL`.
async fn start_https(toml: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = Config::from_toml(toml, &[]).expect("test config is valid");
    let files = config.tls.clone().expect("tls configured");
    let acceptor = portcullis::tls::acceptor(&files, POLL).unwrap();
    let app = App::new(config, Arc::new(SystemClock)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(portcullis::http::server::serve_tls(
        portcullis::app::CurrentApp::new(app),
        listener,
        acceptor,
        async {
            let _ = rx.await;
        },
        Duration::from_secs(1),
    ));
    (addr, tx)
}

async fn connect(
    addr: SocketAddr,
    roots: Arc<RootCertStore>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with Portcullis")
}

/// The end-entity certificate the server presented.
fn served(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

async fn http1_client(stream: TlsStream<TcpStream>) -> http1::SendRequest<Empty<Bytes>> {
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

fn ping_request() -> http::Request<Empty<Bytes>> {
    http::Request::get("https://localhost/ping")
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap()
}

async fn ping(sender: &mut http1::SendRequest<Empty<Bytes>>) -> http::StatusCode {
    sender.ready().await.unwrap();
    sender.send_request(ping_request()).await.unwrap().status()
}

/// Connects until the server presents `want` (the poller runs every `POLL`).
async fn wait_for_cert(addr: SocketAddr, roots: &Arc<RootCertStore>, want: &CertificateDer<'_>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stream = connect(addr, roots.clone(), &[b"http/1.1"]).await;
        if served(&stream) == *want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(POLL / 2).await;
    }
}

#[tokio::test]
async fn https_reloads_rotated_certificate_without_restart() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let ca = TestCa::new();
    let roots = ca.roots();
    let (a, b) = (ca.leaf(), ca.leaf());
    let mut volume = SecretVolume::new();
    volume.publish(&a.cert_pem, &a.key_pem);
    let (addr, _shutdown) = start_https(&volume.toml(&idp.issuer())).await;

    // Certificate A, and GET /ping over HTTPS (HTTP/1.1).
    let first = connect(addr, roots.clone(), &[b"http/1.1"]).await;
    assert!(served(&first) == a.der, "certificate A is served");
    let mut open_before_swap = http1_client(first).await;
    assert_eq!(ping(&mut open_before_swap).await, 200);

    // ALPN: a client offering h2 gets HTTP/2.
    let h2 = connect(addr, roots.clone(), &[b"h2", b"http/1.1"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2_sender, h2_conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(h2))
        .await
        .unwrap();
    tokio::spawn(h2_conn);
    let resp = h2_sender.send_request(ping_request()).await.unwrap();
    assert_eq!(resp.status(), 200);

    // Rotation to B: new connections get B, the connection opened on A keeps working.
    volume.publish(&b.cert_pem, &b.key_pem);
    wait_for_cert(addr, &roots, &b.der).await;
    assert_eq!(
        ping(&mut open_before_swap).await,
        200,
        "old connection survives the swap"
    );
    let mut on_b = http1_client(connect(addr, roots.clone(), &[b"http/1.1"]).await).await;
    assert_eq!(ping(&mut on_b).await, 200);

    // A broken pair (C's certificate with B's key, as if half-written): B stays.
    let c = ca.leaf();
    volume.publish(&c.cert_pem, &b.key_pem);
    tokio::time::sleep(POLL * 5).await;
    let still = connect(addr, roots.clone(), &[b"http/1.1"]).await;
    assert!(
        served(&still) == b.der,
        "a mismatched pair must not replace B"
    );
    // Unparseable key: B stays.
    volume.publish(&c.cert_pem, "-----BEGIN PRIVATE KEY-----\ntruncat");
    tokio::time::sleep(POLL * 5).await;
    let still = connect(addr, roots.clone(), &[b"http/1.1"]).await;
    assert!(served(&still) == b.der, "a garbled key must not replace B");

    // Once the pair is complete, C is picked up.
    volume.publish(&c.cert_pem, &c.key_pem);
    wait_for_cert(addr, &roots, &c.der).await;
}

#[test]
fn invalid_certificate_files_at_startup_exit_64() {
    let ca = TestCa::new();
    let (a, b) = (ca.leaf(), ca.leaf());
    let mut volume = SecretVolume::new();
    volume.publish(&a.cert_pem, &b.key_pem);
    let file = volume.dir.join("portcullis.toml");
    std::fs::write(&file, volume.toml("https://idp.example.com")).unwrap();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(&file)
        .env_remove("PORTCULLIS_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("portcullis started with a mismatched certificate and key");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(64), "{err}");
    assert!(err.contains("does not match the certificate"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "key material echoed:\n{err}");

    // A missing key file is named.
    let files = portcullis::config::TlsFiles {
        cert: volume.dir.join("tls.crt"),
        key: volume.dir.join("missing.key"),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let err = portcullis::tls::ReloadingCertResolver::load(files, provider)
        .err()
        .expect("missing key refused")
        .to_string();
    assert!(err.contains("missing.key"), "{err}");
}
