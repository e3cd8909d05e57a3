//! A check of the first request head on an HTTP connection, before hyper sees it, so that a
//! request that is not HTTP, or whose head or target is too large, is answered with a JSON
//! error like every other refusal (hyper itself would answer with an empty body).
//!
//! The bytes read for the check are handed to hyper unchanged through [`Prefixed`].

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest request target (path and query).
pub const MAX_TARGET: usize = 8 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 64;

/// What the check found.
pub enum Head {
    /// A well-formed head (or the start of one that hyper will finish reading).
    Ok(Vec<u8>),
    /// Refused: the status and the message to send as `{"error": ...}`.
    Refused(u16, String),
    /// The peer closed or said nothing in time.
    Gone,
}

/// Reads until the end of the first request head (or the limit) and checks it.
pub async fn read_first_head<S: AsyncRead + Unpin>(stream: &mut S) -> Head {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let read = futures_lite::future::or(async { Some(stream.read(&mut chunk).await) }, async {
            async_io::Timer::after(Duration::from_secs(10)).await;
            None
        })
        .await;
        let n = match read {
            Some(Ok(0)) | Some(Err(_)) | None => {
                return if buf.is_empty() {
                    Head::Gone
                } else {
                    check(&buf, true)
                };
            }
            Some(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        match check(&buf, false) {
            Head::Ok(_) if !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() <= MAX_HEAD => {
                continue;
            }
            Head::Ok(_) => return Head::Ok(buf),
            other => return other,
        }
    }
}

fn check(buf: &[u8], ended: bool) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Err(httparse::Error::TooManyHeaders) => {
            Head::Refused(431, format!("more than {MAX_HEADERS} request headers"))
        }
        Err(e) => Head::Refused(400, format!("malformed HTTP request: {e}")),
        Ok(status) => {
            if request.path.is_some_and(|p| p.len() > MAX_TARGET)
                || (request.path.is_none() && buf.len() > MAX_TARGET && !buf.contains(&b'\n'))
            {
                return Head::Refused(
                    414,
                    format!("request target longer than {MAX_TARGET} bytes"),
                );
            }
            let head_len = match status {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => buf.len(),
            };
            if head_len > MAX_HEAD {
                return Head::Refused(431, format!("request head larger than {MAX_HEAD} bytes"));
            }
            if status.is_partial() && ended {
                return Head::Refused(400, "incomplete HTTP request head".to_string());
            }
            Head::Ok(Vec::new())
        }
    }
}

/// Writes a JSON error response and closes.
pub async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, message: &str) {
    let reason = match status {
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let body = format!("{}\n", serde_json::json!({ "error": message }));
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.flush().await;
}

/// A stream that first yields bytes already read from it.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    offset: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            offset: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.offset < this.prefix.len() {
            let n = buf.len().min(this.prefix.len() - this.offset);
            buf[..n].copy_from_slice(&this.prefix[this.offset..this.offset + n]);
            this.offset += n;
            if this.offset == this.prefix.len() {
                this.prefix = Vec::new();
                this.offset = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Head {
        smol::block_on(read_first_head(&mut futures_lite::io::Cursor::new(
            input.to_vec(),
        )))
    }

    #[test]
    fn good_heads_pass_and_bad_ones_are_refused_with_a_reason() {
        assert!(
            matches!(run(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n"), Head::Ok(b) if b.len() == 30)
        );
        assert!(
            matches!(run(b"\x00\x01 garbage\r\n\r\n"), Head::Refused(400, m) if m.starts_with("malformed HTTP request"))
        );
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET + 1));
        assert!(matches!(run(long.as_bytes()), Head::Refused(414, _)));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD + 1));
        assert!(matches!(run(big.as_bytes()), Head::Refused(431, _)));
        assert!(
            matches!(run(b"GET / HTTP/1.1\r\nHost"), Head::Refused(400, m) if m.contains("incomplete"))
        );
        assert!(matches!(run(b""), Head::Gone));
    }
}
