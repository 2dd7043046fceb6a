//! A TCP forwarder between Bulwark and PostgreSQL that a test can cut and restore, to make
//! the database unreachable without stopping the cluster other tests share.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    pub addr: SocketAddr,
    enabled: Arc<watch::Sender<bool>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (tx, _) = watch::channel(true);
        let enabled = Arc::new(tx);
        let state = enabled.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*state.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut cut = state.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|on| !*on) => {}
                    }
                });
            }
        });
        TcpProxy { addr, enabled }
    }

    /// Off: open connections are cut and new ones closed at once.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.send_replace(on);
    }
}
