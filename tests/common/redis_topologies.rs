// Shared by test targets, each using the part it needs; a failed start fails the test.
#![allow(dead_code, clippy::expect_used)]
//! Real Redis topologies for tests, from Debian's `redis-server`, on free 127.0.0.1 ports:
//! a master with one replica watched by three Sentinels, and a three-master cluster with a
//! replica each (made by `redis-cli --cluster create`). Every process is killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `redis-server` process (a data node or a Sentinel).
pub struct Node {
    pub port: u16,
    child: Option<Child>,
}

impl Node {
    fn spawn(port: u16, args: &[String]) -> Node {
        let child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server :{port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Node {
            port,
            child: Some(child),
        }
    }

    /// Kills it as a crashed node dies: SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis-cli -p PORT ARGS…`, its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("a bound port")
        .port()
}

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// A data node with a directory of its own (replicas write the master's RDB there).
fn data_node(port: u16, dir: &std::path::Path, extra: &[&str]) -> Node {
    let dir = dir.join(port.to_string());
    std::fs::create_dir_all(&dir).expect("a node directory");
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    Node::spawn(port, &args)
}

fn installed() -> bool {
    let ok = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("!! SKIPPED: redis-server is not installed (scripts/setup installs it) !!");
    }
    ok
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A master, its replica, and three Sentinels (quorum 2) watching it as `mymaster`.
pub struct SentinelSet {
    pub master: Node,
    pub replica: Node,
    pub sentinels: Vec<Node>,
}

pub const SENTINEL_MASTER: &str = "mymaster";
/// How long the Sentinels wait before they call the master down.
pub const DOWN_AFTER_MS: u64 = 1000;

impl SentinelSet {
    pub fn start() -> Option<SentinelSet> {
        if !installed() {
            return None;
        }
        let dir = scratch_dir("sentinel");
        let master_port = free_port();
        let master = data_node(master_port, &dir, &[]);
        let replica_port = free_port();
        let replica = data_node(
            replica_port,
            &dir,
            &["--replicaof", "127.0.0.1", &master_port.to_string()],
        );
        wait_until("the replica's first sync", Duration::from_secs(10), || {
            replica
                .cli(&["INFO", "replication"])
                .contains("master_link_status:up")
        });
        let sentinels = (0..3)
            .map(|i| {
                let port = free_port();
                let conf = dir.join(format!("sentinel-{i}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {SENTINEL_MASTER} {DOWN_AFTER_MS}\n\
                         sentinel failover-timeout {SENTINEL_MASTER} 10000\n\
                         sentinel parallel-syncs {SENTINEL_MASTER} 1\n",
                        dir.display()
                    ),
                )
                .expect("a Sentinel config");
                Node::spawn(port, &[conf.display().to_string(), "--sentinel".into()])
            })
            .collect::<Vec<_>>();
        // Every Sentinel has found the replica and the other Sentinels.
        wait_until(
            "the Sentinels to see each other",
            Duration::from_secs(20),
            || {
                sentinels.iter().all(|s| {
                    let info = s.cli(&["SENTINEL", "MASTER", SENTINEL_MASTER]);
                    let field = |name: &str| {
                        let mut lines = info.lines();
                        while let Some(l) = lines.next() {
                            if l == name {
                                return lines.next().unwrap_or("").to_string();
                            }
                        }
                        String::new()
                    };
                    field("num-slaves") == "1" && field("num-other-sentinels") == "2"
                })
            },
        );
        Some(SentinelSet {
            master,
            replica,
            sentinels,
        })
    }

    /// The Sentinels' addresses, as `session.redis_urls`.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(Node::url).collect()
    }

    /// The port the Sentinels name as the master now.
    pub fn current_master_port(&self) -> Option<u16> {
        let out = self.sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER]);
        out.lines().nth(1)?.trim().parse().ok()
    }
}

/// Three masters with one replica each, every slot assigned, `cluster_state:ok`.
pub struct RedisCluster {
    pub nodes: Vec<Node>,
}

impl RedisCluster {
    pub fn start() -> Option<RedisCluster> {
        if !installed() {
            return None;
        }
        let dir = scratch_dir("cluster");
        let nodes: Vec<Node> = (0..6)
            .map(|_| {
                let port = free_port();
                let conf = dir.join(format!("nodes-{port}.conf"));
                data_node(
                    port,
                    &dir,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &conf.display().to_string(),
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = Command::new("redis-cli")
            .args(&args)
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        wait_until(
            "cluster_state:ok on every node",
            Duration::from_secs(20),
            || {
                nodes
                    .iter()
                    .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
            },
        );
        // A replica that never synced would refuse to take over from its master.
        wait_until(
            "every replica's first sync",
            Duration::from_secs(20),
            || {
                nodes.iter().all(|n| {
                    let info = n.cli(&["INFO", "replication"]);
                    info.contains("role:master") || info.contains("master_link_status:up")
                })
            },
        );
        Some(RedisCluster { nodes })
    }

    /// The seed nodes, as `session.redis_urls` (two are enough to find the rest).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().take(2).map(Node::url).collect()
    }

    /// Every key matching `pattern`, on whichever master holds it.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut all: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.cli(&["ROLE"]).starts_with("master"))
            .flat_map(|n| {
                n.cli(&["KEYS", pattern])
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        all
    }
}
