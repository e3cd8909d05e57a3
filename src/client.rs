//! A small HTTP/1.1 client for the server's JSON API, used by `nms send-task` and `nms inspect`:
//! one request per connection (hyper 1 over an async-net `TcpStream`), plain `http` only, with a
//! connect timeout, a response timeout and a cap on the response size. An error answer from the
//! server (status 400 and above) becomes [`ClientError::Api`] carrying the message of its JSON
//! `error` field.
//!
//! ```no_run
//! let agents = smol::block_on(nms::client::get_json("http://127.0.0.1:9470", "/api/agents"))?;
//! println!("{} agents", agents.as_array().map_or(0, Vec::len));
//! # Ok::<(), nms::client::ClientError>(())
//! ```

use async_io::Timer;
use bytes::Bytes;
use futures_lite::future;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri, header};
use serde_json::Value;
use std::time::Duration;
use thiserror::Error;

/// The server address `nms send-task` and `nms inspect` use when `--server` is not given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9470";
/// How long to wait for the TCP connection to be accepted.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the whole response once connected.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read: 64 MiB.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Why a request to the server failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server URL does not parse or lacks a host.
    #[error("{url:?} is not a server URL ({reason}); give one like {DEFAULT_SERVER}")]
    BadUrl { url: String, reason: String },
    /// The URL asks for a scheme other than plain `http`.
    #[error(
        "{url}: only http:// is supported (the nms HTTP API does not speak TLS; keep it on loopback or tunnel it)"
    )]
    UnsupportedScheme { url: String },
    /// Nothing accepted the connection.
    #[error("cannot connect to {address} ({reason}): is `nms server` running? (--server URL)")]
    Connect {
        address: String,
        reason: std::io::Error,
    },
    /// The connection was neither accepted nor refused in time.
    #[error(
        "cannot connect to {address}: no answer within {} s: is `nms server` running? (--server URL)",
        CONNECT_TIMEOUT.as_secs()
    )]
    ConnectTimeout { address: String },
    /// The server did not answer in time.
    #[error("{url}: no response within {} s", RESPONSE_TIMEOUT.as_secs())]
    ResponseTimeout { url: String },
    /// The HTTP exchange failed (connection reset, malformed response, ...).
    #[error("{url}: the HTTP exchange failed")]
    Http {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The response body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("{url}: the response is larger than {} MiB", MAX_RESPONSE_BYTES >> 20)]
    TooLarge { url: String },
    /// A successful answer that is not JSON.
    #[error("{url}: the answer is not JSON")]
    NotJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// The server answered with an error status; `message` is its `error` field (or the body).
    #[error("{url}: the server answered {status}: {message}")]
    Api {
        url: String,
        status: u16,
        message: String,
    },
}

/// `GET base + path_and_query`, answered with JSON.
pub async fn get_json(base: &str, path_and_query: &str) -> Result<Value, ClientError> {
    get_json_as(base, None, path_and_query).await
}

/// [`get_json`] with the API token (`Authorization: Bearer TOKEN`), when there is one.
pub async fn get_json_as(
    base: &str,
    token: Option<&str>,
    path_and_query: &str,
) -> Result<Value, ClientError> {
    let (url, body) = request(Method::GET, base, path_and_query, None, token).await?;
    parse_json(&url, &body)
}

/// `DELETE base + path` with the API token, answered with JSON.
pub async fn delete_json(
    base: &str,
    token: Option<&str>,
    path: &str,
) -> Result<Value, ClientError> {
    let (url, body) = request(Method::DELETE, base, path, None, token).await?;
    parse_json(&url, &body)
}

/// `GET base + path_and_query`, answered with text of any type (the Prometheus exposition,
/// ...); bytes that are not UTF-8 are replaced.
pub async fn get_text(base: &str, path_and_query: &str) -> Result<String, ClientError> {
    let (_, body) = request(Method::GET, base, path_and_query, None, None).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `POST base + path` with a JSON body and the API token (when there is one), answered with
/// JSON.
pub async fn post_json(
    base: &str,
    token: Option<&str>,
    path: &str,
    body: &Value,
) -> Result<Value, ClientError> {
    let body = json_body(base, path, body)?;
    let (url, answer) = request(Method::POST, base, path, Some(body), token).await?;
    parse_json(&url, &answer)
}

/// `POST base + path` with a JSON body, for services whose successful answer is empty or not
/// JSON (Alertmanager's `POST /api/v2/alerts`): any status below 400 is success and the body
/// is ignored.
pub async fn post_json_accepting_any(
    base: &str,
    path: &str,
    body: &Value,
) -> Result<(), ClientError> {
    request(
        Method::POST,
        base,
        path,
        Some(json_body(base, path, body)?),
        None,
    )
    .await?;
    Ok(())
}

fn json_body(base: &str, path: &str, body: &Value) -> Result<Bytes, ClientError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| ClientError::Http {
            url: format!("{base}{path}"),
            source: Box::new(e),
        })
}

/// Where to connect and what to ask for, from a base URL and a path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// `host:port` for the `Host` header and for connecting.
    authority: String,
    /// The host without IPv6 brackets, for resolving.
    host: String,
    port: u16,
    /// The base URL's path (without a trailing `/`) followed by `path_and_query`.
    path_and_query: String,
    /// The whole URL, for error messages.
    url: String,
}

fn target(base: &str, path_and_query: &str) -> Result<Target, ClientError> {
    let bad = |reason: &str| ClientError::BadUrl {
        url: base.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = base
        .trim()
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(_) => {
            return Err(ClientError::UnsupportedScheme {
                url: base.to_string(),
            });
        }
        None => return Err(bad("it has no http:// scheme")),
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("it has no host"))?;
    if uri.query().is_some() {
        return Err(bad("a server URL has no query"));
    }
    // `Uri::port` is `None` for a port that is not a u16, so read the authority's text.
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let after_host = host_and_port
        .rsplit_once(']')
        .map_or(host_and_port, |(_, rest)| rest);
    let port = match after_host.rsplit_once(':') {
        None => 80,
        Some((_, port)) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(bad("its port is not a number from 1 to 65535")),
        },
    };
    let prefix = uri.path().trim_end_matches('/');
    let path_and_query = format!("{prefix}{path_and_query}");
    let host_bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let authority = format!("{host}:{port}");
    Ok(Target {
        url: format!("http://{authority}{path_and_query}"),
        authority,
        host: host_bare,
        port,
        path_and_query,
    })
}

/// Waits for `work`, or fails with `on_timeout` after `limit`.
async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, ClientError>>,
    on_timeout: impl FnOnce() -> ClientError,
) -> Result<T, ClientError> {
    future::or(work, async {
        Timer::after(limit).await;
        Err(on_timeout())
    })
    .await
}

/// Sends one request and returns the URL asked and the body of a successful (below 400) answer.
async fn request(
    method: Method,
    base: &str,
    path_and_query: &str,
    body: Option<Bytes>,
    token: Option<&str>,
) -> Result<(String, Bytes), ClientError> {
    let (url, body, _) = request_paged(method, base, path_and_query, body, token).await?;
    Ok((url, body))
}

/// `GET base + path_and_query` of a paged answer: the JSON and the cursor of the next page
/// (the `X-Next-Cursor` header), if there is one.
pub async fn get_json_page(
    base: &str,
    token: Option<&str>,
    path_and_query: &str,
) -> Result<(Value, Option<String>), ClientError> {
    let (url, body, next) = request_paged(Method::GET, base, path_and_query, None, token).await?;
    Ok((parse_json(&url, &body)?, next))
}

/// [`request`], also returning the next page's cursor.
async fn request_paged(
    method: Method,
    base: &str,
    path_and_query: &str,
    body: Option<Bytes>,
    token: Option<&str>,
) -> Result<(String, Bytes, Option<String>), ClientError> {
    let target = target(base, path_and_query)?;
    let stream = within(
        CONNECT_TIMEOUT,
        async {
            async_net::TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(|reason| ClientError::Connect {
                    address: target.authority.clone(),
                    reason,
                })
        },
        || ClientError::ConnectTimeout {
            address: target.authority.clone(),
        },
    )
    .await?;
    let url = target.url.clone();
    let (answer, next) = within(
        RESPONSE_TIMEOUT,
        exchange(stream, method, &target, body, token),
        || ClientError::ResponseTimeout { url: url.clone() },
    )
    .await?;
    Ok((url, answer, next))
}

/// Sends one request on a fresh connection and reads the whole answer.
async fn exchange(
    stream: async_net::TcpStream,
    method: Method,
    target: &Target,
    body: Option<Bytes>,
    token: Option<&str>,
) -> Result<(Bytes, Option<String>), ClientError> {
    let http = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Http {
        url: target.url.clone(),
        source,
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(smol_hyper::rt::FuturesIo::new(stream))
            .await
            .map_err(|e| http(Box::new(e)))?;
    let mut builder = Request::builder()
        .method(method)
        .uri(target.path_and_query.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("nms/", env!("CARGO_PKG_VERSION")),
        );
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = builder
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| http(Box::new(e)))?;
    // The connection future moves the bytes; it ends once `sender` is dropped after the answer.
    let ask = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http(Box::new(e)))?;
        let status = response.status();
        let next = response
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    ClientError::TooLarge {
                        url: target.url.clone(),
                    }
                } else {
                    http(e)
                }
            })?
            .to_bytes();
        drop(sender);
        check_status(&target.url, status.as_u16(), &bytes)?;
        Ok((bytes, next))
    };
    let (result, _closed) = future::zip(ask, connection).await;
    result
}

/// An error status (400 and above) becomes [`ClientError::Api`] with the server's message.
fn check_status(url: &str, status: u16, body: &[u8]) -> Result<(), ClientError> {
    if status >= 400 {
        let message = match &serde_json::from_slice::<Value>(body) {
            Ok(value) => match value.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => value.to_string(),
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    "(no message)".to_string()
                } else {
                    text.chars().take(500).collect()
                }
            }
        };
        return Err(ClientError::Api {
            url: url.to_string(),
            status,
            message,
        });
    }
    Ok(())
}

/// The JSON value of a successful answer.
fn parse_json(url: &str, body: &[u8]) -> Result<Value, ClientError> {
    serde_json::from_slice::<Value>(body).map_err(|source| ClientError::NotJson {
        url: url.to_string(),
        source,
    })
}

/// Turns a status and body into the JSON value or the server's error.
#[cfg(test)]
fn answer(url: &str, status: u16, body: &[u8]) -> Result<Value, ClientError> {
    check_status(url, status, body)?;
    parse_json(url, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_and_a_path_make_the_request_target() {
        let t = target("http://127.0.0.1:9470", "/api/agents").unwrap();
        assert_eq!(t.authority, "127.0.0.1:9470");
        assert_eq!(t.path_and_query, "/api/agents");
        assert_eq!(t.url, "http://127.0.0.1:9470/api/agents");
        let t = target("http://localhost/nms/", "/api/alerts?limit=3").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("localhost", 80));
        assert_eq!(t.path_and_query, "/nms/api/alerts?limit=3");
        let t = target("http://[::1]:9470", "/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority.as_str()),
            ("::1", "[::1]:9470")
        );
    }

    #[test]
    fn https_and_bad_urls_are_refused_with_a_clear_message() {
        let e = target("https://127.0.0.1:9470", "/").unwrap_err();
        assert!(e.to_string().contains("only http://"), "{e}");
        for bad in [
            "127.0.0.1:9470",
            "http://",
            "not a url",
            "http://h:99999",
            "http://h:0",
            "http://h/?q=1",
        ] {
            let e = target(bad, "/").unwrap_err();
            assert!(matches!(e, ClientError::BadUrl { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains("http://127.0.0.1:9470"), "{e}");
        }
    }

    #[test]
    fn an_error_status_carries_the_servers_message() {
        let e = answer("u", 400, br#"{"error": "task.json: [0] at 1:2: bad"}"#).unwrap_err();
        assert!(
            matches!(&e, ClientError::Api { status: 400, message, .. } if message == "task.json: [0] at 1:2: bad"),
            "{e:?}"
        );
        let e = answer("u", 502, b"Bad Gateway\n").unwrap_err();
        assert!(matches!(&e, ClientError::Api { message, .. } if message == "Bad Gateway"));
        assert!(matches!(
            answer("u", 200, b"<html>"),
            Err(ClientError::NotJson { .. })
        ));
        assert_eq!(answer("u", 200, b"[1]").unwrap(), serde_json::json!([1]));
    }

    #[test]
    fn nothing_listening_is_a_connect_error_that_names_the_server_flag() {
        // Bind then drop a listener, so that the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let e = smol::block_on(get_json(&format!("http://127.0.0.1:{port}"), "/api/agents"))
            .unwrap_err();
        assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("is `nms server` running? (--server URL)"),
            "{e}"
        );
    }
}
