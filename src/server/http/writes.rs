//! The API's write answers: request bodies read within bounds, tasks posted and removed,
//! alerts acknowledged, silences set and ended, agents forgotten.

use super::{MAX_BODY, Reply, alert_json, error, json_reply, percent_decoded};
use crate::log::{self, Level};
use crate::server::dispatch::TaskUpload;
use crate::server::{Shared, install_upload};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// The request body as UTF-8 text, at most [`MAX_BODY`] bytes; an error answer otherwise.
pub(super) async fn body_text(req: Request<Incoming>) -> Result<String, Reply> {
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
pub(super) async fn body_json<T: serde::de::DeserializeOwned>(
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
pub(super) fn remove_task(shared: &Arc<Shared>, task_id: &str) -> Reply {
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
pub(super) struct AckRequest {
    by: String,
    #[serde(default)]
    comment: String,
}

/// `POST /api/alerts/ID/ack`: acknowledges alert ID (16 hex digits).
pub(super) async fn acknowledge(shared: &Arc<Shared>, id: &str, req: Request<Incoming>) -> Reply {
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
pub(super) fn silences(shared: &Arc<Shared>) -> Reply {
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
pub(super) async fn add_silence(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
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
pub(super) fn expire_silence(shared: &Arc<Shared>, id: &str) -> Reply {
    match crate::server::operate::expire_silence(shared, id) {
        Ok(Some(s)) => json_reply(StatusCode::OK, &s.to_json(log::now_ms())),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no silence has the id {id:?}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

pub(super) async fn post_task(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
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
pub(super) fn forget_agent(shared: &Arc<Shared>, encoded: &str) -> Reply {
    // Percent-decoding only: a `+` in a name is a `+`.
    let name = percent_decoded(encoded);
    match crate::server::forget_agent(shared, &name) {
        Ok(Some(id)) => json_reply(StatusCode::OK, &json!({ "forgotten": name, "id": id })),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no agent is named {name:?}")),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{name:?} was not forgotten: {e}"),
        ),
    }
}

/// For a bare task file: the rule files it names, read relative to the server's folder.
pub(super) fn read_local_rules(text: &str) -> std::collections::BTreeMap<String, String> {
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
