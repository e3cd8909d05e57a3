//! Tests for `server/page/html.rs`, kept apart so the module itself stays short.

use super::*;
use crate::server::page::series::{Metric, Point};
use crate::store::AlertRecord;
use crate::wire::AlertType;

/// 2025-11-27 09:40:00 UTC.
const T0: u64 = 1_764_236_400_000;

fn agent(id: u32, name: &str, up: bool, graphs: Vec<Graph>) -> AgentStatus {
    AgentStatus {
        id,
        name: name.into(),
        up,
        address: Some("127.0.0.1:40000".into()),
        last_seen_ms: T0 - 3000,
        tasks: vec!["default".into()],
        graphs,
    }
}

fn alert(id: u64, time_ms: u64, message: &str, resolved_ms: Option<u64>) -> AlertRecord {
    AlertRecord {
        alert_id: id,
        agent: "r1".into(),
        task: "default".into(),
        kind: AlertType::Ram,
        severity: Severity::Critical,
        value: 42.5,
        threshold: 1.0,
        time_ms,
        rule: "condition:ram_usage".into(),
        message: message.into(),
        received_ms: time_ms,
        resolves: 0,
        resolved_ms,
        subject: String::new(),
        target: None,
    }
}

fn page(agents: Vec<AgentStatus>, alerts: Vec<AlertRecord>) -> StatusPage {
    StatusPage {
        now_ms: T0,
        start_ms: T0 - super::super::Range::Hour.span_ms(),
        range: super::super::Range::Hour,
        tier: "raw",
        end_ms: T0,
        agents,
        tasks: 1,
        metrics_stored: 12,
        alerts_stored: alerts.len() as u64,
        alerts,
        firing: Vec::new(),
        silenced: 0,
        silences: Vec::new(),
        acks: Default::default(),
    }
}

fn cpu() -> Graph {
    Graph {
        metric: Metric::Cpu,
        target: None,
        samples: Samples::Line(vec![Point {
            time_ms: T0 - 5000,
            value: 3.0,
        }]),
    }
}

#[test]
fn the_page_is_a_refreshing_document_without_external_assets() {
    let html = render(&page(vec![agent(1, "local", true, vec![cpu()])], vec![]));
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.contains(r#"<meta http-equiv="refresh" content="10">"#));
    assert!(html.contains("prefers-color-scheme:dark"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("src="), "no external assets");
    let links = html.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !links.contains("://"),
        "no absolute addresses but the SVG namespace"
    );
}

#[test]
fn agents_are_listed_with_state_and_graphs_only_where_data_exists() {
    let html = render(&page(
        vec![
            agent(1, "local", true, vec![cpu()]),
            agent(2, "quiet", false, vec![]),
        ],
        vec![],
    ));
    assert!(html.contains("<strong>1/2</strong> agents up"));
    assert!(html.contains(r##"<a href="#agent-1">local</a>"##));
    assert!(html.contains(r#"<span class="state up">● up</span>"#));
    assert!(html.contains(r#"<span class="state down">○ down</span>"#));
    assert!(html.contains("3 s ago"));
    assert!(html.contains("127.0.0.1:40000"));
    assert_eq!(html.matches("<svg").count(), 1, "one graph, for local");
    assert!(html.contains("CPU (%)"));
    assert!(html.contains("No metrics in the last hour."));
    assert!(html.contains("No alerts."));
}

#[test]
fn alerts_are_shown_with_severity_and_resolution() {
    let mut notice = alert(3, T0 - 90_000, "agent r1 is reporting again", None);
    notice.kind = AlertType::AgentUp;
    notice.severity = Severity::Info;
    let html = render(&page(
        vec![],
        vec![
            alert(2, T0 - 1000, "newer", None),
            alert(1, T0 - 60_000, "older", Some(T0 - 30_000)),
            notice,
        ],
    ));
    assert!(html.contains("No agent has registered yet."));
    let newer = html.find("newer").unwrap();
    let older = html.find("older").unwrap();
    assert!(newer < older, "kept in the order given (newest first)");
    assert!(html.contains(r#"<span class="severity critical">critical</span>"#));
    assert!(html.contains("42.5 / 1"));
    assert_eq!(
        html.matches(r#"<span class="firing">firing</span>"#)
            .count(),
        1,
        "only the unresolved warning fires; the info notice does not"
    );
    assert!(html.contains(r#"<span class="severity info">info</span>"#));
    assert!(html.contains("2025-11-27 09:39:30"), "resolved time");
    assert!(html.contains("condition:ram_usage"));
}

#[test]
fn text_from_the_network_is_escaped_everywhere() {
    let evil = "<img src=x onerror=alert(1)>\"'&";
    let mut a = agent(1, evil, true, vec![cpu()]);
    a.tasks = vec![evil.into()];
    a.address = Some(evil.into());
    a.graphs.push(Graph {
        metric: Metric::Rtt,
        target: Some(evil.into()),
        samples: Samples::Band(vec![]),
    });
    let mut bad = alert(1, T0, evil, None);
    bad.agent = evil.into();
    bad.rule = evil.into();
    let html = render(&page(vec![a], vec![bad]));
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("\"'&"));
    assert!(
        html.matches("&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;")
            .count()
            >= 8
    );
}

#[test]
fn firing_alerts_silences_and_acknowledgements_come_before_the_graphs() {
    let firing = alert(5, T0 - 5000, "RAM usage 42.5% is above 1%", None);
    let mut p = page(
        vec![agent(1, "local", true, vec![cpu()])],
        vec![firing.clone()],
    );
    p.firing = vec![crate::server::firing::FiringAlert {
        record: firing,
        since_ms: T0 - 5000,
    }];
    p.silenced = 2;
    p.silences = vec![crate::server::silence::Silence {
        id: "00000000000000aa".into(),
        matchers: crate::server::silence::Matchers {
            agent: Some("edge-*".into()),
            ..Default::default()
        },
        starts_ms: T0 - 1000,
        ends_ms: T0 + 3_600_000,
        comment: "router swap".into(),
        created_by: "ops".into(),
        created_ms: T0 - 1000,
    }];
    p.acks.insert(
        5,
        crate::server::ack::Acknowledgement {
            by: "alice".into(),
            at_ms: T0 - 100,
            comment: "looking".into(),
            alert_time_ms: T0 - 5000,
        },
    );
    let html = render(&p);
    let firing_at = html.find("<h2>Firing</h2>").unwrap();
    let silences_at = html.find("<h2>Silences</h2>").unwrap();
    let recent_at = html.find("<h2>Recent alerts</h2>").unwrap();
    let graphs_at = html.find("<svg").unwrap();
    assert!(firing_at < silences_at && silences_at < recent_at && recent_at < graphs_at);
    assert!(html.contains("2 alerts are silenced"));
    assert!(html.contains("agent=edge-*"));
    assert!(html.contains("router swap"));
    assert_eq!(html.matches("alice</span>: looking").count(), 2, "{html}");
    assert!(html.contains("<code>0000000000000005</code>"));
}
