//! HTTPS served by Portcullis itself (`tls_cert_file` / `tls_key_file`), for TLS-everywhere
//! deployments. The certificate is **reloaded when the files change** (cert-manager rotates
//! them) without a restart and without touching open connections:
//!
//! - [`ReloadingCertResolver`] hands rustls the current key pair from an [`ArcSwap`] — one
//!   atomic load per handshake, no lock.
//! - [`ReloadingCertResolver::spawn_reload`] polls both files every few seconds, re-opening
//!   them **by path** each time (a Kubernetes Secret volume swaps a `..data` symlink, so a held
//!   file handle would keep reading the old pair). A new pair is swapped in only if both files
//!   parse and the key matches the certificate; a half-written pair keeps the old one
//!   (`tls.reload_failed`), a good one replaces it (`tls.reloaded`).
//! - Connections already open keep the certificate they were handshaken with.
//!
//! Parsing ([`parse_pair`]) is pure; only [`read_pair`] touches the file system. Errors name
//! the file, never its content.

use crate::config::TlsFiles;
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the certificate files are checked for changes in production.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// ALPN protocols offered, most preferred first (RFC 7301): HTTP/2, then HTTP/1.1.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate found ({reason})", path.display())]
    NoCertificate { path: PathBuf, reason: String },
    #[error(
        "{}: no PEM private key found (expected PKCS#8, PKCS#1 or SEC1) ({reason})",
        path.display()
    )]
    NoKey { path: PathBuf, reason: String },
    #[error("{}: unusable private key: {source}", path.display())]
    Key {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "the private key in {} does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot build the TLS server configuration: {0}")]
    Config(rustls::Error),
}

/// The raw bytes of a certificate/key pair as read from disk.
pub struct PemPair {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// Identifies the content of a pair, so an unchanged pair is not re-parsed (or re-reported as
/// broken) on every poll. SHA-256 of both files; no `Debug`, it is derived from the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PairFingerprint([u8; 32]);

impl PemPair {
    pub fn fingerprint(&self) -> PairFingerprint {
        use aws_lc_rs::digest::{Context, SHA256};
        let mut ctx = Context::new(&SHA256);
        for part in [&self.cert, &self.key] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        PairFingerprint(out)
    }
}

/// Reads both files, by path, now.
pub fn read_pair(files: &TlsFiles) -> Result<PemPair, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok(PemPair {
        cert: read(&files.cert)?,
        key: read(&files.key)?,
    })
}

/// Parses a PEM chain (leaf first) and private key, and checks that they belong together.
/// `files` only names the files in errors.
pub fn parse_pair(
    pair: &PemPair,
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(&pair.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: files.cert.clone(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
            reason: "the file holds no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&pair.key).map_err(|e| TlsError::NoKey {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::Key {
            path: files.key.clone(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    // A key whose public half cannot be extracted cannot be checked; every key aws-lc-rs
    // loads can, so "unknown" is refused as well.
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
    })?;
    Ok(certified)
}

/// What one poll of the files did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// Same content as the pair last looked at.
    Unchanged,
    /// A new, valid pair is now served to new connections.
    Reloaded,
    /// The files changed but the new pair is unusable; the previous pair is still served.
    Failed(TlsError),
}

/// rustls certificate resolver serving the most recently loaded valid pair.
pub struct ReloadingCertResolver {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for ReloadingCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertResolver")
            .field("cert", &self.files.cert)
            .field("key", &self.files.key)
            .finish_non_exhaustive()
    }
}

impl ReloadingCertResolver {
    /// Loads the pair once; any problem is a startup (configuration) error. Returns the
    /// fingerprint of what was loaded, to start [`Self::reload_if_changed`] from.
    pub fn load(
        files: TlsFiles,
        provider: Arc<CryptoProvider>,
    ) -> Result<(Arc<Self>, PairFingerprint), TlsError> {
        let pair = read_pair(&files)?;
        let key = parse_pair(&pair, &files, &provider)?;
        let resolver = ReloadingCertResolver {
            files,
            provider,
            current: ArcSwap::from_pointee(key),
        };
        Ok((Arc::new(resolver), pair.fingerprint()))
    }

    /// The pair new handshakes get.
    /// Re-reads the files; swaps in the new pair if it changed since `seen` and is valid.
    /// `seen` is updated either way, so a broken pair is reported once, not on every poll.
    pub fn reload_if_changed(&self, seen: &mut PairFingerprint) -> ReloadOutcome {
        let pair = match read_pair(&self.files) {
            Ok(p) => p,
            // A file missing mid-rotation: keep serving, look again next time.
            Err(e) => return ReloadOutcome::Failed(e),
        };
        let fingerprint = pair.fingerprint();
        if fingerprint == *seen {
            return ReloadOutcome::Unchanged;
        }
        *seen = fingerprint;
        match parse_pair(&pair, &self.files, &self.provider) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                ReloadOutcome::Reloaded
            }
            Err(e) => ReloadOutcome::Failed(e),
        }
    }

    /// Polls the files every `interval` until the resolver is dropped.
    pub fn spawn_reload(
        self: &Arc<Self>,
        mut seen: PairFingerprint,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            // Report a failure once per distinct error, not on every poll.
            let mut last_failure: Option<String> = None;
            loop {
                ticker.tick().await;
                let Some(resolver) = weak.upgrade() else {
                    return;
                };
                match resolver.reload_if_changed(&mut seen) {
                    ReloadOutcome::Unchanged => last_failure = None,
                    ReloadOutcome::Reloaded => {
                        last_failure = None;
                        tracing::info!(
                            code = "tls.reloaded",
                            cert = %resolver.files.cert.display(),
                            "new TLS certificate loaded; new connections use it"
                        );
                    }
                    ReloadOutcome::Failed(e) => {
                        let text = e.to_string();
                        if last_failure.as_deref() != Some(text.as_str()) {
                            tracing::warn!(
                                code = "tls.reload_failed",
                                error = %text,
                                "TLS certificate files changed but cannot be used; still serving the previous certificate"
                            );
                        }
                        last_failure = Some(text);
                    }
                }
            }
        })
    }

    /// The rustls server configuration: this resolver, ALPN h2 + http/1.1, safe default
    /// protocol versions (TLS 1.2 and 1.3).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Loads `files`, starts the reload poller (checking every `interval`; call inside a Tokio
/// runtime), and returns the acceptor for [`crate::http::server::serve_tls`] (its config holds
/// the resolver). Errors are configuration errors (exit 64).
pub fn acceptor(
    files: &TlsFiles,
    interval: Duration,
) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (resolver, seen) = ReloadingCertResolver::load(files.clone(), provider)?;
    let config = resolver.server_config()?;
    resolver.spawn_reload(seen, interval);
    Ok(tokio_rustls::TlsAcceptor::from(config))
}
