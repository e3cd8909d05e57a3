//! A tiny HTTP/1.1 client over `std::net::TcpStream` for the server's API: full requests
//! with an optional bearer token ([`http_request_as`]), a strict GET of JSON ([`http_get_json`])
//! and the polling helpers over `nms::client` ([`get_json`], [`get_text`]).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer of the HTTP API.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
    /// The header lines after the status line.
    pub headers: Vec<String>,
}

impl HttpResponse {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {}: the body is not JSON ({e}):\n{}",
                self.status, self.body
            )
        })
    }
}

/// `GET path` from `addr`.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpResponse> {
    http_request(addr, "GET", path, None)
}

/// `POST path` to `addr` with a JSON body.
pub fn http_post(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<HttpResponse> {
    http_request(addr, "POST", path, Some(body))
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); reads the whole answer.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    http_request_as(addr, None, method, path, body)
}

/// [`http_request`] with `Authorization: Bearer TOKEN` when a token is given.
pub fn http_request_as(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        request.push_str("Content-Type: application/json\r\n");
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of the HTTP header"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| invalid("header not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let headers: Vec<String> = lines.map(str::to_string).collect();
    let chunked = headers.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let payload = &raw[split + 4..];
    let body = if chunked {
        dechunk(payload).ok_or_else(|| invalid("bad chunked body"))?
    } else {
        payload.to_vec()
    };
    Ok(HttpResponse {
        status,
        body: String::from_utf8(body).map_err(|_| invalid("body not UTF-8"))?,
        headers,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// GET `path` from the HTTP API at `addr` and parse the JSON body; an error unless it answers
/// 200 (short timeouts, for polling a server behind a fault proxy).
pub fn http_get_json(addr: SocketAddr, path: &str) -> Result<Value, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header end in {text:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {head}"));
    }
    serde_json::from_str(body).map_err(|e| format!("GET {path}: {e}: {body:?}"))
}

/// `GET base + path` answered with JSON, or `None` on any failure (for polling).
pub fn get_json(base: &str, path: &str) -> Option<Value> {
    smol::block_on(nms::client::get_json(base, path)).ok()
}

/// `GET base + path` answered with text, or `None` on any failure (for polling).
pub fn get_text(base: &str, path: &str) -> Option<String> {
    smol::block_on(nms::client::get_text(base, path)).ok()
}

/// The address part of an `http://HOST:PORT` URL.
pub fn socket_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("an http://IP:PORT URL")
}
