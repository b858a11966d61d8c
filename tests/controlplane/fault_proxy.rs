//! A TCP proxy on loopback that can black-hole its traffic, the network fault that makes
//! a leader stale: its packets vanish, nothing is refused or reset, every call just hangs.
//! TLS passes through untouched (the API server's certificate names 127.0.0.1).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct FaultProxy {
    pub port: u16,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Faults {
    black_holed: AtomicBool,
    /// Bumped by each black hole: a connection from an earlier epoch stays dead after
    /// the heal, as one whose packets were lost does (its peer's TCP state is gone).
    epoch: AtomicU64,
}

impl FaultProxy {
    /// Forward 127.0.0.1:<port> to 127.0.0.1:`upstream`.
    pub async fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let f = f.clone();
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let born = f.epoch.load(Ordering::SeqCst);
                    let born_dead = f.black_holed.load(Ordering::SeqCst);
                    let alive = {
                        let f = f.clone();
                        move || {
                            !born_dead
                                && !f.black_holed.load(Ordering::SeqCst)
                                && f.epoch.load(Ordering::SeqCst) == born
                        }
                    };
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    tokio::spawn(pump(dr, uw, alive.clone()));
                    pump(ur, dw, alive).await;
                });
            }
        });
        FaultProxy { port, faults, task }
    }

    /// From now on no byte passes, on open connections or new ones.
    pub fn black_hole(&self) {
        self.faults.epoch.fetch_add(1, Ordering::SeqCst);
        self.faults.black_holed.store(true, Ordering::SeqCst);
    }

    /// New connections pass again; those opened before stay dead.
    pub fn heal(&self) {
        self.faults.black_holed.store(false, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copy bytes while `alive()`; after that, read and drop them (the sender sees no error).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    alive: impl Fn() -> bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if alive() && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
