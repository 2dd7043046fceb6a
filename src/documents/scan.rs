//! A virus scan through clamd's `INSTREAM` command on its TCP socket: the upload's bytes are
//! sent as they arrive (length-prefixed pieces, then a zero length), and the verdict decides
//! whether the document is stored.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(30);
/// clamd's default StreamMaxLength is 25 MiB per piece stream; pieces stay far below it.
const PIECE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("the virus scanner: {0}")]
pub struct ScanError(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    Infected(String),
}

pub struct Scan {
    stream: TcpStream,
}

fn failed(err: impl std::fmt::Display) -> ScanError {
    ScanError(err.to_string())
}

impl Scan {
    pub async fn start(address: &str) -> Result<Scan, ScanError> {
        let mut stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| ScanError("connecting timed out".into()))?
            .map_err(failed)?;
        stream.write_all(b"zINSTREAM\0").await.map_err(failed)?;
        Ok(Scan { stream })
    }

    pub async fn feed(&mut self, data: &[u8]) -> Result<(), ScanError> {
        for piece in data.chunks(PIECE) {
            let len = u32::try_from(piece.len()).map_err(failed)?;
            let write = async {
                self.stream.write_all(&len.to_be_bytes()).await?;
                self.stream.write_all(piece).await
            };
            tokio::time::timeout(TIMEOUT, write)
                .await
                .map_err(|_| ScanError("sending timed out".into()))?
                .map_err(failed)?;
        }
        Ok(())
    }

    pub async fn verdict(mut self) -> Result<Verdict, ScanError> {
        self.stream.write_all(&0u32.to_be_bytes()).await.map_err(failed)?;
        let mut reply = Vec::with_capacity(128);
        let read = async {
            let mut byte = [0u8; 1];
            while reply.len() < 1024 {
                if self.stream.read(&mut byte).await? == 0 || byte[0] == 0 {
                    break;
                }
                reply.push(byte[0]);
            }
            Ok::<_, std::io::Error>(())
        };
        tokio::time::timeout(TIMEOUT, read)
            .await
            .map_err(|_| ScanError("the verdict timed out".into()))?
            .map_err(failed)?;
        parse(&String::from_utf8_lossy(&reply))
    }
}

/// `stream: OK`, `stream: Eicar-Signature FOUND`, or an error line.
fn parse(reply: &str) -> Result<Verdict, ScanError> {
    let reply = reply.trim_end_matches(['\n', '\0']);
    let body = reply.strip_prefix("stream: ").unwrap_or(reply);
    if body == "OK" {
        Ok(Verdict::Clean)
    } else if let Some(name) = body.strip_suffix(" FOUND") {
        Ok(Verdict::Infected(name.chars().filter(|c| !c.is_control()).take(100).collect()))
    } else {
        Err(ScanError(format!(
            "unexpected answer `{}`",
            body.chars().take(100).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamd_answers_are_read() {
        assert_eq!(parse("stream: OK\0").ok(), Some(Verdict::Clean));
        assert_eq!(
            parse("stream: Eicar-Signature FOUND\0").ok(),
            Some(Verdict::Infected("Eicar-Signature".into()))
        );
        assert!(parse("INSTREAM size limit exceeded. ERROR\0").is_err());
    }
}
