//! A round-robin TCP load balancer on loopback, for tests that put several instances
//! behind one address as a production load balancer would. Each accepted connection goes to
//! the next instance; a client that opens one connection per request (`TestApp::behind`)
//! spreads its requests over every instance in turn.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

pub struct Balancer {
    pub addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    /// Connections each backend was given.
    served: Arc<Vec<AtomicUsize>>,
}

impl Balancer {
    pub async fn start(backends: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind balancer");
        let addr = listener.local_addr().expect("addr");
        let served: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = served.clone();
        let backends = Arc::new(Mutex::new(backends));
        let table = backends.clone();
        tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (n, target) = {
                    let table = table.lock().expect("lock");
                    let n = next % table.len();
                    (n, table[n])
                };
                next += 1;
                counts[n].fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    // A backend that is down drops the connection, as a balancer without
                    // health checks would: the client sees a connection error.
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Balancer { addr, backends, served }
    }

    /// Points backend `n` at a restarted instance.
    pub fn replace(&self, n: usize, addr: SocketAddr) {
        self.backends.lock().expect("lock")[n] = addr;
    }

    /// Connections each backend was given so far.
    pub fn served(&self) -> Vec<usize> {
        self.served.iter().map(|n| n.load(Ordering::Relaxed)).collect()
    }
}
