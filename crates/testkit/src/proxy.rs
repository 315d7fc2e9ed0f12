//! A TCP proxy a test can cut and restore, to make a real dependency (RabbitMQ, Redis,
//! PostgreSQL) unreachable for one service without stopping the server other tests use.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    task::JoinHandle,
};

pub struct ToggleProxy {
    pub port: u16,
    upstream: String,
    enabled: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// The accept loop; `None` while the port is closed ([`ToggleProxy::close`]).
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl ToggleProxy {
    /// Listens on a free loopback port and forwards to `upstream` while enabled.
    pub async fn start(upstream: &str, enabled: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let proxy = Self {
            port,
            upstream: upstream.to_owned(),
            enabled: Arc::new(AtomicBool::new(enabled)),
            connections: Arc::default(),
            accept: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let enabled = Arc::clone(&self.enabled);
        let connections = Arc::clone(&self.connections);
        let upstream = self.upstream.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !enabled.load(Ordering::SeqCst) {
                    drop(inbound); // refused, as a down server would
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                if let Ok(mut list) = connections.lock() {
                    list.retain(|t| !t.is_finished());
                    list.push(task);
                }
            }
        });
        if let Ok(mut slot) = self.accept.lock() {
            *slot = Some(accept);
        }
    }

    /// `url` with its host and port replaced by the proxy's (`scheme://[user@]host[:port]/…`),
    /// so a client given it goes through the proxy.
    pub fn url_via(&self, url: &str) -> String {
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        let rest = &url[scheme_end..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host_start = rest[..authority_end].rfind('@').map_or(0, |i| i + 1);
        format!(
            "{}127.0.0.1:{}{}",
            &url[..scheme_end + host_start],
            self.port,
            &rest[authority_end..]
        )
    }

    /// Cuts every open connection and refuses new ones.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        if let Ok(mut list) = self.connections.lock() {
            for task in list.drain(..) {
                task.abort();
            }
        }
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }

    /// As a stopped server: every open connection is cut and the port is closed, so a connect
    /// is refused at the TCP level ([`ToggleProxy::disable`] accepts and then hangs up, which
    /// clients see as a failed handshake instead). Returns once the sockets are closed.
    pub async fn close(&self) {
        let accept = self.accept.lock().ok().and_then(|mut slot| slot.take());
        let connections: Vec<_> = self
            .connections
            .lock()
            .map(|mut list| list.drain(..).collect())
            .unwrap_or_default();
        for task in accept.into_iter().chain(connections) {
            task.abort();
            // An aborted task's future, and its sockets with it, is dropped before its handle
            // resolves.
            let _ = task.await;
        }
    }

    /// Listens again on the same port after [`ToggleProxy::close`] (a no-op while open).
    pub async fn reopen(&self) {
        if self.accept.lock().is_ok_and(|slot| slot.is_some()) {
            return;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut attempts = 0;
        let listener = loop {
            let socket = TcpSocket::new_v4().expect("proxy socket");
            // The cut connections may linger in TIME_WAIT on this port.
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            match socket.bind(addr).and_then(|()| socket.listen(128)) {
                Ok(listener) => break listener,
                Err(_) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot listen on proxy port {} again: {e}", self.port),
            }
        };
        self.serve(listener);
    }
}

impl Drop for ToggleProxy {
    fn drop(&mut self) {
        self.disable();
        if let Some(accept) = self.accept.lock().ok().and_then(|mut slot| slot.take()) {
            accept.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn url_via_replaces_host_and_port_only() {
        let proxy_port = |port| ToggleProxy {
            port,
            upstream: String::new(),
            enabled: Arc::default(),
            connections: Arc::default(),
            accept: Mutex::new(None),
        };
        let proxy = proxy_port(4000);
        assert_eq!(
            proxy.url_via("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:guest@127.0.0.1:4000/%2f"
        );
        assert_eq!(
            proxy.url_via("postgres://postgres@db.local/zimmer?sslmode=disable"),
            "postgres://postgres@127.0.0.1:4000/zimmer?sslmode=disable"
        );
        assert_eq!(
            proxy.url_via("redis://localhost:6379"),
            "redis://127.0.0.1:4000"
        );
    }

    /// One byte through the proxy and back from an echo upstream.
    async fn round_trip(port: u16) -> std::io::Result<u8> {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
        conn.write_all(&[7]).await?;
        let mut byte = [0];
        conn.read_exact(&mut byte).await?;
        Ok(byte[0])
    }

    #[tokio::test]
    async fn closed_port_refuses_and_reopens_on_the_same_port() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = upstream.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = conn.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        let proxy = ToggleProxy::start(&upstream_addr, true).await;
        assert_eq!(round_trip(proxy.port).await.unwrap(), 7);

        // An open connection is cut, and a new one is refused by the TCP stack.
        let mut open = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        open.write_all(&[1]).await.unwrap();
        let mut byte = [0];
        open.read_exact(&mut byte).await.unwrap();
        proxy.close().await;
        assert!(matches!(open.read(&mut byte).await, Ok(0) | Err(_)));
        let refused = TcpStream::connect(("127.0.0.1", proxy.port)).await;
        assert_eq!(
            refused.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );

        proxy.reopen().await;
        assert_eq!(round_trip(proxy.port).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn disabled_proxy_accepts_and_hangs_up() {
        let proxy = ToggleProxy::start("127.0.0.1:9", false).await;
        let mut conn = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        let mut byte = [0];
        assert!(matches!(conn.read(&mut byte).await, Ok(0) | Err(_)));
    }
}
