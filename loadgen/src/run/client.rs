//! One client connection: connect (TCP, then TLS when asked), write the
//! pre-serialised request bytes, read and frame responses.
//!
//! I/O uses owned buffers (monoio's rent API): the request bytes are one
//! shared `Rc<Vec<u8>>` per worker, written as slices of it; each connection
//! reads into its own reused `Vec<u8>`. Nothing is allocated per request.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio_rustls::{ClientTlsStream, TlsConnector};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::response::{Complete, EofError, Parsed, ResponseParser};
use super::stats::ErrorKind;

/// Read buffer size per connection.
const READ_BUF: usize = 32 * 1024;

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
}

impl Stream {
    async fn read(&mut self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        let len = buf.len();
        let cap = buf.capacity();
        let slice = buf.slice_mut(len..cap);
        let (res, slice) = match self {
            Stream::Plain(s) => s.read(slice).await,
            Stream::Tls(s) => s.read(slice).await,
        };
        (res, slice.into_inner())
    }

    async fn write_all<T: IoBuf + 'static>(&mut self, buf: T) -> std::io::Result<()> {
        let (res, _) = match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => s.write_all(buf).await,
        };
        res.map(|_| ())
    }
}

/// How to open a connection to the target.
#[derive(Clone)]
pub struct Connector {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
}

impl Connector {
    pub fn new(
        addr: SocketAddr,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
        timeout: Duration,
    ) -> Self {
        Connector {
            addr,
            tls: tls.map(|(config, name)| (TlsConnector::from(config), name)),
            timeout,
        }
    }

    /// Connect (and handshake) within the timeout.
    pub async fn connect(&self) -> Result<Conn, ErrorKind> {
        let work = async {
            let tcp = TcpStream::connect_addr(self.addr)
                .await
                .map_err(|_| ErrorKind::Connect)?;
            let _ = tcp.set_nodelay(true);
            let stream = match &self.tls {
                None => Stream::Plain(tcp),
                Some((connector, name)) => Stream::Tls(Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|_| ErrorKind::Tls)?,
                )),
            };
            Ok(Conn::new(stream))
        };
        match monoio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ErrorKind::Connect),
        }
    }
}

/// An open connection with its read buffer and response parser.
pub struct Conn {
    stream: Stream,
    /// Bytes read; `buf[start..]` is not consumed yet.
    buf: Vec<u8>,
    start: usize,
    parser: ResponseParser,
    /// Bytes read from the socket since the last `take_bytes`.
    bytes: u64,
    /// The TLS handshake resumed an earlier session.
    pub resumed: bool,
}

impl Conn {
    fn new(stream: Stream) -> Self {
        let resumed = match &stream {
            Stream::Tls(s) => s.session().handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            Stream::Plain(_) => false,
        };
        Conn {
            stream,
            buf: Vec::with_capacity(READ_BUF),
            start: 0,
            parser: ResponseParser::new(),
            bytes: 0,
            resumed,
        }
    }

    /// Send `len` bytes of `request` (one or more whole requests).
    pub async fn send(&mut self, request: &Rc<Vec<u8>>, len: usize) -> Result<(), ErrorKind> {
        self.stream
            .write_all(request.clone().slice(..len))
            .await
            .map_err(|e| ErrorKind::of_io(&e))
    }

    pub fn take_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.bytes)
    }

    /// Read until one whole response has arrived.
    pub async fn read_response(&mut self, head_request: bool) -> Result<Complete, ErrorKind> {
        loop {
            if self.start < self.buf.len() {
                match self.parser.feed(&self.buf[self.start..], head_request) {
                    Ok(Parsed::Done { consumed, response }) => {
                        self.start += consumed;
                        return Ok(response);
                    }
                    Ok(Parsed::Partial { consumed }) => self.start += consumed,
                    Err(_) => return Err(ErrorKind::Malformed),
                }
            }
            self.make_room();
            // Taken out for the read: if this future is dropped (timeout),
            // the connection is discarded with an empty buffer.
            let buf = std::mem::take(&mut self.buf);
            let (res, buf) = self.stream.read(buf).await;
            self.buf = buf;
            match res {
                Ok(0) => {
                    let unconsumed = self.buf.len() - self.start;
                    return self.parser.eof(unconsumed).map_err(|e| match e {
                        EofError::Closed => ErrorKind::Closed,
                        EofError::Malformed(_) => ErrorKind::Malformed,
                    });
                }
                Ok(n) => self.bytes += n as u64,
                Err(e) => return Err(ErrorKind::of_io(&e)),
            }
        }
    }

    /// Ensure free capacity after the unconsumed bytes.
    fn make_room(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.buf.len() == self.buf.capacity() {
            if self.start > 0 {
                self.buf.copy_within(self.start.., 0);
                self.buf.truncate(self.buf.len() - self.start);
                self.start = 0;
            } else {
                // A head bigger than the buffer (the parser caps heads).
                self.buf.reserve(self.buf.capacity().max(READ_BUF));
            }
        }
    }
}
