//! Whether a TCP client has gone away, asked without reading its socket:
//! a connection over its memory budget stops reading (backpressure), so
//! an end of stream would never be seen; `poll` with `POLLRDHUP` sees the
//! peer's FIN or reset even behind unread data. Knows sockets, nothing of
//! AMQP.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// A duplicate of a connection's socket descriptor, only ever polled.
#[derive(Debug, Clone)]
pub struct PeerWatch {
    fd: Arc<OwnedFd>,
}

impl PeerWatch {
    /// Watches the socket of `stream` (a duplicate descriptor; `None` if it cannot be made).
    pub fn new(stream: &impl AsFd) -> Option<PeerWatch> {
        let fd = stream.as_fd().try_clone_to_owned().ok()?;
        Some(PeerWatch { fd: Arc::new(fd) })
    }

    /// True once the peer has shut down its side or the socket failed.
    pub fn gone(&self) -> bool {
        let mut fds = [PollFd::new(&*self.fd, PollFlags::RDHUP)];
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        match poll(&mut fds, Some(&now)) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_closed_peer_is_seen_behind_unread_data() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let watch = PeerWatch::new(&server).expect("dup");
        client.write_all(b"unread bytes").expect("write");
        assert!(!watch.gone(), "data waiting is not a closed peer");
        drop(client);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !watch.gone() {
            assert!(std::time::Instant::now() < deadline, "the close is seen");
            std::thread::yield_now();
        }
    }
}
