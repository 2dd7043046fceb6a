//! `bulwark healthcheck`: the container health check (distroless images have no curl).

use std::process::ExitCode;

use bulwark::config::{self, ConfigInput, DevSecrets};

/// Exit 0 when the local `serve` answers `GET /healthz` with 200 (with built-in TLS: when its
/// port accepts connections).
pub async fn healthcheck(input: &ConfigInput) -> ExitCode {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let config = match config::load(input, DevSecrets::Inspect) {
        Ok(loaded) => loaded.config,
        Err(problems) => {
            print!("{problems}");
            return ExitCode::FAILURE;
        }
    };
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let tls = config.http.tls.is_some();
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        if tls {
            return Ok::<_, std::io::Error>(true);
        }
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok(&head == b"HTTP/1.1 200")
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), probe).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => {
            eprintln!("unhealthy: /healthz on {addr} did not answer 200");
            ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            eprintln!("unhealthy: {addr}: {err}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("unhealthy: {addr} did not answer within 3 s");
            ExitCode::FAILURE
        }
    }
}
