//! A raw AMQP 0-9-1 client for tests that need what no client library
//! sends: bodies never finished, a million publishes in one transaction,
//! frames written while the broker has stopped reading. Frames are encoded
//! with `amq-protocol`; a reader thread decodes what the broker sends and
//! keeps only methods (deliveries' bodies are dropped).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection, queue};
use amq_protocol::types::{FieldTable, LongString, ShortString};

pub const FRAME_MAX: usize = 131_072;

/// One connection, handshaken; `methods` receives what the broker sends.
pub struct RawAmqp {
    pub stream: TcpStream,
    methods: mpsc::Receiver<(u16, AMQPClass)>,
}

pub fn encode(frames: &[AMQPFrame]) -> Vec<u8> {
    conveyor_amqp::frame::encode(frames).to_vec()
}

pub fn method(channel: u16, method: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(channel, method)
}

/// The client's whole handshake, pipelined: protocol header, start-ok
/// (guest), tune-ok (no heartbeats), open of vhost `/`.
pub fn handshake_bytes(channel_max: u16) -> Vec<u8> {
    let mut bytes = conveyor_amqp::frame::PROTOCOL_HEADER.to_vec();
    bytes.extend(encode(&[
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: ShortString::from("PLAIN"),
                response: LongString::from("\0guest\0guest"),
                locale: ShortString::from("en_US"),
            })),
        ),
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max,
                frame_max: FRAME_MAX as u32,
                heartbeat: 0,
            })),
        ),
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: ShortString::from("/"),
            })),
        ),
    ]));
    bytes
}

pub fn channel_open(id: u16) -> AMQPFrame {
    method(id, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})))
}

pub fn queue_declare(id: u16, name: &str) -> AMQPFrame {
    method(
        id,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: ShortString::from(name),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: FieldTable::default(),
        })),
    )
}

/// `basic.publish` to the default exchange and its content header.
pub fn publish_start(id: u16, routing_key: &str, body_size: u64) -> [AMQPFrame; 2] {
    [
        method(
            id,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: ShortString::from(""),
                routing_key: ShortString::from(routing_key),
                mandatory: false,
                immediate: false,
            })),
        ),
        AMQPFrame::Header(
            id,
            AMQPContentHeader {
                class_id: 60,
                body_size,
                properties: BasicProperties::default(),
            },
        ),
    ]
}

impl RawAmqp {
    /// Connects, sends the handshake and waits for `connection.open-ok`.
    pub fn connect(addr: SocketAddr, channel_max: u16) -> RawAmqp {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream.write_all(&handshake_bytes(channel_max)).expect("handshake");
        let mut client = RawAmqp::reading(stream);
        client.expect(Duration::from_secs(30), |channel, method| {
            channel == 0 && matches!(method, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))
        });
        client
    }

    /// Starts the reader thread on `stream`.
    pub fn reading(stream: TcpStream) -> RawAmqp {
        let (sender, methods) = mpsc::channel();
        let mut reader = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            let mut header = [0u8; 7];
            while reader.read_exact(&mut header).is_ok() {
                let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
                let mut frame = header.to_vec();
                frame.resize(7 + size + 1, 0);
                if reader.read_exact(&mut frame[7..]).is_err() {
                    return;
                }
                if let Ok(AMQPFrame::Method(channel, method)) = conveyor_amqp::frame::decode(&frame)
                    && sender.send((channel, method)).is_err()
                {
                    return;
                }
            }
        });
        RawAmqp { stream, methods }
    }

    pub fn send(&mut self, frames: &[AMQPFrame]) {
        self.stream.write_all(&encode(frames)).expect("write frames");
    }

    /// Waits (at most `timeout`) for a method `wanted` accepts; `None` if
    /// none came or the connection ended. Methods before it are dropped.
    pub fn wait_for(&mut self, timeout: Duration, wanted: impl Fn(u16, &AMQPClass) -> bool) -> Option<(u16, AMQPClass)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.methods.recv_timeout(left) {
                Ok((channel, method)) if wanted(channel, &method) => return Some((channel, method)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// [`RawAmqp::wait_for`] that must succeed.
    pub fn expect(&mut self, timeout: Duration, wanted: impl Fn(u16, &AMQPClass) -> bool) -> (u16, AMQPClass) {
        self.wait_for(timeout, wanted).expect("the expected method within the timeout")
    }
}

impl RawAmqp {
    /// Goes away as a crashed client whose socket is reset: a plain close
    /// would queue its FIN behind the bytes the broker is not reading (its
    /// window is shut by backpressure), so the broker would not see it.
    pub fn abort(self) {
        use std::os::fd::AsRawFd;
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        #[allow(unsafe_code)]
        // SAFETY: a valid socket descriptor and a `linger` of the size given.
        let result = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::from_ref(&linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(result, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    }
}

impl Drop for RawAmqp {
    /// Closes the socket for the reader thread's clone too.
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
