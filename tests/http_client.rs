//! A small HTTP/1.1 client for the daemon tests, over plain TCP on loopback: whole requests,
//! keep-alive connections, and a Server-Sent Events reader. Hand-written so that tests can also
//! send what no well-behaved client would (see the attacks in `integration/http.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use serde_json::Value;

use crate::daemon::LIMIT;

/// An answer.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON; panics naming the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body `{}` is not JSON: {e}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection; panics if there is no answer.
pub fn request(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> Response {
    Connection::open(addr)
        .send(method, path, token, &[], body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// `GET path` with the token; panics unless the answer is 200, returns its JSON.
pub fn get_json(addr: &str, path: &str, token: &str) -> Value {
    let response = request(addr, "GET", path, Some(token), "");
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    response.json()
}

/// A keep-alive connection.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    /// Connects; reads time out after [`LIMIT`].
    pub fn open(addr: &str) -> Connection {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        Connection {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// The socket, to write raw bytes or shut it down.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.writer
    }

    /// Sends a request with `headers` and `body` and reads the answer.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n",
            body.len()
        );
        if let Some(token) = token {
            head.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // One write: a body written after the head would wait for the server's delayed ACK of
        // the head (Nagle's algorithm), up to 40 ms per request on loopback.
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.writer
            .write_all(&request)
            .map_err(|e| format!("cannot send: {e}"))?;
        self.read_response()
    }

    /// Reads one answer.
    pub fn read_response(&mut self) -> Result<Response, String> {
        let (status, headers) = read_head(&mut self.reader)?;
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let mut body = Vec::new();
        let read = match (length, chunked) {
            (Some(length), _) => {
                body.resize(length, 0);
                self.reader.read_exact(&mut body)
            }
            (None, true) => Chunked::new(&mut self.reader)
                .read_to_end(&mut body)
                .map(drop),
            (None, false) => self.reader.read_to_end(&mut body).map(drop),
        };
        read.map_err(|e| format!("cannot read the body: {e}"))?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Whether the server closed the connection (a read returns end of file or a reset)
    /// within the read timeout.
    pub fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        loop {
            match self.reader.read(&mut byte) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

fn read_head(reader: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), String> {
    let mut line = String::new();
    let n = reader
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    if n == 0 {
        return Err("the server closed the connection without an answer".into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line `{}`", line.trim()))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the headers: {e}"))?;
        let header = line.trim_end();
        if header.is_empty() {
            return Ok((status, headers));
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
}

/// A chunked body as a plain reader.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.left == 0 && !self.done {
            let mut line = String::new();
            if self.inner.read_line(&mut line)? == 0 {
                return Ok(0);
            }
            let size = line.trim();
            if size.is_empty() {
                continue; // the CRLF after the previous chunk
            }
            self.left = usize::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size `{size}`")))?;
            if self.left == 0 {
                self.done = true;
            }
        }
        if self.done {
            return Ok(0);
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        Ok(n)
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// Its `id:`.
    pub id: u64,
    /// Its `data:`, parsed.
    pub data: Value,
}

/// An open event stream.
pub struct EventStream {
    reader: BufReader<Chunked<BufReader<TcpStream>>>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventStream")
    }
}

impl EventStream {
    /// `GET /api/events`, resuming after `last_event_id` when given; panics unless 200.
    pub fn open(addr: &str, token: &str, last_event_id: Option<u64>) -> EventStream {
        let mut connection = Connection::open(addr);
        let mut head = format!(
            "GET /api/events HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n"
        );
        if let Some(id) = last_event_id {
            head.push_str(&format!("last-event-id: {id}\r\n"));
        }
        head.push_str("\r\n");
        connection.writer.write_all(head.as_bytes()).unwrap();
        let (status, _) = read_head(&mut connection.reader).unwrap();
        assert_eq!(status, 200, "the event stream was refused");
        EventStream {
            reader: BufReader::new(Chunked::new(connection.reader)),
        }
    }

    /// The next event (keep-alive comments skipped); an error when none comes within
    /// [`LIMIT`] or the stream ends.
    pub fn next_event(&mut self) -> Result<SseEvent, String> {
        let (mut id, mut data) = (None, String::new());
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| format!("no event: {e}"))?;
            if n == 0 {
                return Err("the event stream ended".into());
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if let Some(id) = id.take() {
                    let data = serde_json::from_str(&data)
                        .map_err(|e| format!("event data `{data}` is not JSON: {e}"))?;
                    return Ok(SseEvent { id, data });
                }
                data.clear();
            } else if let Some(value) = line.strip_prefix("id:") {
                id = value.trim().parse().ok();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            }
        }
    }
}
