//! A loopback TCP proxy in front of a test server: the first `n` connections get one answer,
//! 503 Service Unavailable, and are closed; every later connection is passed through unchanged.
//! A client opens a new connection for each retry of a refused request, so the retries a run
//! reports must be exactly the refusals the proxy counts.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub struct FailingProxy {
    pub port: u16,
    refused: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
}

impl FailingProxy {
    /// Listens on a free loopback port; refuses the first `failures` connections, tunnels the
    /// others to `upstream` (a loopback port).
    pub fn start(upstream: u16, failures: usize) -> FailingProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let (count, stop) = (Arc::clone(&refused), Arc::clone(&stopped));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                // Counted when accepted, so the order of connections decides, not of answers.
                let refuse = count
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        (n < failures).then_some(n + 1)
                    })
                    .is_ok();
                std::thread::spawn(move || {
                    if refuse {
                        refuse_request(client);
                    } else {
                        tunnel(client, upstream);
                    }
                });
            }
        });
        FailingProxy {
            port,
            refused,
            stopped,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections answered with 503 so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for FailingProxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads the request's head, answers 503 and closes (a body still coming is not read).
fn refuse_request(mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    let _ = client.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let _ = client.shutdown(Shutdown::Both);
}

/// Copies bytes both ways between `client` and the upstream port until either side closes.
fn tunnel(client: TcpStream, upstream: u16) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upload = std::thread::spawn(move || pipe(c2, s2));
    pipe(server, client);
    let _ = upload.join();
}
