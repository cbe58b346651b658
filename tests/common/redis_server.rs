// Shared by two test targets, each using the part it needs; a failed start fails the test.
#![allow(dead_code, clippy::expect_used)]
//! A real `redis-server` for tests, on a free 127.0.0.1 port, stopped on drop. Shared by the
//! integration suite (`tests/it`) and the end-to-end fault scenarios (`tests/e2e`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    /// Where it keeps its append-only file, if it persists.
    dir: Option<PathBuf>,
    child: Option<Child>,
}

impl RedisServer {
    /// A throwaway server without persistence. `None` (with a loud message) only when
    /// `redis-server` is not installed; `scripts/setup` installs it, so CI always runs the
    /// tests that need it.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(None)
    }

    /// A server that keeps its data in `dir` (append-only file, fsync every second, as a
    /// production Redis for sessions would), so a restart keeps what it acknowledged.
    pub fn start_persistent(dir: impl Into<PathBuf>) -> Option<RedisServer> {
        Self::start_with(Some(dir.into()))
    }

    fn start_with(dir: Option<PathBuf>) -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPED: redis-server is not installed; Redis session tests did not run. !!\n\
                 !! Install it (scripts/setup, or apt-get install redis-server).           !!\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("a bound port")
            .port();
        let mut server = RedisServer {
            port,
            dir,
            child: None,
        };
        server.restart();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""]);
        match &self.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).expect("the Redis data directory");
                cmd.args(["--appendonly", "yes", "--appendfsync", "everysec", "--dir"])
                    .arg(dir);
            }
            None => {
                cmd.args(["--appendonly", "no", "--dir"])
                    .arg(std::env::temp_dir());
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it as an orchestrator does: SIGTERM (Redis writes out its append-only file and
    /// exits), SIGKILL if it is still there after 5 s.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("a Redis connection")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
