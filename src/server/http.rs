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
use crate::store::{AlertQuery, AlertRecord, RawQuery, Report, StepQuery, StepSeries};
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
        let shared = shared.clone();
        open.push(smol::spawn(async move {
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
        }));
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

/// What an endpoint of [`ENDPOINTS`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Page,
    Index,
    Agents,
    Agent,
    Alerts,
    Alert,
    Silences,
    Silence,
    Metrics,
    Tasks,
    Task,
    Status,
    Exposition,
    Healthy,
    Ready,
}

/// One path of the API: the path itself, or (ending in `/`) the start of the paths that name
/// one thing under it.
struct Endpoint {
    path: &'static str,
    route: Route,
    /// Its line in the index at `/api` (`None`: not listed).
    listed: Option<&'static str>,
    /// Said after the path when a method is not allowed on it.
    allowed: &'static str,
}

/// Every path the HTTP API answers, in the order the index lists them.
const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        path: "/",
        route: Route::Page,
        listed: Some("/"),
        allowed: "",
    },
    Endpoint {
        path: "/api/agents",
        route: Route::Agents,
        listed: Some("/api/agents"),
        allowed: "",
    },
    Endpoint {
        path: "/api/agents/",
        route: Route::Agent,
        listed: Some("/api/agents/NAME (DELETE)"),
        allowed: " (DELETE forgets the agent)",
    },
    Endpoint {
        path: "/api/alerts",
        route: Route::Alerts,
        listed: Some("/api/alerts?agent=&from=&to=&limit=&firing="),
        allowed: "",
    },
    Endpoint {
        path: "/api/alerts/",
        route: Route::Alert,
        listed: Some("/api/alerts/ID/ack (POST)"),
        allowed: " (POST /api/alerts/ID/ack acknowledges alert ID)",
    },
    Endpoint {
        path: "/api/silences",
        route: Route::Silences,
        listed: Some("/api/silences (GET, POST)"),
        allowed: "",
    },
    Endpoint {
        path: "/api/silences/",
        route: Route::Silence,
        listed: Some("/api/silences/ID (DELETE)"),
        allowed: " (DELETE expires the silence)",
    },
    Endpoint {
        path: "/api/metrics",
        route: Route::Metrics,
        listed: Some("/api/metrics?agent=&task=&from=&to=&step=&fields=&limit=&after="),
        allowed: "",
    },
    Endpoint {
        path: "/api/tasks",
        route: Route::Tasks,
        listed: Some("/api/tasks (GET, POST)"),
        allowed: "",
    },
    Endpoint {
        path: "/api/tasks/",
        route: Route::Task,
        listed: Some("/api/tasks/ID (DELETE)"),
        allowed: " (DELETE removes the task)",
    },
    Endpoint {
        path: "/api/status",
        route: Route::Status,
        listed: Some("/api/status"),
        allowed: "",
    },
    Endpoint {
        path: "/metrics",
        route: Route::Exposition,
        listed: Some("/metrics"),
        allowed: "",
    },
    Endpoint {
        path: "/-/healthy",
        route: Route::Healthy,
        listed: Some("/-/healthy"),
        allowed: "",
    },
    Endpoint {
        path: "/-/ready",
        route: Route::Ready,
        listed: Some("/-/ready"),
        allowed: "",
    },
    Endpoint {
        path: "/api",
        route: Route::Index,
        listed: None,
        allowed: "",
    },
];

/// The endpoint that answers `path`, with what follows a prefix endpoint's path (empty for
/// the others).
fn find_endpoint(path: &str) -> Option<(&'static Endpoint, &str)> {
    ENDPOINTS.iter().find_map(|e| {
        if e.path.len() > 1 && e.path.ends_with('/') {
            path.strip_prefix(e.path).map(|rest| (e, rest))
        } else {
            (path == e.path).then_some((e, ""))
        }
    })
}

/// 401 with the header that says which scheme the token goes in.
fn unauthorized(method: &Method, path: &str) -> Reply {
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
    reply
}

/// `GET /api`: the index of the endpoints.
fn index() -> Reply {
    let endpoints: Vec<&str> = ENDPOINTS.iter().filter_map(|e| e.listed).collect();
    json_reply(
        StatusCode::OK,
        &json!({
            "service": "nms",
            "version": env!("CARGO_PKG_VERSION"),
            "endpoints": endpoints,
        }),
    )
}

/// `GET /metrics`: the Prometheus exposition.
fn exposition(shared: &Arc<Shared>) -> Reply {
    let endpoint = shared
        .endpoint_stats
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let text = prometheus::render(shared, &endpoint);
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// What the status page may load: nothing but its own inline style sheet and `data:` images.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the status page (HTML with inline SVG graphs); `?range=` picks the time range.
async fn status_page(shared: &Arc<Shared>, query: &str) -> Reply {
    let mut range = page::Range::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "range" {
            match page::Range::parse(&v) {
                Some(r) => range = r,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "range={v}: not a range the page shows (one of {})",
                            page::Range::names().join(", ")
                        ),
                    );
                }
            }
        }
    }
    let shared = shared.clone();
    let page = smol::unblock(move || page::StatusPage::gather(&shared, log::now_ms(), range)).await;
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("content-security-policy", PAGE_POLICY)
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(page.render())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A time parameter: Unix milliseconds or RFC 3339.
fn time_param(name: &str, v: &str) -> Result<u64, String> {
    log::parse_time(v).ok_or_else(|| {
        format!(
            "{name}={v}: not a time (give Unix milliseconds or RFC 3339, e.g. 2026-11-27T10:00:00Z)"
        )
    })
}

fn limit_param(v: &str) -> Result<usize, String> {
    let n: usize = v
        .parse()
        .map_err(|_| format!("limit={v}: not a non-negative integer"))?;
    Ok(n.clamp(1, MAX_LIMIT))
}

/// A duration parameter: `60s`, `5m`, `1h`, or plain seconds.
fn duration_param(name: &str, v: &str) -> Result<u64, String> {
    let ms = match v.parse::<u64>() {
        Ok(s) => s.saturating_mul(1000),
        Err(_) => humantime::parse_duration(v)
            .map_err(|_| format!("{name}={v}: not a duration (e.g. 60s, 5m, 1h)"))?
            .as_millis() as u64,
    };
    if ms < 1000 {
        return Err(format!("{name}={v}: must be at least 1s"));
    }
    Ok(ms)
}

/// What `GET /api/metrics` was asked.
#[derive(Debug, Clone, Default)]
struct MetricsParams {
    raw: RawQuery,
    step_ms: Option<u64>,
    fields: Vec<crate::schema::Field>,
}

fn parse_metrics_query(query: &str) -> Result<MetricsParams, String> {
    let mut p = MetricsParams {
        raw: RawQuery {
            limit: 1000,
            ..RawQuery::default()
        },
        ..MetricsParams::default()
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "agent" => p.raw.agent = Some(v.into_owned()),
            "task" => p.raw.task = Some(v.into_owned()),
            "from" | "since" => p.raw.from_ms = Some(time_param(&k, &v)?),
            "to" => p.raw.to_ms = Some(time_param(&k, &v)?),
            "limit" => p.raw.limit = limit_param(&v)?,
            "after" => {
                if v.split_once('.')
                    .is_none_or(|(a, b)| a.parse::<u64>().is_err() || b.parse::<u32>().is_err())
                {
                    return Err(format!(
                        "after={v}: not a cursor (pass the X-Next-Cursor of the previous page)"
                    ));
                }
                p.raw.after = Some(v.into_owned());
            }
            "step" => p.step_ms = Some(duration_param("step", &v)?),
            "fields" => {
                for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let field = crate::schema::Field::by_name(name).ok_or_else(|| {
                        format!(
                            "fields={v}: unknown field {name:?} (known: {})",
                            crate::schema::field_names().join(", ")
                        )
                    })?;
                    p.fields.push(field);
                }
            }
            other => {
                return Err(format!(
                    "unknown query parameter {other:?} (known: agent, task, from, to, step, fields, limit, after)"
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (p.raw.from_ms, p.raw.to_ms)
        && from >= to
    {
        return Err(format!("from={from} is not before to={to}"));
    }
    if p.step_ms.is_some() && p.raw.after.is_some() {
        return Err("after= pages raw reports; it does not go with step=".into());
    }
    Ok(p)
}

/// What `GET /api/alerts` was asked.
#[derive(Debug, Clone, Default)]
struct AlertParams {
    query: AlertQuery,
    /// Only the alerts firing now (silenced ones included, marked).
    firing: bool,
}

fn parse_alert_query(query: &str) -> Result<AlertParams, String> {
    let mut q = AlertQuery {
        limit: 1000,
        ..AlertQuery::default()
    };
    let mut firing = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "agent" => q.agent = Some(v.into_owned()),
            "from" | "since" => q.from_ms = Some(time_param(&k, &v)?),
            "to" => q.to_ms = Some(time_param(&k, &v)?),
            "limit" => q.limit = limit_param(&v)?,
            "firing" => {
                firing = match v.as_ref() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("firing={v}: give true or false")),
                }
            }
            other => {
                return Err(format!(
                    "unknown query parameter {other:?} (known: agent, from, to, limit, firing)"
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (q.from_ms, q.to_ms)
        && from >= to
    {
        return Err(format!("from={from} is not before to={to}"));
    }
    Ok(AlertParams { query: q, firing })
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

/// The API form of a metrics report (see [`Report::to_json`]).
pub fn metric_json(m: &Report) -> Value {
    m.to_json()
}

async fn alerts(shared: &Arc<Shared>, p: AlertParams) -> Reply {
    let now = log::now_ms();
    let list: Vec<(AlertRecord, Option<u64>)> = if p.firing {
        let q = &p.query;
        shared
            .firing()
            .matching(|r| {
                q.agent.as_deref().is_none_or(|a| a == r.agent)
                    && q.from_ms.is_none_or(|f| r.time_ms >= f)
                    && q.to_ms.is_none_or(|t| r.time_ms < t)
            })
            .into_iter()
            .take(q.limit)
            .map(|a| (a.record, Some(a.since_ms)))
            .collect()
    } else {
        let store = shared.store.clone();
        let q = p.query;
        match smol::unblock(move || store.alerts(&q)).await {
            Ok(list) => list.into_iter().map(|r| (r, None)).collect(),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
        }
    };
    let acks = shared.acks();
    let silences = shared.silences();
    let out: Vec<Value> = list
        .iter()
        .map(|(r, since)| {
            let mut v = alert_json(r);
            if let Some(since) = since {
                v["firing_since"] = json!(log::rfc3339(*since));
                v["firing_since_ms"] = json!(since);
            }
            v["acknowledged"] = acks.get(r.alert_id).map_or(Value::Null, |a| a.to_json());
            if r.resolved_ms.is_none() && crate::server::firing::can_fire(r) {
                v["silenced_by"] = silences
                    .silencing(r, now)
                    .map_or(Value::Null, |s| json!(s.id));
            }
            v
        })
        .collect();
    json_reply(StatusCode::OK, &Value::Array(out))
}

/// A plain-text answer (Prometheus' `/-/healthy`, `/-/ready`).
fn plain(status: StatusCode, text: &'static str) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A path segment with percent-escapes decoded (a `+` stays a `+`).
fn percent_decoded(encoded: &str) -> String {
    form_urlencoded::parse(format!("n={}", encoded.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The request body as UTF-8 text, at most [`MAX_BODY`] bytes; an error answer otherwise.
async fn body_text(req: Request<Incoming>) -> Result<String, Reply> {
    if let Some(len) = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > MAX_BODY
    {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {len} bytes exceeds the limit of {MAX_BODY} bytes"),
        ));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Err(
                if e.downcast_ref::<http_body_util::LengthLimitError>()
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
                },
            );
        }
    };
    String::from_utf8(body.to_vec()).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "the request body is not UTF-8 text",
        )
    })
}

/// A JSON request body of type `T`; an error answer naming what is wrong otherwise.
async fn body_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    what: &str,
) -> Result<T, Reply> {
    let text = body_text(req).await?;
    let text = if text.trim().is_empty() { "{}" } else { &text };
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!(
                "{what}: {} at line {} column {}{}",
                e.inner(),
                e.inner().line(),
                e.inner().column(),
                match e.path().to_string().as_str() {
                    "." => String::new(),
                    p => format!(" ({p})"),
                }
            ),
        )
    })
}

/// `DELETE /api/tasks/ID`: removes a task posted over the API.
fn remove_task(shared: &Arc<Shared>, task_id: &str) -> Reply {
    use crate::server::operate::RemoveError;
    match crate::server::operate::remove_task(shared, task_id) {
        Ok(removed) => json_reply(StatusCode::OK, &json!({ "removed": removed })),
        Err(e @ RemoveError::NotFound(_)) => error(StatusCode::NOT_FOUND, e),
        Err(e @ RemoveError::FromFile { .. }) => error(StatusCode::CONFLICT, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// What `POST /api/alerts/ID/ack` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    by: String,
    #[serde(default)]
    comment: String,
}

/// `POST /api/alerts/ID/ack`: acknowledges alert ID (16 hex digits).
async fn acknowledge(shared: &Arc<Shared>, id: &str, req: Request<Incoming>) -> Reply {
    let Ok(alert_id) = u64::from_str_radix(id.trim_start_matches("0x"), 16) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an alert id (16 hex digits, as /api/alerts gives it)"),
        );
    };
    let request: AckRequest = match body_json(req, "acknowledgement").await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let shared = shared.clone();
    let outcome = smol::unblock(move || {
        crate::server::operate::acknowledge(&shared, alert_id, &request.by, &request.comment)
    })
    .await;
    match outcome {
        Ok(Some((record, ack))) => {
            let mut v = alert_json(&record);
            v["acknowledged"] = ack.to_json();
            json_reply(StatusCode::OK, &v)
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no alert {alert_id:016x} is stored"),
        ),
        Err(e @ crate::server::ack::AckError::Invalid(_)) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `GET /api/silences`: every silence kept (ended ones for a week), newest first.
fn silences(shared: &Arc<Shared>) -> Reply {
    let now = log::now_ms();
    let list: Vec<Value> = shared
        .silences()
        .all()
        .iter()
        .map(|s| s.to_json(now))
        .collect();
    json_reply(StatusCode::OK, &Value::Array(list))
}

/// `POST /api/silences`: sets a silence.
async fn add_silence(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let request: crate::server::silence::SilenceRequest = match body_json(req, "silence").await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    match crate::server::operate::add_silence(shared, &request) {
        Ok(s) => json_reply(StatusCode::OK, &s.to_json(log::now_ms())),
        Err(e @ crate::server::silence::SilenceError::Invalid(_)) => {
            error(StatusCode::BAD_REQUEST, e)
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `DELETE /api/silences/ID`: ends a silence now.
fn expire_silence(shared: &Arc<Shared>, id: &str) -> Reply {
    match crate::server::operate::expire_silence(shared, id) {
        Ok(Some(s)) => json_reply(StatusCode::OK, &s.to_json(log::now_ms())),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no silence has the id {id:?}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// One column's statistics over a step, as the API writes them.
#[derive(serde::Serialize)]
struct StatJson {
    count: u64,
    min: f64,
    max: f64,
    mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    p10: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p90: Option<f64>,
}

/// One step as the API writes it: its time, each field's statistics by its API name, an
/// iperf test's transport, and per interface its fields under `interfaces`.
struct StepJson<'a>(&'a crate::store::query::StepRow);

impl serde::Serialize for StepJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let row = self.0;
        let stat = |s: &crate::store::query::StepStat| StatJson {
            count: s.count,
            min: s.min,
            max: s.max,
            mean: s.mean,
            p10: s.quantiles.map(|q| q[0]),
            p50: s.quantiles.map(|q| q[1]),
            p90: s.quantiles.map(|q| q[2]),
        };
        let mut interfaces: std::collections::BTreeMap<&str, Vec<(String, StatJson)>> =
            Default::default();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("time", &log::rfc3339(row.start_ms))?;
        map.serialize_entry("time_ms", &row.start_ms)?;
        let mut transport = None;
        for s in &row.stats {
            let name =
                crate::schema::api_name(s.column.field, s.column.instance.as_deref()).into_owned();
            match (&s.column.instance, s.column.field.per_interface()) {
                (Some(i), true) => interfaces.entry(i).or_default().push((name, stat(s))),
                (Some(t), false) => {
                    transport = Some(t.as_str());
                    map.serialize_entry(&name, &stat(s))?;
                }
                (None, _) => map.serialize_entry(&name, &stat(s))?,
            }
        }
        if let Some(t) = transport {
            map.serialize_entry("transport", t)?;
        }
        if !interfaces.is_empty() {
            let interfaces: std::collections::BTreeMap<
                &str,
                std::collections::BTreeMap<String, StatJson>,
            > = interfaces
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect();
            map.serialize_entry("interfaces", &interfaces)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct SeriesJson<'a> {
    agent: &'a str,
    task: &'a str,
    target: Option<&'a str>,
    tier: &'a str,
    steps: Vec<StepJson<'a>>,
}

#[derive(serde::Serialize)]
struct StepsJson<'a> {
    from: String,
    from_ms: u64,
    to: String,
    to_ms: u64,
    step_ms: u64,
    series: Vec<SeriesJson<'a>>,
}

/// The API form of steps, as compact JSON (a month of steps is large).
fn steps_reply(series: &[StepSeries], step_ms: u64, from: u64, to: u64) -> Reply {
    let body = StepsJson {
        from: log::rfc3339(from),
        from_ms: from,
        to: log::rfc3339(to),
        to_ms: to,
        step_ms,
        series: series
            .iter()
            .map(|s| SeriesJson {
                agent: &s.agent,
                task: &s.task,
                target: s.target.as_deref(),
                tier: s.tier,
                steps: s.steps.iter().map(StepJson).collect(),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn metrics(shared: &Arc<Shared>, p: MetricsParams, path: &str) -> Reply {
    let store = shared.store.clone();
    if let Some(step_ms) = p.step_ms {
        let to = p.raw.to_ms.unwrap_or_else(log::now_ms);
        let from = p.raw.from_ms.unwrap_or(to.saturating_sub(3_600_000));
        let steps = to.saturating_sub(from).div_ceil(step_ms);
        if steps > crate::store::query::MAX_STEPS {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "step={}s: {steps} steps from from= to to=; at most {} (give a longer step)",
                    step_ms / 1000,
                    crate::store::query::MAX_STEPS
                ),
            );
        }
        let q = StepQuery {
            agent: p.raw.agent,
            task: p.raw.task,
            from_ms: from,
            to_ms: to,
            step_ms,
            fields: p.fields,
        };
        return match smol::unblock(move || store.steps(&q)).await {
            Ok(series) => steps_reply(&series, step_ms, from, to),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
        };
    }
    let fields = p.fields;
    let q = p.raw;
    let echo = q.clone();
    match smol::unblock(move || store.metrics(&q)).await {
        Ok(page) => {
            let list: Vec<Value> = page
                .records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if !fields.is_empty() {
                        r.readings.retain(|x| fields.contains(&x.field));
                    }
                    metric_json(&r)
                })
                .collect();
            let mut reply = json_reply(StatusCode::OK, &Value::Array(list));
            if let Some(next) = page.next {
                let mut link: Vec<(String, String)> = Vec::new();
                if let Some(a) = &echo.agent {
                    link.push(("agent".into(), a.clone()));
                }
                if let Some(t) = &echo.task {
                    link.push(("task".into(), t.clone()));
                }
                if let Some(f) = echo.from_ms {
                    link.push(("from".into(), f.to_string()));
                }
                if let Some(t) = echo.to_ms {
                    link.push(("to".into(), t.to_string()));
                }
                link.push(("limit".into(), echo.limit.to_string()));
                link.push(("after".into(), next.clone()));
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(link)
                    .finish();
                let headers = reply.headers_mut();
                if let Ok(v) = hyper::header::HeaderValue::from_str(&next) {
                    headers.insert("x-next-cursor", v);
                }
                if let Ok(v) =
                    hyper::header::HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\""))
                {
                    headers.insert(hyper::header::LINK, v);
                }
            }
            reply
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
    }
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
    let (agents, up, tasks, refused_new_agents, refused_alerts) = {
        let state = shared.state();
        let up = state
            .registry
            .all()
            .iter()
            .filter(|a| a.status == super::registry::Status::Up)
            .count();
        (
            state.registry.len(),
            up,
            state.dispatch.tasks().count(),
            state.refused_new_agents,
            state.refused_alerts,
        )
    };
    let disk: serde_json::Map<String, Value> = shared
        .store
        .disk_usage()
        .into_iter()
        .map(|(tier, bytes)| (tier.to_string(), json!(bytes)))
        .collect();
    json_reply(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "agents": agents,
            "agents_up": up,
            "tasks": tasks,
            "store": shared.store.stats(),
            "store_head": shared.store.head_stats(),
            "store_bytes": disk,
            "nettask": endpoint,
            "socket_send_errors": shared.socket_stats.send_errors.load(std::sync::atomic::Ordering::Relaxed),
            "data_dir": shared.options.data_dir,
            "authenticated": shared.options.keys.is_keyed(),
            "new_agents_refused": refused_new_agents,
            "alerts_refused": refused_alerts,
            "alertmanagers": shared.alertmanagers.iter().map(|f| f.status()).collect::<Vec<_>>(),
            "remote_write": shared
                .remote_writers
                .iter()
                .map(|w| w.status(&shared.store, crate::log::now_ms()))
                .collect::<Vec<_>>(),
        }),
    )
}

async fn post_task(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let text = match body_text(req).await {
        Ok(t) => t,
        Err(reply) => return reply,
    };
    let text = text.as_str();
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
    let name = percent_decoded(encoded);
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
