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

use super::dispatch::TaskUpload;
use super::{Shared, install_upload, page, prometheus};
use crate::log::{self, Level};
use crate::store::{AlertRecord, MetricRecord, Query};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
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

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: async_net::TcpListener, shared: Arc<Shared>) {
    let limiter =
        crate::limits::ConnectionLimiter::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS);
    let mut backoff = crate::limits::AcceptBackoff::new("HTTP");
    let mut refused = log::Throttle::new(Duration::from_secs(10));
    loop {
        let (stream, peer) = match listener.accept().await {
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
        let shared = shared.clone();
        smol::spawn(async move {
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
        })
        .detach();
    }
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
    if !shared.options.api.allows(&req, write) {
        let mut reply = error(
            StatusCode::UNAUTHORIZED,
            format!(
                "{method} {path} needs the API token: send `Authorization: Bearer TOKEN` (the \
                 server's --api-token-file; `nms send-task`, `nms inspect` and `nms agents` read \
                 it from --api-token-file, NMS_API_TOKEN or the settings file)"
            ),
        );
        reply.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"nms\""),
        );
        return reply;
    }
    if let Some(name) = path.strip_prefix("/api/agents/") {
        return match method {
            Method::DELETE => forget_agent(shared, name),
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path} (DELETE forgets the agent)"),
            ),
        };
    }
    match (method.clone(), path.as_str()) {
        (Method::GET, "/api/agents") => agents(shared),
        (Method::GET, "/api/alerts") => match parse_query(&query) {
            Ok(q) => alerts(shared, &q),
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (Method::GET, "/api/metrics") => match parse_query(&query) {
            Ok(q) => metrics(shared, &q),
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (Method::GET, "/api/tasks") => tasks(shared),
        (Method::POST, "/api/tasks") => post_task(shared, req).await,
        (Method::GET, "/api/status") => status(shared),
        (Method::GET, "/metrics") => {
            let endpoint = shared
                .endpoint_stats
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default();
            let text = prometheus::render(&shared.state(), &endpoint);
            Response::builder()
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(Full::new(Bytes::from(text)))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
        }
        (Method::GET, "/") => status_page(shared),
        (Method::GET, "/api") => json_reply(
            StatusCode::OK,
            &json!({
                "service": "nms",
                "version": env!("CARGO_PKG_VERSION"),
                "endpoints": ["/", "/api/agents", "/api/agents/NAME (DELETE)", "/api/alerts", "/api/metrics?agent=NAME", "/api/tasks", "/api/status", "/metrics"],
            }),
        ),
        (
            _,
            "/api/agents" | "/api/alerts" | "/api/metrics" | "/api/tasks" | "/api/status"
            | "/metrics" | "/" | "/api",
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
        _ => error(StatusCode::NOT_FOUND, format!("no such endpoint: {path}")),
    }
}

/// What the status page may load: nothing but its own inline style sheet and `data:` images.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the status page (HTML with inline SVG graphs).
fn status_page(shared: &Arc<Shared>) -> Reply {
    let page = page::StatusPage::gather(&shared.state(), log::now_ms());
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("content-security-policy", PAGE_POLICY)
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(page.render())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Parses `agent`, `since` and `limit`.
fn parse_query(query: &str) -> Result<Query, String> {
    let mut q = Query::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "agent" => q.agent = Some(v.into_owned()),
            "since" => {
                q.since_ms = Some(log::parse_time(&v).ok_or_else(|| {
                    format!("since={v}: not a time (give Unix milliseconds or RFC 3339, e.g. 2026-11-27T10:00:00Z)")
                })?)
            }
            "limit" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("limit={v}: not a non-negative integer"))?;
                q.limit = Some(n.min(MAX_LIMIT));
            }
            other => return Err(format!("unknown query parameter {other:?} (known: agent, since, limit)")),
        }
    }
    if q.limit.is_none() {
        q.limit = Some(1000);
    }
    Ok(q)
}

fn agents(shared: &Arc<Shared>) -> Reply {
    let state = shared.state();
    let list: Vec<Value> = state
        .registry
        .all()
        .into_iter()
        .map(|a| {
            let tasks: Vec<String> = state
                .dispatch
                .tasks()
                .filter(|t| t.task.device(&a.name).is_some())
                .map(|t| t.task.task_id.clone())
                .collect();
            json!({
                "name": a.name,
                "id": a.id,
                "address": a.address.map(|x| x.to_string()),
                "status": a.status,
                "last_seen": log::rfc3339(a.last_seen_ms),
                "last_seen_ms": a.last_seen_ms,
                "first_registered": log::rfc3339(a.first_registered_ms),
                "registrations": a.registrations,
                "software": a.software,
                "tasks": tasks,
            })
        })
        .collect();
    json_reply(StatusCode::OK, &Value::Array(list))
}

/// The API form of an alert.
pub fn alert_json(a: &AlertRecord) -> Value {
    json!({
        "alert_id": format!("{:016x}", a.alert_id),
        "agent": a.agent,
        "task": a.task,
        "kind": a.kind.kind(),
        "severity": a.severity,
        "value": a.value,
        "threshold": a.threshold,
        "rule": a.rule,
        "message": a.message,
        "time": log::rfc3339(a.time_ms),
        "time_ms": a.time_ms,
        "received": log::rfc3339(a.received_ms),
        "resolved": a.resolved_ms.map(log::rfc3339),
    })
}

/// The API form of a metrics record: named fields at the top level.
pub fn metric_json(m: &MetricRecord) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("agent".into(), json!(m.agent));
    obj.insert("task".into(), json!(m.task));
    obj.insert("time".into(), json!(log::rfc3339(m.time_ms)));
    obj.insert("time_ms".into(), json!(m.time_ms));
    if let Some(t) = &m.target {
        obj.insert("target".into(), json!(t));
    }
    for (k, v) in &m.values {
        obj.insert(k.clone(), json!(v));
    }
    if !m.interfaces.is_empty() {
        obj.insert("interfaces".into(), json!(m.interfaces));
    }
    Value::Object(obj)
}

fn alerts(shared: &Arc<Shared>, q: &Query) -> Reply {
    let list: Vec<Value> = shared
        .state()
        .store
        .alerts(q)
        .iter()
        .map(alert_json)
        .collect();
    json_reply(StatusCode::OK, &Value::Array(list))
}

fn metrics(shared: &Arc<Shared>, q: &Query) -> Reply {
    let list: Vec<Value> = shared
        .state()
        .store
        .metrics(q)
        .iter()
        .map(metric_json)
        .collect();
    json_reply(StatusCode::OK, &Value::Array(list))
}

fn tasks(shared: &Arc<Shared>) -> Reply {
    let state = shared.state();
    let list: Vec<Value> = state
        .dispatch
        .tasks()
        .map(|t| {
            json!({
                "task_id": t.task.task_id,
                "number": t.number,
                "origin": t.origin,
                "dialect": t.task.dialect,
                "frequency_s": t.task.frequency_s,
                "devices": t.task.devices,
            })
        })
        .collect();
    json_reply(StatusCode::OK, &Value::Array(list))
}

fn status(shared: &Arc<Shared>) -> Reply {
    let endpoint = shared
        .endpoint_stats
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let state = shared.state();
    let up = state
        .registry
        .all()
        .iter()
        .filter(|a| a.status == super::registry::Status::Up)
        .count();
    json_reply(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "agents": state.registry.len(),
            "agents_up": up,
            "tasks": state.dispatch.tasks().count(),
            "store": state.store.stats,
            "nettask": endpoint,
            "socket_send_errors": shared.socket_stats.send_errors.load(std::sync::atomic::Ordering::Relaxed),
            "data_dir": shared.options.data_dir,
            "authenticated": shared.options.keys.is_keyed(),
            "new_agents_refused": state.refused_new_agents,
            "alerts_refused": state.refused_alerts,
            "alertmanager": state.alertmanager.as_ref().map(|f| f.status()),
        }),
    )
}

async fn post_task(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    if let Some(len) = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > MAX_BODY
    {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {len} bytes exceeds the limit of {MAX_BODY} bytes"),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body exceeds the limit of {MAX_BODY} bytes"),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
            };
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the request body is not UTF-8 text",
        );
    };
    // `nms send-task` posts an upload (the file's text, its folder and its rule files); a bare
    // task file posted with curl is accepted too, rule files then resolved on the server.
    let upload = match serde_json::from_str::<TaskUpload>(text) {
        Ok(u) => u,
        Err(_) => TaskUpload {
            origin: "request body".into(),
            base_dir: ".".into(),
            content: text.to_string(),
            rule_files: read_local_rules(text),
        },
    };
    match install_upload(shared, &upload) {
        Ok(outcomes) => json_reply(StatusCode::OK, &json!({ "tasks": outcomes })),
        Err(e) => {
            log::event(Level::Warn, "TASK", format_args!("upload refused: {e}"));
            error(StatusCode::BAD_REQUEST, e)
        }
    }
}

/// `DELETE /api/agents/NAME`: forgets an agent (its session, its registry entry; its stored
/// metrics and alerts stay). If it is still running it registers again, under a new id.
fn forget_agent(shared: &Arc<Shared>, encoded: &str) -> Reply {
    // Percent-decoding only: a `+` in a name is a `+`.
    let name = form_urlencoded::parse(format!("n={}", encoded.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match super::forget_agent(shared, &name) {
        Ok(Some(id)) => json_reply(StatusCode::OK, &json!({ "forgotten": name, "id": id })),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no agent is named {name:?}")),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{name:?} was not forgotten: {e}"),
        ),
    }
}

/// For a bare task file: the rule files it names, read relative to the server's folder.
fn read_local_rules(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    if let Ok(tasks) = crate::task::parse("request body", text, std::path::Path::new(".")) {
        for t in tasks {
            for d in t.devices {
                for p in d.rule_files {
                    if let Ok(source) = std::fs::read_to_string(&p) {
                        out.insert(p.display().to_string(), source);
                    }
                }
            }
        }
    }
    out
}
