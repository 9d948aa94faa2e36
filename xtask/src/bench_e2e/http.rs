//! A minimal blocking HTTP/1.1 client over one kept-alive loopback connection: just enough for
//! the load generator (fixed request bytes, status, `Connection: close`, `Mcp-Session-Id`,
//! `Content-Length` and chunked bodies), with the standard library only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::Result;

/// How long one read or write may block: far above any answer on loopback, so only a hung
/// server hits it, and the bench then fails instead of waiting forever.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The largest response body accepted; every answer measured is well under 16 KiB.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Bytes read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

/// One response, as far as the bench cares.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The server announced it closes the connection (or the body ran to the end of stream).
    pub(crate) close: bool,
    pub(crate) session: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// A kept-alive connection with its read buffer.
pub(crate) struct Conn {
    stream: TcpStream,
    /// Received bytes not yet consumed start at `pos`.
    buf: Vec<u8>,
    /// What one `read` fills, allocated once per connection.
    scratch: Box<[u8]>,
    /// Bytes of `buf` before this are consumed.
    pos: usize,
    /// Responses read on this connection so far.
    served: u64,
}

impl Conn {
    pub(crate) fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        // The client writes each request at once; no need to wait for ACKs either way.
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            pos: 0,
            served: 0,
        })
    }

    /// Responses read on this connection so far: a failure on a used connection may be the
    /// server having closed it after its last answer.
    pub(crate) fn served(&self) -> u64 {
        self.served
    }

    /// Sends `request` (complete bytes) and reads the whole response.
    pub(crate) fn round_trip(&mut self, request: &[u8]) -> Result<Response> {
        self.stream.write_all(request)?;
        let response = self.read_response()?;
        self.served += 1;
        Ok(response)
    }

    fn read_response(&mut self) -> Result<Response> {
        // Drop what earlier responses consumed.
        self.buf.drain(..self.pos);
        self.pos = 0;
        let head_len = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end + 4;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err("response head too large".into());
            }
            if self.fill()? == 0 {
                return Err("connection closed before a response".into());
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_len])?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let (mut length, mut chunked, mut close, mut session) = (None, false, false, None);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.to_ascii_lowercase().contains("close");
            } else if name.eq_ignore_ascii_case("mcp-session-id") {
                session = Some(value.to_owned());
            }
        }
        self.pos = head_len;
        let body = if chunked {
            self.read_chunked()?
        } else if let Some(length) = length {
            if length > MAX_BODY_BYTES {
                return Err(format!("response body of {length} bytes").into());
            }
            self.take(length)?
        } else if status == 204 || status == 304 || status < 200 {
            Vec::new()
        } else {
            close = true;
            self.read_to_end()?
        };
        Ok(Response {
            status,
            close,
            session,
            body,
        })
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.take_line()?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while !self.take_line()?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY_BYTES {
                return Err("chunked response body too large".into());
            }
            body.extend_from_slice(&self.take(size)?);
            if !self.take_line()?.is_empty() {
                return Err("chunk not followed by CRLF".into());
            }
        }
    }

    /// The next CRLF-terminated line, without its CRLF.
    fn take_line(&mut self) -> Result<String> {
        loop {
            if let Some(end) = find(&self.buf[self.pos..], b"\r\n") {
                let line = std::str::from_utf8(&self.buf[self.pos..self.pos + end])?.to_owned();
                self.pos += end + 2;
                return Ok(line);
            }
            if self.buf.len() - self.pos > MAX_HEAD_BYTES {
                return Err("line too long in a chunked body".into());
            }
            if self.fill()? == 0 {
                return Err("connection closed inside a chunked body".into());
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>> {
        while self.buf.len() - self.pos < n {
            if self.fill()? == 0 {
                return Err("connection closed inside a response body".into());
            }
        }
        let bytes = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(bytes)
    }

    fn read_to_end(&mut self) -> Result<Vec<u8>> {
        while self.fill()? != 0 {
            if self.buf.len() - self.pos > MAX_BODY_BYTES {
                return Err("response body too large".into());
            }
        }
        let bytes = self.buf[self.pos..].to_vec();
        self.pos = self.buf.len();
        Ok(bytes)
    }

    /// Appends what the socket has; 0 at end of stream.
    fn fill(&mut self) -> Result<usize> {
        let n = self.stream.read(&mut self.scratch)?;
        self.buf.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The bytes of one request. `Content-Length` is always sent for a body, and `Host` always.
pub(crate) fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves `responses` (raw bytes, one per request) on one connection, then closes.
    fn serve(responses: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            for response in responses {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).expect("read");
                stream.write_all(response).expect("write");
            }
        });
        addr
    }

    #[test]
    fn responses_of_every_framing_are_read_on_one_connection() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nMcp-Session-Id: s1\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        ]);
        let mut conn = Conn::connect(addr).expect("connect");
        let get = request("GET", addr, "/", &[], b"");
        let first = conn.round_trip(&get).expect("first");
        assert_eq!(
            (first.status, &first.body[..], first.session.as_deref()),
            (200, &b"hello"[..], Some("s1"))
        );
        let second = conn.round_trip(&get).expect("second");
        assert_eq!((second.status, &second.body[..]), (200, &b"abcde"[..]));
        let third = conn.round_trip(&get).expect("third");
        assert_eq!((third.status, third.close), (401, true));
    }

    #[test]
    fn a_body_without_length_runs_to_the_end_of_the_stream() {
        let addr = serve(vec![b"HTTP/1.1 200 OK\r\n\r\nall of it"]);
        let mut conn = Conn::connect(addr).expect("connect");
        let response = conn
            .round_trip(&request("GET", addr, "/", &[], b""))
            .expect("response");
        assert_eq!(
            (&response.body[..], response.close),
            (&b"all of it"[..], true)
        );
    }

    #[test]
    fn a_post_request_declares_its_length() {
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("addr");
        let bytes = request("POST", addr, "/token", &[("a", "b")], b"x=1");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            "POST /token HTTP/1.1\r\nhost: 127.0.0.1:80\r\na: b\r\ncontent-length: 3\r\n\r\nx=1"
        );
    }
}
