//! Hot-path benchmarks (issue "Bearer hot path"): what one forward-auth decision costs.
//!
//! * `cold/*` — a bearer token never seen before: `UnverifiedToken::parse` + `verify_with`
//!   against a [`KeySet`] parsed from the test IdP's JWKS, per algorithm: jsonwebtoken 10
//!   (aws-lc-rs) checks the signature with the key's `DecodingKey` and `Validation`;
//!   `parse/*` is the parse step alone.
//! * `cold_raw_aws_lc/*` — the baseline: the same parse, then the signature checked directly
//!   with an aws-lc-rs `ParsedPublicKey` built once (what the verifier did before issue 12).
//!   The gap to `cold/*` is jsonwebtoken's price: its `DecodingKey` holds only bytes, so the
//!   public key is rebuilt on every verification (RS256 +9 % in the issue 12 run).
//! * `decision/bearer_cached` — `Gate::check` for a bearer token already in the
//!   verified-token cache (the common case behind a proxy).
//! * `decision/session_cookie` — `Gate::check` for a fresh session cookie seen before: find,
//!   hash, decoded-session cache hit, revocation and freshness checks, authz.
//! * `decision/session_cookie_first_sight` — what a cookie costs the first time (and every
//!   time without the cache): find, base64, AES-GCM open, JSON, freshness, principal, authz.
//! * `rules/*` — the whole decision through ten `[[rules]]` (the last one decides) for a cached
//!   bearer token: forwarded host/path/method normalised, rules walked, identity checked;
//!   `rules/ten_with_constraints` adds the middleware's `?allowed_groups=` query (parsed once,
//!   then found in the App's cache);
//!   `rules/ambiguous_path` is the slow path for an attacker's `/static/..%2fadmin`.
//! * `token_cache/*` — the verified-token cache's hit path for a real access token as the key:
//!   moka keyed by the token's SHA-256 (what `src/token/verified_cache.rs` uses, and the
//!   digest alone), moka keyed by the whole token with foldhash and with std's SipHash (what
//!   it used before), and alternatives.
//!
//! `cargo bench --bench hot_path` (about a minute); `HOT_PATH_CPU_TIME=1 cargo bench --bench
//! hot_path` measures the thread's CPU time instead of wall-clock time, which is steadier on a
//! machine shared with other builds. The decision paths never await anything pending on a
//! hit, so they are polled once with a no-op waker (asserted `Ready`) instead of paying for an
//! async runtime in the measurement.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/fixture.rs"]
mod fixture;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use fixture::{FixedTtl, Fixture, fixture, poll_ready};
use portcullis::clock::{Clock, SystemClock};
use portcullis::config::Config;
use portcullis::gate::{Credentials, Pass};
use portcullis::identity::Identity;
use portcullis::principal::{PassedTokens, Principal};
use portcullis::rules::{RequestTarget, Verdict};
use portcullis::session::Freshness;
use portcullis::token::jwks::KeySet;
use portcullis::token::jwt::UnverifiedToken;
use portcullis::token::verified_cache::{CacheKey, VerifiedCache};
use portcullis_test_idp::TestUser;
use serde_json::json;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// (label, kid) of the keys the test IdP publishes, one per algorithm.
const ALGS: [(&str, &str); 4] = [
    ("RS256", "rsa-1"),
    ("PS256", "rsa-1-ps"),
    ("ES256", "ec-1"),
    ("EdDSA", "ed-1"),
];

fn cold_signature<M: Measurement>(c: &mut Criterion<M>, f: &Fixture) {
    let jwks = serde_json::to_vec(&f.idp.jwks()).unwrap();
    let keys = KeySet::parse(&jwks).unwrap();
    let alice = TestUser::alice();
    let mut g = c.benchmark_group("cold");
    for (alg, kid) in ALGS {
        let token = f.idp.mint_access_token(&alice, json!({}), kid);
        let check = |token: &str| UnverifiedToken::parse(token)?.verify_with(&keys);
        assert_eq!(check(&token), Ok(()), "{alg}");
        g.bench_function(alg, |b| b.iter(|| check(black_box(&token))));
    }
    g.finish();
    // The baseline: aws-lc-rs keys parsed once, the signature checked with them directly.
    let published = f.idp.jwks();
    let raw_key = |kid: &str| -> ParsedPublicKey {
        let keys = published["keys"].as_array().unwrap();
        let k = keys.iter().find(|k| k["kid"] == kid).unwrap();
        let b = |m: &str| B64.decode(k[m].as_str().unwrap()).unwrap();
        match k["kty"].as_str().unwrap() {
            "RSA" => {
                let alg = match k["alg"].as_str() {
                    Some("PS256") => &sig::RSA_PSS_2048_8192_SHA256,
                    _ => &sig::RSA_PKCS1_2048_8192_SHA256,
                };
                let (n, e) = (b("n"), b("e"));
                sig::RsaPublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                }
                .to_parsed_public_key(alg)
                .unwrap()
            }
            "EC" => {
                let point = [&[4u8][..], &b("x"), &b("y")].concat();
                ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point).unwrap()
            }
            _ => ParsedPublicKey::new(&sig::ED25519, b("x")).unwrap(),
        }
    };
    let mut g = c.benchmark_group("cold_raw_aws_lc");
    for (alg, kid) in ALGS {
        let token = f.idp.mint_access_token(&alice, json!({}), kid);
        let key = raw_key(kid);
        let check = |token: &str| {
            let t = UnverifiedToken::parse(token).is_ok();
            let (input, s) = token.rsplit_once('.').unwrap();
            t && key
                .verify_sig(input.as_bytes(), &B64.decode(s).unwrap())
                .is_ok()
        };
        assert!(check(&token), "{alg}");
        g.bench_function(alg, |b| b.iter(|| check(black_box(&token))));
    }
    g.finish();
    let mut g = c.benchmark_group("parse");
    for (alg, kid) in ALGS {
        let token = f.idp.mint_access_token(&alice, json!({}), kid);
        g.bench_function(alg, |b| {
            b.iter(|| UnverifiedToken::parse(black_box(&token)).is_ok())
        });
    }
    g.finish();
}

fn decisions<M: Measurement>(c: &mut Criterion<M>, f: &Fixture) {
    let gate = f.app.gate();
    // The fixture has no [[rules]]: [authz] decides, as for every request before rules.
    let target = RequestTarget::new(
        Some("app.example.com"),
        Some("GET"),
        Some("/inbox?folder=work"),
        false,
    )
    .unwrap();
    let verdict = f.app.config().rules.evaluate(&target);
    let check = |creds, now| gate.decide(&verdict, None, creds, now);
    let alice = TestUser::alice();
    let mut g = c.benchmark_group("decision");

    // Bearer, cache hit: the first check verifies and caches, the measured ones hit.
    let token = f.idp.mint_access_token(&alice, json!({}), "rsa-1");
    let authorization = format!("Bearer {token}");
    let creds = Credentials {
        authorization: Some(&authorization),
        cookie: None,
        host: Some("app.example.com"),
    };
    f.rt.block_on(check(creds, f.app.now())).unwrap();
    let hits = f.app.metrics().token_cache_hits.load(Relaxed);
    poll_ready(check(creds, f.app.now())).unwrap();
    assert_eq!(f.app.metrics().token_cache_hits.load(Relaxed), hits + 1);
    // Creating the future moves its whole state machine (the slow paths' too).
    println!(
        "future sizes: Gate::decide {} bytes, BearerVerifier::verify {} bytes",
        std::mem::size_of_val(&check(creds, 0)),
        std::mem::size_of_val(&gate.bearer().unwrap().verify(&token, 0)),
    );
    g.bench_function("bearer_cached", |b| {
        b.iter(|| poll_ready(check(black_box(creds), f.app.now())).is_ok())
    });

    // Session cookie: a Keycloak-sized session (ID token and refresh token kept).
    let now = f.app.now();
    let session = f.keycloak_session(&alice, "5e4d3c2b-1a09-4f8e-8d7c-6b5a4f3e2d1c", now);
    let set = gate
        .cookies()
        .write(gate.sealer(), &session, now, Default::default())
        .unwrap();
    assert_eq!(set.len(), 1, "one unchunked cookie");
    let pair = set[0].split(';').next().unwrap();
    let cookie = format!("_ga=GA1.1.123456789.1700000000; theme=dark; {pair}");
    let creds = Credentials {
        authorization: None,
        cookie: Some(&cookie),
        host: Some("app.example.com"),
    };
    let Pass::User(granted) = poll_ready(check(creds, f.app.now())).unwrap() else {
        panic!("the session cookie must pass as alice")
    };
    assert!(granted.set_cookies.is_empty());
    assert_eq!(granted.principal.identity, session.identity);
    println!("session cookie header: {} bytes", cookie.len());
    g.bench_function("session_cookie", |b| {
        b.iter(|| poll_ready(check(black_box(creds), f.app.now())).is_ok())
    });
    g.bench_function("session_cookie_first_sight", |b| {
        b.iter(|| {
            let s = gate
                .cookies()
                .read(gate.sealer(), black_box(&cookie))
                .unwrap();
            assert_eq!(
                s.freshness(f.app.now(), gate.refresh_after()),
                Freshness::Fresh
            );
            let p = Principal::new(
                s.identity,
                PassedTokens {
                    authorization: s.access_token.clone(),
                    access: s.access_token,
                },
                s.access_expires_at.min(s.expires_at),
                &f.app.config().claims,
            );
            match &verdict {
                Verdict::Authenticate { policies, .. } => policies.check(&p.identity).is_ok(),
                _ => false,
            }
        })
    });
    g.finish();
}

/// Ten rules as a platform writes them: public assets, a denied area, per-app groups on
/// several hosts; the request is for the app of the last rule.
const TEN_RULES: &str = r#"
[[rules]]
name = "assets"
paths = ["/static/**", "/favicon.ico"]
action = "public"
[[rules]]
name = "health"
paths = ["/healthz", "/readyz"]
methods = ["GET"]
action = "public"
[[rules]]
name = "denied"
paths = ["/internal/**", "/debug/*/pprof"]
action = "deny"
[[rules]]
name = "grafana-admin"
hosts = ["grafana.example.com"]
paths = ["/admin/**", "/api/*/keys"]
allowed_groups = ["grafana-admins"]
[[rules]]
name = "grafana"
hosts = ["grafana.example.com"]
allowed_groups = ["grafana-users", "admins"]
[[rules]]
name = "n8n-hooks"
hosts = ["hooks.n8n.example.com"]
paths = ["/webhook/*"]
methods = ["POST"]
action = "public"
[[rules]]
name = "n8n"
hosts = [".n8n.example.com"]
allowed_groups = ["automation"]
[[rules]]
name = "ai"
hosts = ["chat.ai.example.com", "models.ai.example.com"]
allowed_roles = ["ai-user"]
[[rules]]
name = "dashboards"
hosts = ["dash.example.com"]
paths = ["/d/**"]
allowed_groups = ["viewers", "admins"]
[[rules]]
name = "app"
hosts = ["app.example.com"]
paths = ["/inbox/**", "/api/**"]
allowed_groups = ["admins"]
"#;

fn rules<M: Measurement>(c: &mut Criterion<M>, f: &Fixture) {
    let base = format!(
        "public_url = \"https://auth.example.com\"\n[oidc]\nissuer_url = \"{}\"\nclient_id = \"portcullis\"\nclient_secret = \"s\"\n[session]\ncookie_secret = \"q2J1dW1seS1ub3QtYS1yZWFsLXNlY3JldC0xMjM0NTY=\"\n{TEN_RULES}",
        f.idp.issuer()
    );
    let config = Config::from_toml(&base, &[]).unwrap();
    let rules = &config.rules;
    assert_eq!(rules.rules().len(), 10);
    let gate = f.app.gate();
    let token = f
        .idp
        .mint_access_token(&TestUser::alice(), json!({}), "rsa-1");
    let authorization = format!("Bearer {token}");
    let creds = Credentials {
        authorization: Some(&authorization),
        cookie: None,
        host: Some("app.example.com"),
    };
    let decide = |uri: &str, constraints: Option<&str>| {
        let target =
            RequestTarget::new(Some("app.example.com"), Some("GET"), Some(uri), false).unwrap();
        let verdict = rules.evaluate(&target);
        // Through the App's cache of parsed constraints, as a request is.
        let constraints = constraints.map(|q| {
            f.app
                .constraints(q, false, portcullis::rules::constraints::from_query)
                .unwrap()
                .unwrap()
        });
        matches!(
            poll_ready(gate.decide(&verdict, constraints.as_deref(), creds, f.app.now())),
            Ok(Pass::User(_))
        )
    };
    // Warm the token cache, and check that the last rule is what decides.
    f.rt.block_on(
        gate.decide(
            &rules.evaluate(
                &RequestTarget::new(Some("app.example.com"), Some("GET"), Some("/inbox"), false)
                    .unwrap(),
            ),
            None,
            creds,
            f.app.now(),
        ),
    )
    .unwrap();
    let target = RequestTarget::new(
        Some("app.example.com"),
        Some("GET"),
        Some("/inbox/42?folder=work"),
        false,
    )
    .unwrap();
    assert_eq!(rules.label(rules.evaluate(&target).decider()), "app");
    assert!(decide("/inbox/42?folder=work", None));
    assert!(decide("/inbox/42", Some("allowed_groups=admins,ops")));
    assert!(decide("/static/..%2finbox/42", None));
    let mut g = c.benchmark_group("rules");
    g.bench_function("ten_bearer_cached", |b| {
        b.iter(|| decide(black_box("/inbox/42?folder=work"), None))
    });
    g.bench_function("ten_with_constraints", |b| {
        b.iter(|| {
            decide(
                black_box("/inbox/42?folder=work"),
                Some("allowed_groups=admins,ops"),
            )
        })
    });
    g.bench_function("ambiguous_path", |b| {
        b.iter(|| decide(black_box("/static/..%2finbox/42"), None))
    });
    g.finish();
}

/// Entries in each cache besides the looked-up one (a busy but not full cache).
const CACHE_FILL: usize = 1000;

/// The moka cache benchmarks: the same cache and contents, one hasher each.
struct MokaCase<'a> {
    others: &'a [Box<str>],
    token: &'a str,
    /// The token with its last character changed: must miss.
    altered: &'a str,
    principal: &'a Arc<Principal>,
    now: u64,
}

impl MokaCase<'_> {
    fn bench<M: Measurement, S: BuildHasher + Clone + Send + Sync + 'static>(
        &self,
        g: &mut criterion::BenchmarkGroup<'_, M>,
        name: &str,
        hasher: S,
    ) {
        let cache = moka::sync::Cache::builder()
            .max_capacity(10_000)
            .expire_after(FixedTtl)
            .build_with_hasher(hasher);
        for k in self.others {
            cache.insert(k.clone(), self.principal.clone());
        }
        cache.insert(self.token.into(), self.principal.clone());
        cache.run_pending_tasks();
        assert!(cache.get(self.token).is_some() && cache.get(self.altered).is_none());
        g.bench_function(name, |b| {
            b.iter(|| {
                cache
                    .get(black_box(self.token))
                    .filter(|p| p.valid_until > self.now)
            })
        });
    }
}

/// One shard: token → (deadline, principal).
type Shard = RwLock<HashMap<Box<str>, (u64, Arc<Principal>), foldhash::fast::RandomState>>;

/// A sharded `RwLock<HashMap>` with foldhash: the floor for a lock-based map (no eviction).
struct ShardedMap {
    hasher: foldhash::fast::RandomState,
    shards: Vec<Shard>,
}

impl ShardedMap {
    fn new(n: usize) -> Self {
        let hasher = foldhash::fast::RandomState::default();
        let shards = (0..n)
            .map(|_| RwLock::new(HashMap::with_hasher(hasher.clone())))
            .collect();
        Self { hasher, shards }
    }
    fn shard(&self, key: &str) -> &Shard {
        let h = self.hasher.hash_one(key);
        &self.shards[(h as usize) % self.shards.len()]
    }
    fn insert(&self, key: &str, v: Arc<Principal>, deadline: u64) {
        self.shard(key)
            .write()
            .unwrap()
            .insert(key.into(), (deadline, v));
    }
    fn get(&self, key: &str, now: u64) -> Option<Arc<Principal>> {
        let map = self.shard(key).read().ok()?;
        map.get(key)
            .filter(|(deadline, _)| *deadline > now)
            .map(|(_, p)| p.clone())
    }
}

/// 128-bit key from two independently seeded foldhash passes (not the whole token!).
struct Hash128(
    foldhash::quality::RandomState,
    foldhash::quality::RandomState,
);

impl Hash128 {
    fn of(&self, token: &str) -> u128 {
        (u128::from(self.0.hash_one(token)) << 64) | u128::from(self.1.hash_one(token))
    }
}

fn token_cache<M: Measurement>(c: &mut Criterion<M>, f: &Fixture) {
    let token: Box<str> = f
        .idp
        .mint_access_token(&TestUser::alice(), json!({}), "rsa-1")
        .into();
    println!(
        "token_cache: key is a real RS256 access token of {} bytes",
        token.len()
    );
    let others: Vec<Box<str>> = (0..CACHE_FILL)
        .map(|i| format!("{}{i:04}", &token[..token.len() - 4]).into())
        .collect();
    let principal = Arc::new(Principal::new(
        Identity {
            sub: "a1b2c3-alice".into(),
            groups: vec!["admins".into()],
            ..Default::default()
        },
        PassedTokens::default(),
        u64::MAX,
        &portcullis::identity::ClaimMapping::default(),
    ));
    let now = SystemClock.now();
    // The same token with its last character changed: must miss.
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let altered: Box<str> = format!("{}{last}", &token[..token.len() - 1]).into();

    let mut g = c.benchmark_group("token_cache");

    let case = MokaCase {
        others: &others,
        token: &token,
        altered: &altered,
        principal: &principal,
        now,
    };
    // 1. std's SipHash (src/token/bearer.rs before foldhash).
    case.bench(&mut g, "moka_siphash", std::hash::RandomState::new());
    // 2. foldhash over the whole key (src/token/verified_cache.rs before the tail hash).
    case.bench(
        &mut g,
        "moka_foldhash",
        foldhash::fast::RandomState::default(),
    );
    // 2b. What src/token/verified_cache.rs does: SHA-256 of the whole token, moka keyed by
    // the digest (before: foldhash over the token's last 32 bytes, the token itself the key).
    let verified = VerifiedCache::new(10_000, Duration::from_secs(300), Arc::new(SystemClock));
    for k in &others {
        verified.insert(CacheKey::of(k), principal.clone());
    }
    verified.insert(CacheKey::of(&token), principal.clone());
    assert!(verified.get(&CacheKey::of(&token), now).is_some());
    assert!(verified.get(&CacheKey::of(&altered), now).is_none());
    g.bench_function("verified_cache_sha256_key", |b| {
        b.iter(|| verified.get(&CacheKey::of(black_box(&token)), now))
    });
    g.bench_function("sha256_of_the_token", |b| {
        b.iter(|| CacheKey::of(black_box(&token)))
    });

    // 3. quick_cache (CLOCK-Pro, sharded), expiry checked on read from the stored deadline.
    let quick: quick_cache::sync::Cache<Box<str>, (u64, Arc<Principal>)> =
        quick_cache::sync::Cache::new(10_000);
    for k in &others {
        quick.insert(k.clone(), (now + 300, principal.clone()));
    }
    quick.insert(token.clone(), (now + 300, principal.clone()));
    assert!(quick.get(&*token).is_some() && quick.get(&*altered).is_none());
    g.bench_function("quick_cache", |b| {
        b.iter(|| {
            quick
                .get(black_box(&*token))
                .filter(|(deadline, _)| *deadline > now)
                .map(|(_, p)| p)
        })
    });

    // 4. Sharded RwLock<HashMap> + foldhash: no eviction, a floor rather than a candidate.
    let sharded = ShardedMap::new(16);
    for k in &others {
        sharded.insert(k, principal.clone(), now + 300);
    }
    sharded.insert(&token, principal.clone(), now + 300);
    assert!(sharded.get(&token, now).is_some() && sharded.get(&altered, now).is_none());
    g.bench_function("rwlock_hashmap_foldhash", |b| {
        b.iter(|| sharded.get(black_box(&token), now))
    });

    // 5. moka keyed by a 128-bit hash of the token: cheap key, but not the whole token.
    let h128 = Hash128(
        foldhash::quality::RandomState::default(),
        foldhash::quality::RandomState::default(),
    );
    let moka_u128: moka::sync::Cache<u128, Arc<Principal>> = moka::sync::Cache::builder()
        .max_capacity(10_000)
        .expire_after(FixedTtl)
        .build();
    for k in &others {
        moka_u128.insert(h128.of(k), principal.clone());
    }
    moka_u128.insert(h128.of(&token), principal.clone());
    moka_u128.run_pending_tasks();
    assert!(moka_u128.get(&h128.of(&token)).is_some());
    g.bench_function("moka_u128_key", |b| {
        b.iter(|| {
            moka_u128
                .get(&h128.of(black_box(&token)))
                .filter(|p| p.valid_until > now)
        })
    });
    g.finish();
}

/// The whole HTTP edge around a decision: routing, the request's context (request id,
/// client address from `X-Forwarded-For`, host, path), its `request` span and the answer's
/// headers, for the request Traefik sends with a cached bearer token. Logged as the binary
/// logs (its subscriber, `telemetry::subscriber`: JSON, `info`), into a sink;
/// `decision/bearer_cached` is the decision alone. `forward_auth_bearer_cached` has traces
/// off (the default), `…_traced` on with every request sampled.
fn edge<M: Measurement>(c: &mut Criterion<M>, f: &Fixture) {
    // Logged as the binary logs: its own subscriber, traces off.
    let logs_only = portcullis::telemetry::subscriber(
        true,
        tracing_subscriber::EnvFilter::new("info"),
        std::io::sink,
        None,
    );
    let logging = tracing::dispatcher::set_default(&logs_only);
    let token = f
        .idp
        .mint_access_token(&TestUser::alice(), json!({}), "rsa-1");
    let authorization = format!("Bearer {token}");
    let request = || {
        http::Request::get("/oauth2/forward-auth")
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
            .header("x-forwarded-uri", "/inbox?folder=work")
            .header("x-forwarded-for", "198.51.100.7")
            .header("authorization", &authorization)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let peer = Some(std::net::IpAddr::from([127, 0, 0, 1]));
    let first =
        f.rt.block_on(portcullis::http::handle(&f.app, peer, request()));
    assert_eq!(first.status(), 200);
    assert!(first.headers().contains_key("x-request-id"));
    let mut g = c.benchmark_group("edge");
    g.bench_function("forward_auth_bearer_cached", |b| {
        b.iter(|| poll_ready(portcullis::http::handle(&f.app, peer, black_box(request()))).status())
    });
    drop(logging);
    // Traces on, every request sampled: spans built, batched and (here) dropped by an
    // exporter whose collector refuses connections.
    let traces = portcullis::telemetry::Traces::new(&portcullis::config::TelemetryConfig {
        traces_url: url::Url::parse("http://127.0.0.1:9/v1/traces").unwrap(),
        sampling_ratio: 1.0,
        service_name: "bench".into(),
    })
    .unwrap();
    let traced = portcullis::telemetry::subscriber(
        true,
        tracing_subscriber::EnvFilter::new("info"),
        std::io::sink,
        Some(&traces),
    );
    let tracing = tracing::dispatcher::set_default(&traced);
    g.bench_function("forward_auth_bearer_cached_traced", |b| {
        b.iter(|| poll_ready(portcullis::http::handle(&f.app, peer, black_box(request()))).status())
    });
    drop(tracing);
    g.finish();
}

fn hot_path<M: Measurement>(c: &mut Criterion<M>) {
    let f = fixture(None);
    cold_signature(c, &f);
    decisions(c, &f);
    edge(c, &f);
    rules(c, &f);
    token_cache(c, &f);
}

/// CPU time of the benchmarking thread: on a shared machine this leaves out the time other
/// processes hold the core, which wall-clock time counts. Everything measured here runs on the
/// calling thread, so on an idle machine both agree.
struct ThreadCpuTime;

/// Formats like criterion's wall-clock measurement (both are nanoseconds).
static WALL_TIME: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> cpu_time::ThreadTime {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, started: cpu_time::ThreadTime) -> Duration {
        started.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}

/// Short runs: the whole bench takes about a minute.
fn config<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

/// `HOT_PATH_CPU_TIME=1` measures thread CPU time instead of wall-clock time.
fn main() {
    if std::env::var_os("HOT_PATH_CPU_TIME").is_some_and(|v| v != "0") {
        let mut c = config(Criterion::default().with_measurement(ThreadCpuTime));
        hot_path(&mut c);
        c.final_summary();
    } else {
        let mut c = config(Criterion::default());
        hot_path(&mut c);
        c.final_summary();
    }
}
