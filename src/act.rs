//! The operator's verbs on a running server, through its HTTP API: `nms agents list|forget`,
//! `nms tasks list|remove`, `nms alerts list|ack|silence|silences|expire`. Each asks the API
//! once and prints its answer as a table, or as the server's JSON with `--json`. Writes send
//! the API token; the server checks it.

use crate::client::{self, ClientError};
use crate::inspect::age;
use serde_json::{Value, json};
use std::io::Write;

/// How the answer looks (its text is not coloured).
pub use crate::output::Output;

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot write the output")]
    Write(#[source] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

/// A path segment with everything but unreserved characters percent-encoded.
fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A text cell: control characters from the network escaped, `-` for nothing.
fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => "-".to_string(),
        Value::String(s) if s.is_empty() => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    crate::log::escape_controls(&text).into_owned()
}

/// Rows as columns padded to their widest cell (the last column is not padded).
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(&c);
            } else {
                let pad = widths[i] - c.chars().count();
                out.push_str(&c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn write(out: &mut impl Write, text: &str) -> Result<(), ActError> {
    out.write_all(text.as_bytes()).map_err(ActError::Write)
}

fn json_out(out: &mut impl Write, v: &Value) -> Result<(), ActError> {
    write(out, &format!("{v:#}\n"))
}

/// How a list command shows its answer as text: a table with this header and a row per item
/// (in the answer's order, or sorted by the item's `sorted_by` field), or `empty` when there is
/// none. As JSON, the answer is printed as it came.
struct Listing<'a> {
    header: &'a [&'a str],
    empty: &'a str,
    sorted_by: Option<&'a str>,
}

impl Listing<'_> {
    fn print(
        &self,
        out: &mut impl Write,
        output: Output,
        answer: &Value,
        row: impl Fn(&Value) -> Vec<String>,
    ) -> Result<(), ActError> {
        if output == Output::Json {
            return json_out(out, answer);
        }
        let mut items = answer.as_array().cloned().unwrap_or_default();
        if let Some(key) = self.sorted_by {
            items.sort_by(|a, b| cell(&a[key]).cmp(&cell(&b[key])));
        }
        if items.is_empty() {
            return write(out, self.empty);
        }
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        write(out, &table(self.header, &rows))
    }
}

fn now_ms() -> u64 {
    crate::log::now_ms()
}

/// `nms agents list`.
pub async fn agents(
    server: &str,
    token: Option<&str>,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let v = client::get_json_as(server, token, "/api/agents").await?;
    let listing = Listing {
        header: &["NAME", "ID", "STATE", "ADDRESS", "LAST SEEN", "TASKS"],
        empty: "no agents\n",
        sorted_by: Some("name"),
    };
    listing.print(out, output, &v, |a| {
        let tasks: Vec<String> = a["tasks"]
            .as_array()
            .map(|t| t.iter().map(cell).collect())
            .unwrap_or_default();
        vec![
            cell(&a["name"]),
            cell(&a["id"]),
            cell(&a["status"]),
            cell(&a["address"]),
            age(a["last_seen_ms"].as_u64().unwrap_or(0), now_ms()),
            if tasks.is_empty() {
                "-".into()
            } else {
                tasks.join(",")
            },
        ]
    })
}

/// `nms agents forget NAME`.
pub async fn forget(
    server: &str,
    token: Option<&str>,
    name: &str,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let v = crate::inspect::forget(server, token, name).await?;
    if output == Output::Json {
        return json_out(out, &v);
    }
    let id = v["id"]
        .as_u64()
        .map(|id| format!(" (agent {id})"))
        .unwrap_or_default();
    write(
        out,
        &format!(
            "forgot {}{id}; its firing alerts are resolved\n",
            cell(&json!(name))
        ),
    )
}

/// `nms tasks list`.
pub async fn tasks(
    server: &str,
    token: Option<&str>,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let v = client::get_json_as(server, token, "/api/tasks").await?;
    let listing = Listing {
        header: &["TASK", "NUMBER", "FROM", "DEVICES"],
        empty: "no tasks\n",
        sorted_by: None,
    };
    listing.print(out, output, &v, |t| {
        let devices: Vec<String> = t["devices"]
            .as_array()
            .map(|d| d.iter().map(|d| cell(&d["device_id"])).collect())
            .unwrap_or_default();
        vec![
            cell(&t["task_id"]),
            cell(&t["number"]),
            cell(&t["origin"]),
            devices.join(","),
        ]
    })
}

/// `nms tasks remove ID`.
pub async fn remove_task(
    server: &str,
    token: Option<&str>,
    task_id: &str,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let v = client::delete_json(server, token, &format!("/api/tasks/{}", segment(task_id))).await?;
    if output == Output::Json {
        return json_out(out, &v);
    }
    let r = &v["removed"];
    let cancelled: Vec<String> = r["cancelled"]
        .as_array()
        .map(|a| a.iter().map(cell).collect())
        .unwrap_or_default();
    write(
        out,
        &format!(
            "removed task {} (#{}): cancelled on {}; {} firing alert(s) resolved\n",
            cell(&r["task_id"]),
            cell(&r["number"]),
            if cancelled.is_empty() {
                "no agent".to_string()
            } else {
                cancelled.join(", ")
            },
            cell(&r["resolved_alerts"]),
        ),
    )
}

/// `nms alerts list [--firing] [--agent NAME]`.
pub async fn alerts(
    server: &str,
    token: Option<&str>,
    firing: bool,
    agent: Option<&str>,
    limit: usize,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &limit.to_string());
    if firing {
        query.append_pair("firing", "true");
    }
    if let Some(a) = agent {
        query.append_pair("agent", a);
    }
    let v = client::get_json_as(server, token, &format!("/api/alerts?{}", query.finish())).await?;
    let listing = Listing {
        header: &[
            "ALERT", "SINCE", "AGENT", "TASK", "KIND", "SEVERITY", "STATE", "ACK", "MESSAGE",
        ],
        empty: if firing {
            "nothing is firing\n"
        } else {
            "no alerts\n"
        },
        sorted_by: None,
    };
    listing.print(out, output, &v, |a| {
        let state = if !a["silenced_by"].is_null() {
            format!("silenced ({})", cell(&a["silenced_by"]))
        } else if a["resolved"].is_null() && a["severity"] != "info" {
            "firing".into()
        } else if a["resolved"].is_null() {
            "-".into()
        } else {
            "resolved".into()
        };
        let ack = match &a["acknowledged"] {
            Value::Null => "-".to_string(),
            ack => cell(&ack["by"]),
        };
        vec![
            cell(&a["alert_id"]),
            cell(a.get("firing_since").unwrap_or(&a["time"])),
            cell(&a["agent"]),
            cell(&a["task"]),
            cell(&a["kind"]),
            cell(&a["severity"]),
            state,
            ack,
            cell(&a["message"]),
        ]
    })
}

/// `nms alerts ack ID --by NAME [--comment TEXT]`.
pub async fn acknowledge(
    server: &str,
    token: Option<&str>,
    alert_id: &str,
    by: &str,
    comment: &str,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let v = client::post_json(
        server,
        token,
        &format!("/api/alerts/{}/ack", segment(alert_id)),
        &json!({"by": by, "comment": comment}),
    )
    .await?;
    if output == Output::Json {
        return json_out(out, &v);
    }
    write(
        out,
        &format!(
            "acknowledged alert {} ({} {} on {}) as {}\n",
            cell(&v["alert_id"]),
            cell(&v["kind"]),
            cell(&v["task"]),
            cell(&v["agent"]),
            cell(&v["acknowledged"]["by"]),
        ),
    )
}

/// `nms alerts silence ...`: `request` is the body of `POST /api/silences`.
pub async fn silence(
    server: &str,
    token: Option<&str>,
    request: &Value,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let v = client::post_json(server, token, "/api/silences", request).await?;
    if output == Output::Json {
        return json_out(out, &v);
    }
    write(
        out,
        &format!(
            "silence {} set: {} from {} until {}\n",
            cell(&v["id"]),
            matchers(&v["matchers"]),
            cell(&v["starts"]),
            cell(&v["ends"]),
        ),
    )
}

fn matchers(m: &Value) -> String {
    let parts: Vec<String> = ["agent", "task", "kind"]
        .iter()
        .filter(|k| !m[**k].is_null())
        .map(|k| format!("{k}={}", cell(&m[*k])))
        .collect();
    parts.join(" ")
}

/// `nms alerts silences`.
pub async fn silences(
    server: &str,
    token: Option<&str>,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let v = client::get_json_as(server, token, "/api/silences").await?;
    let listing = Listing {
        header: &[
            "SILENCE", "STATE", "MATCHES", "FROM", "UNTIL", "BY", "COMMENT",
        ],
        empty: "no silences\n",
        sorted_by: None,
    };
    listing.print(out, output, &v, |s| {
        vec![
            cell(&s["id"]),
            cell(&s["state"]),
            matchers(&s["matchers"]),
            cell(&s["starts"]),
            cell(&s["ends"]),
            cell(&s["created_by"]),
            cell(&s["comment"]),
        ]
    })
}

/// `nms alerts expire ID`.
pub async fn expire(
    server: &str,
    token: Option<&str>,
    id: &str,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ActError> {
    let v = client::delete_json(server, token, &format!("/api/silences/{}", segment(id))).await?;
    if output == Output::Json {
        return json_out(out, &v);
    }
    write(
        out,
        &format!(
            "silence {} ({}) ended at {}\n",
            cell(&v["id"]),
            matchers(&v["matchers"]),
            cell(&v["ends"])
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let t = table(
            &["A", "LONGER"],
            &[
                vec!["abc".into(), "x".into()],
                vec!["d".into(), "yy".into()],
            ],
        );
        assert_eq!(t, "A    LONGER\nabc  x\nd    yy\n");
    }

    #[test]
    fn cells_escape_what_came_from_the_network() {
        assert_eq!(cell(&json!("a\u{1b}[31m")), "a\\u{1b}[31m");
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(segment("site/a b"), "site%2Fa%20b");
    }
}
