//! A stand-in for the server's HTTP API in tests: a raw TCP listener on 127.0.0.1:0, on its own
//! thread, that answers each request (one per connection) with the canned JSON for its path and
//! records what it received (before answering, so a request is recorded once its client has
//! the answer).

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

/// A request the fake server received.
pub struct Request {
    /// The request line and headers.
    pub head: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The request target: `/api/metrics?agent=r1&limit=60`.
    pub fn target(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }
}

/// Serves requests until the test ends; `answer(target)` gives the status line (`200 OK`) and
/// body of each. Returns the base URL and the received requests.
pub fn serve(
    answer: impl Fn(&str) -> (&'static str, Value) + Send + 'static,
) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let request = Request { head, body };
            let (status, value) = answer(request.target());
            if tx.send(request).is_err() {
                return;
            }
            let text = value.to_string();
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = reader.get_mut().write_all(response.as_bytes());
        }
    });
    (url, rx)
}
