//! The HTTP API (hyper 1 on smol): the status page at `/`, an index of the API at `/api`, agents,
//! alerts, metrics, task upload, server status, and the Prometheus exposition. Bound to loopback by default. Every error is a JSON object
//! `{"error": "..."}` with a 4xx or 5xx status; times are RFC 3339 text (`time`) and Unix
//! milliseconds (`time_ms`), and `since` accepts either.
//!
//! Access ([`ApiAccess`]): every write (`POST /api/tasks`, `DELETE /api/agents/NAME`) needs the
//! API token as `Authorization: Bearer TOKEN`; reads need it too unless they are public (the
//! default on a loopback address only). Each connection serves one request, which must arrive
//! whole (head and body) within [`REQUEST_DEADLINE`] of the connection; at most
//! [`MAX_CONNECTIONS`] are open, [`MAX_CONNECTIONS_PER_ADDRESS`] from one address.

mod params;
mod reads;
mod routes;
mod writes;

pub use reads::{alert_json, metric_json};

use params::{parse_alert_query, parse_metrics_query};
use reads::{agents, alerts, metrics, status, status_page, tasks};
use routes::{Route, exposition, find_endpoint, index, unauthorized};
use writes::{
    acknowledge, add_silence, expire_silence, forget_agent, post_task, remove_task, silences,
};

use super::Shared;
use crate::log::{self, Level};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted (a task file).
pub const MAX_BODY: usize = 1024 * 1024;
/// The whole request (head and body) must have arrived this long after the connection opened.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The answer must have been written this long after the connection opened.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(60);
/// Most HTTP connections open at once, and from one address.
pub const MAX_CONNECTIONS: usize = 1024;
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;

/// Who may use the API.
#[derive(Debug, Clone)]
pub struct ApiAccess {
    /// The bearer token writes need (and reads, when they are not public). `None` only with
    /// `--insecure-api`: then writes need nothing.
    pub token: Option<String>,
    /// Whether reads (GET, HEAD) need no token.
    pub public_read: bool,
}

impl ApiAccess {
    /// Whether `req` may go on: writes always need the token (when there is one), reads when
    /// they are not public.
    fn allows<B>(&self, req: &Request<B>, write: bool) -> bool {
        if !write && self.public_read {
            return true;
        }
        let Some(token) = &self.token else {
            return write;
        };
        req.headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same_secret(given.trim().as_bytes(), token.as_bytes()))
    }
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
/// Most records one query returns.
pub const MAX_LIMIT: usize = 100_000;

type Reply = Response<Full<Bytes>>;

/// How long requests being answered when the server stops may take to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves the API on `listener` until `shutdown` completes; then accepts nothing more and
/// gives the requests being answered [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: async_net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use futures_lite::FutureExt;
    let limiter =
        crate::limits::ConnectionLimiter::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS);
    let mut backoff = crate::limits::AcceptBackoff::new("HTTP");
    let mut refused = log::Throttle::new(Duration::from_secs(10));
    let mut open: Vec<smol::Task<()>> = Vec::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                (&mut shutdown).await;
                None
            })
            .await;
        let Some(accepted) = accepted else {
            break;
        };
        open.retain(|t| !t.is_finished());
        let (stream, peer) = match accepted {
            Ok(c) => {
                backoff.accepted();
                c
            }
            Err(e) => {
                async_io::Timer::after(backoff.failed(&e)).await;
                continue;
            }
        };
        let permit = match limiter.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(hit) => {
                if let Some(held_back) = refused.allow(log::now_ms()) {
                    log::event(
                        Level::Warn,
                        "HTTP",
                        format_args!("refusing {peer}: {hit}{}", log::held_back_note(held_back)),
                    );
                }
                continue;
            }
        };
        open.push(smol::spawn(serve_connection(
            shared.clone(),
            stream,
            permit,
        )));
    }
    drop(listener);
    let grace = async_io::Timer::after(SHUTDOWN_GRACE);
    let finished = async {
        for task in &mut open {
            task.await;
        }
    };
    finished
        .or(async {
            grace.await;
        })
        .await;
    for task in open {
        task.cancel().await;
    }
}

/// Answers the one request of a connection: its head must arrive within [`REQUEST_DEADLINE`],
/// the answer be written within [`RESPONSE_DEADLINE`]; the permit is held until it is closed.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: async_net::TcpStream,
    permit: crate::limits::ConnectionPermit,
) {
    let _permit = permit;
    let opened = std::time::Instant::now();
    let mut stream = crate::limits::Deadlined::new(
        stream,
        opened + REQUEST_DEADLINE,
        opened + RESPONSE_DEADLINE,
    );
    let head = match super::http_head::read_first_head(&mut stream).await {
        super::http_head::Head::Ok(head) => head,
        super::http_head::Head::Refused(status, message) => {
            super::http_head::refuse(&mut stream, status, &message).await;
            return;
        }
        super::http_head::Head::Gone => return,
    };
    let io = smol_hyper::rt::FuturesIo::new(super::http_head::Prefixed::new(head, stream));
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(smol_hyper::rt::SmolTimer::new())
        .header_read_timeout(REQUEST_DEADLINE)
        .keep_alive(false)
        .max_buf_size(64 * 1024)
        .serve_connection(io, service)
        .await;
}

fn json_reply(status: StatusCode, value: &Value) -> Reply {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Reply {
    json_reply(status, &json!({ "error": message.to_string() }))
}

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    // HEAD is answered like GET; hyper leaves the body out.
    let method = match req.method() {
        &Method::HEAD => Method::GET,
        m => m.clone(),
    };
    let write = method != Method::GET;
    if !shared.api().allows(&req, write) {
        return unauthorized(&method, &path);
    }
    let Some((endpoint, rest)) = find_endpoint(&path) else {
        return error(StatusCode::NOT_FOUND, format!("no such endpoint: {path}"));
    };
    let rest = rest.to_string();
    match (endpoint.route, method.clone()) {
        (Route::Agent, Method::DELETE) => forget_agent(shared, &rest),
        (Route::Task, Method::DELETE) => remove_task(shared, &percent_decoded(&rest)),
        (Route::Alert, Method::POST) if rest.ends_with("/ack") => {
            let id = rest.strip_suffix("/ack").unwrap_or_default();
            acknowledge(shared, id, req).await
        }
        (Route::Silence, Method::DELETE) => expire_silence(shared, &percent_decoded(&rest)),
        (Route::Agents, Method::GET) => agents(shared),
        (Route::Alerts, Method::GET) => match parse_alert_query(&query) {
            Ok(q) => alerts(shared, q).await,
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (Route::Metrics, Method::GET) => match parse_metrics_query(&query) {
            Ok(q) => metrics(shared, q, &path).await,
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (Route::Tasks, Method::GET) => tasks(shared),
        (Route::Tasks, Method::POST) => post_task(shared, req).await,
        (Route::Silences, Method::GET) => silences(shared),
        (Route::Silences, Method::POST) => add_silence(shared, req).await,
        (Route::Healthy, Method::GET) => plain(StatusCode::OK, "nms is Healthy.\n"),
        (Route::Ready, Method::GET) => plain(StatusCode::OK, "nms is Ready.\n"),
        (Route::Status, Method::GET) => status(shared),
        (Route::Exposition, Method::GET) => exposition(shared),
        (Route::Page, Method::GET) => status_page(shared, &query).await,
        (Route::Index, Method::GET) => index(),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}{}", endpoint.allowed),
        ),
    }
}

/// A plain-text answer (Prometheus' `/-/healthy`, `/-/ready`).
pub(super) fn plain(status: StatusCode, text: &'static str) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A path segment with percent-escapes decoded (a `+` stays a `+`).
pub(super) fn percent_decoded(encoded: &str) -> String {
    form_urlencoded::parse(format!("n={}", encoded.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
