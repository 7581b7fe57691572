//! A `redis-server` of a test's own, on a free port of its own, for the tests
//! that break Redis (kill it, bring it back empty, make it refuse writes):
//! the shared server on 6379 serves every other test and is never touched.
//! Dropping it stops it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::eventually;

pub struct OwnRedis {
    port: u16,
    server: Child,
}

impl OwnRedis {
    /// Starts a server on a free port and waits until it answers.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self::start_on(port).await
    }

    async fn start_on(port: u16) -> Self {
        let server = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server (deploy/backends.sh installs it)");
        let redis = Self { port, server };
        eventually(Duration::from_secs(10), "the test's own Redis", || async {
            redis.connection().await.ok()
        })
        .await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server, as a crash would, and starts an empty one on the
    /// same port.
    pub async fn restart(mut self) -> Self {
        self.server.kill().expect("kill redis-server");
        self.server.wait().expect("reap redis-server");
        Self::start_on(self.port).await
    }

    /// Makes every write fail (`NOREPLICAS`: it wants a replica it does not
    /// have) or succeed again, keeping the data: a Redis that is up but failing.
    pub async fn refuse_writes(&self, refuse: bool) {
        let replicas = if refuse { "1" } else { "0" };
        let mut connection = self.connection().await.expect("the test's own Redis");
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("min-replicas-to-write")
            .arg(replicas)
            .query_async(&mut connection)
            .await
            .expect("CONFIG SET min-replicas-to-write");
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
