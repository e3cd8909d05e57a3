//! The status page's HTML: the document, its style sheet (light and dark), the summary, the agent
//! table, each agent's graphs and the recent alerts. Every text that came from the network is
//! written through [`Escaped`].

use super::chart::{self, Frame};
use super::escape::Escaped;
use super::format;
use super::series::{Graph, Samples};
use super::{AgentStatus, REFRESH_S, StatusPage};
use crate::wire::Severity;
use std::fmt::Write;

const STYLE: &str = r#"
:root{--bg:#fff;--fg:#1d2228;--muted:#59636e;--border:#d0d7de;--grid:#e8ebef;--row:#f6f8fa;
--line:#1f5fbf;--band:rgba(31,95,191,.2);--up:#1a7f37;--down:#cf222e;--info:#0969da;
--warning:#9a6700;--critical:#cf222e}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--border:#3d444d;--grid:#21262d;--row:#151b23;--line:#58a6ff;--band:rgba(88,166,255,.25);
--up:#3fb950;--down:#f85149;--info:#58a6ff;--warning:#d29922;--critical:#f85149}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1280px;padding:1rem 1.5rem 2rem;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem}
a{color:var(--line)}
.summary{font-size:1rem;margin:.2rem 0}.muted,.generated{color:var(--muted)}
.generated{margin:.2rem 0 0;font-size:.85rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid var(--border);vertical-align:top}
th{font-weight:600;color:var(--muted)}tbody tr:nth-child(even){background:var(--row)}
td.number{font-variant-numeric:tabular-nums;white-space:nowrap}.nowrap{white-space:nowrap}
.state{font-weight:600;white-space:nowrap}.state.up{color:var(--up)}.state.down{color:var(--down)}
.severity{font-weight:600}.severity.info{color:var(--info)}.severity.warning{color:var(--warning)}
.severity.critical{color:var(--critical)}.firing{color:var(--down)}
.agent h2 .state{font-size:.9rem;margin-left:.4rem}
.ranges{margin:.4rem 0 0}
.graphs{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:.75rem}
figure{margin:0;border:1px solid var(--border);border-radius:6px;padding:.3rem}
.chart{display:block;width:100%;height:auto}
.chart text{font:10px system-ui,"DejaVu Sans",sans-serif;fill:var(--muted)}
.chart .chart-title{font-size:11px;font-weight:600;fill:var(--fg)}
.chart .grid{stroke:var(--grid);stroke-width:1}.chart .plot{fill:none;stroke:var(--border)}
.chart .line{fill:none;stroke:var(--line);stroke-width:1.5;stroke-linejoin:round}
.chart .band{fill:var(--band);stroke:none}.chart .band-bar{stroke:var(--band);stroke-width:3}
.chart .dot{fill:var(--line)}.chart .no-data{font-size:12px}
"#;

/// The whole document.
pub fn render(page: &StatusPage) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta http-equiv="refresh" content="{REFRESH_S}">
<title>nms status</title>
<style>{STYLE}</style>
</head>
<body>
"#
    );
    header(&mut out, page);
    out.push_str("<main>\n");
    agent_table(&mut out, page);
    firing(&mut out, page);
    silences(&mut out, page);
    alerts(&mut out, page);
    for agent in &page.agents {
        agent_graphs(&mut out, page, agent);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn header(out: &mut String, page: &StatusPage) {
    let up = page.agents.iter().filter(|a| a.up).count();
    let _ = write!(
        out,
        r#"<header>
<h1>nms status</h1>
<p class="summary"><strong>{up}/{}</strong> agents up · {} · {} and {} stored since the server started</p>
<p class="generated">{} UTC · nms {} · refreshes every {REFRESH_S} s · <a href="/api">JSON API</a> · <a href="/metrics">Prometheus metrics</a></p>
<nav class="ranges">{}</nav>
</header>
"#,
        page.agents.len(),
        plural(page.tasks, "task", "tasks"),
        plural(
            page.metrics_stored as usize,
            "metrics report",
            "metrics reports"
        ),
        plural(page.alerts_stored as usize, "alert", "alerts"),
        format::date_time(page.now_ms),
        env!("CARGO_PKG_VERSION"),
        ranges(page.range),
    );
}

/// The range selector: the range shown, then a link per range, the shown one marked.
fn ranges(shown: super::Range) -> String {
    let links: Vec<String> = super::Range::ALL
        .iter()
        .map(|r| {
            if *r == shown {
                format!(r#"<strong aria-current="page">{}</strong>"#, r.name())
            } else {
                format!(r#"<a href="/?range={0}">{0}</a>"#, r.name())
            }
        })
        .collect();
    format!("Graphs: {} · {}", shown.label(), links.join(" · "))
}

fn state(up: bool) -> &'static str {
    if up {
        r#"<span class="state up">● up</span>"#
    } else {
        r#"<span class="state down">○ down</span>"#
    }
}

fn agent_table(out: &mut String, page: &StatusPage) {
    out.push_str("<section id=\"agents\">\n<h2>Agents</h2>\n");
    if page.agents.is_empty() {
        out.push_str("<p class=\"muted\">No agent has registered yet.</p>\n</section>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th>Agent</th><th>State</th><th>Address</th><th>Last seen</th><th>Tasks</th></tr></thead>\n<tbody>\n");
    for a in &page.agents {
        let tasks: Vec<String> = a.tasks.iter().map(|t| Escaped(t).to_string()).collect();
        let _ = writeln!(
            out,
            r##"<tr><td><a href="#agent-{}">{}</a></td><td>{}</td><td>{}</td><td class="nowrap" title="{}">{}</td><td>{}</td></tr>"##,
            a.id,
            Escaped(&a.name),
            state(a.up),
            Escaped(a.address.as_deref().unwrap_or("–")),
            if a.last_seen_ms == 0 {
                String::new()
            } else {
                format!("{} UTC", format::date_time(a.last_seen_ms))
            },
            format::ago(page.now_ms, a.last_seen_ms),
            if tasks.is_empty() {
                "–".to_string()
            } else {
                tasks.join(", ")
            },
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn agent_graphs(out: &mut String, page: &StatusPage, agent: &AgentStatus) {
    let _ = writeln!(
        out,
        r#"<section class="agent" id="agent-{}">
<h2>{}{}</h2>"#,
        agent.id,
        Escaped(&agent.name),
        state(agent.up)
    );
    if agent.graphs.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">No metrics in the {}.</p>\n</section>",
            page.range.label().to_lowercase()
        );
        return;
    }
    let over_days = page.range.span_ms() > 86_400_000;
    let time = |ms: u64| {
        if over_days {
            format::date_time(ms)
        } else {
            format::clock(ms)
        }
    };
    let _ = writeln!(
        out,
        r#"<p class="muted">{}, {}–{} UTC, from the {} tier.</p>
<div class="graphs">"#,
        page.range.label(),
        time(page.start_ms),
        time(page.end_ms),
        page.tier
    );
    for graph in &agent.graphs {
        out.push_str("<figure>");
        out.push_str(&graph_svg(page, graph));
        out.push_str("</figure>\n");
    }
    out.push_str("</div>\n</section>\n");
}

fn graph_svg(page: &StatusPage, graph: &Graph) -> String {
    let title = match &graph.target {
        Some(target) => format!("{} to {target}", graph.metric.title()),
        None => graph.metric.title().to_string(),
    };
    let frame = Frame {
        title: &title,
        unit: graph.metric.unit(),
        start_ms: page.start_ms,
        end_ms: page.end_ms,
    };
    match &graph.samples {
        Samples::Band(bands) => chart::band(&frame, bands),
        Samples::Line(points) => chart::line(&frame, points),
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// Who acknowledged an alert, for a table cell.
fn acknowledged(page: &StatusPage, alert_id: u64) -> String {
    match page.acks.get(&alert_id) {
        Some(ack) => format!(
            r#"<span title="{} UTC">{}</span>{}"#,
            format::date_time(ack.at_ms),
            Escaped(&ack.by),
            if ack.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", Escaped(&ack.comment))
            }
        ),
        None => "–".to_string(),
    }
}

/// The alerts firing now (those no silence holds back).
fn firing(out: &mut String, page: &StatusPage) {
    out.push_str("<section id=\"firing\">\n<h2>Firing</h2>\n");
    let held = if page.silenced > 0 {
        format!(
            " {} silenced (see Silences).",
            plural(page.silenced, "alert is", "alerts are")
        )
    } else {
        String::new()
    };
    if page.firing.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">Nothing is firing.{held}</p>\n</section>"
        );
        return;
    }
    if !held.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">{}</p>", held.trim());
    }
    out.push_str("<table>\n<thead><tr><th>Since (UTC)</th><th>Agent</th><th>Task</th><th>Kind</th><th>Severity</th><th>Message</th><th>Acknowledged</th><th>Alert</th></tr></thead>\n<tbody>\n");
    for a in &page.firing {
        let r = &a.record;
        let _ = writeln!(
            out,
            r#"<tr><td class="nowrap">{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class="severity {sev}">{sev}</span></td><td>{}</td><td>{}</td><td class="nowrap"><code>{:016x}</code></td></tr>"#,
            format::date_time(a.since_ms),
            Escaped(&r.agent),
            Escaped(&r.task),
            r.kind.kind(),
            Escaped(&r.message),
            acknowledged(page, r.alert_id),
            r.alert_id,
            sev = severity(r.severity),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// Silences in force and to come.
fn silences(out: &mut String, page: &StatusPage) {
    if page.silences.is_empty() {
        return;
    }
    out.push_str("<section id=\"silences\">\n<h2>Silences</h2>\n<table>\n<thead><tr><th>Matches</th><th>State</th><th>From (UTC)</th><th>Until (UTC)</th><th>By</th><th>Comment</th><th>Silence</th></tr></thead>\n<tbody>\n");
    for s in &page.silences {
        let _ = writeln!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td class="nowrap">{}</td><td class="nowrap">{}</td><td>{}</td><td>{}</td><td class="nowrap"><code>{}</code></td></tr>"#,
            Escaped(&s.matchers.describe()),
            s.state(page.now_ms),
            format::date_time(s.starts_ms),
            format::date_time(s.ends_ms),
            Escaped(&s.created_by),
            Escaped(&s.comment),
            Escaped(&s.id),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn alerts(out: &mut String, page: &StatusPage) {
    let alerts = &page.alerts;
    out.push_str("<section id=\"alerts\">\n<h2>Recent alerts</h2>\n");
    if alerts.is_empty() {
        out.push_str("<p class=\"muted\">No alerts.</p>\n</section>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th>Time (UTC)</th><th>Agent</th><th>Kind</th><th>Severity</th><th>Value / threshold</th><th>Rule</th><th>Message</th><th>Resolved (UTC)</th><th>Acknowledged</th></tr></thead>\n<tbody>\n");
    for a in alerts {
        // Info alerts (an agent reporting again) are notices: they do not fire, so never resolve.
        let resolved = match a.resolved_ms {
            Some(ms) => format::date_time(ms),
            None if a.severity == Severity::Info => "–".to_string(),
            None => r#"<span class="firing">firing</span>"#.to_string(),
        };
        let _ = writeln!(
            out,
            r#"<tr><td class="nowrap">{}</td><td>{}</td><td>{}</td><td><span class="severity {sev}">{sev}</span></td><td class="number">{} / {}</td><td>{}</td><td>{}</td><td class="nowrap">{resolved}</td><td>{}</td></tr>"#,
            format::date_time(a.time_ms),
            Escaped(&a.agent),
            a.kind.kind(),
            format::measured(a.value),
            format::measured(a.threshold),
            Escaped(&a.rule),
            Escaped(&a.message),
            acknowledged(page, a.alert_id),
            sev = severity(a.severity),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

#[cfg(test)]
mod tests;
