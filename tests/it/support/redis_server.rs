//! A private Redis server per test, on its own port, that the test can stop and restart.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Serving TLS only, with a self-signed certificate for `localhost`.
    tls: bool,
}

fn binary() -> String {
    std::env::var("BULWARK_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("dir"),
            tls: false,
        };
        server.restart();
        server
    }

    /// A server speaking TLS only (`rediss://localhost:PORT`), its certificate self-signed;
    /// [`RedisServer::ca_file`] is what a client must trust.
    pub fn start_tls() -> RedisServer {
        let dir = tempfile::tempdir().expect("dir");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem())
            .expect("write key");
        let mut server = RedisServer { port: free_port(), child: None, dir, tls: true };
        server.restart();
        server
    }

    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port, with empty memory.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(binary());
        if self.tls {
            let file = |name: &str| self.dir.path().join(name).to_str().expect("utf-8").to_owned();
            command.args(["--port", "0", "--tls-port", &self.port.to_string()]).args([
                "--tls-cert-file",
                &file("cert.pem"),
                "--tls-key-file",
                &file("key.pem"),
                "--tls-ca-cert-file",
                &file("cert.pem"),
                "--tls-auth-clients",
                "no",
            ]);
        } else {
            command.args(["--port", &self.port.to_string()]);
        }
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
