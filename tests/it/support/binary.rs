//! Runs the real `bulwark` binary, for start-up behaviour, logs on stdout and tests that need
//! several processes.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bulwark");

/// A command with an empty environment but for `PATH` and the given settings.
pub fn command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    super::tls_provider();
    let mut command = Command::new(BIN);
    command.env_clear().current_dir(dir).args(args).stdin(Stdio::null());
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

pub fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command(dir, env, args).output().expect("the bulwark binary runs")
}

/// `run` from an async test: the in-process server shares the test's runtime, and blocking
/// that thread on a child process would freeze the server mid-transaction.
pub async fn run_async(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = command(dir, env, args);
    tokio::task::spawn_blocking(move || command.output().expect("the bulwark binary runs"))
        .await
        .expect("join")
}

pub struct Running {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// Starts `bulwark serve` and waits until it prints the address it listens on.
    pub fn serve(dir: &Path, env: &[(&str, &str)]) -> Running {
        let mut child = command(dir, env, &["serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bulwark serve");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = stderr.lock().expect("lock").iter().find_map(|line| {
                line.split_once(" listening on ").map(|(_, url)| url.trim().to_owned())
            });
            if let Some(url) = found {
                return Running { child, url, stdout, stderr };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "bulwark exited with {status} before listening:\n{}",
                    stderr.lock().expect("lock").join("\n")
                );
            }
            assert!(Instant::now() < deadline, "bulwark did not start within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().expect("lock").join("\n")
    }

    /// Sends SIGTERM-equivalent shutdown (kill) and waits.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    lines
}
