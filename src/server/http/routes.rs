//! The paths the HTTP API answers, in one table ([`ENDPOINTS`]) that routing, the index at
//! `/api` and the 405 answers read; and the answers that need nothing but that table.

use super::{Reply, error, json_reply};
use crate::server::{Shared, prometheus};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// What an endpoint of [`ENDPOINTS`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
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
pub(super) struct Endpoint {
    pub(super) path: &'static str,
    pub(super) route: Route,
    /// Its line in the index at `/api` (`None`: not listed).
    pub(super) listed: Option<&'static str>,
    /// Said after the path when a method is not allowed on it.
    pub(super) allowed: &'static str,
}

/// Every path the HTTP API answers, in the order the index lists them.
pub(super) const ENDPOINTS: &[Endpoint] = &[
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
pub(super) fn find_endpoint(path: &str) -> Option<(&'static Endpoint, &str)> {
    ENDPOINTS.iter().find_map(|e| {
        if e.path.len() > 1 && e.path.ends_with('/') {
            path.strip_prefix(e.path).map(|rest| (e, rest))
        } else {
            (path == e.path).then_some((e, ""))
        }
    })
}

/// 401 with the header that says which scheme the token goes in.
pub(super) fn unauthorized(method: &Method, path: &str) -> Reply {
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
pub(super) fn index() -> Reply {
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
pub(super) fn exposition(shared: &Arc<Shared>) -> Reply {
    let endpoint = shared.endpoint_counters();
    let text = prometheus::render(shared, &endpoint);
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
