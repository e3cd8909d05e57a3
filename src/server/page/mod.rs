//! The status page at `/`: the server's summary, its agents and their state, per-agent graphs of
//! the last hour (RTT as a SmokePing-style band, jitter, loss, bandwidth, CPU, RAM) and the
//! recent alerts, as one server-rendered HTML document with inline SVG. No scripts and no
//! external assets; it refreshes itself every [`REFRESH_S`] seconds.
//!
//! [`StatusPage::gather`] copies what the page shows out of the server's state (briefly, under
//! its lock); [`StatusPage::render`] turns that into HTML without touching the state.

pub mod chart;
pub mod escape;
pub mod format;
mod html;
pub mod scale;
pub mod series;

use super::State;
use super::registry::Status;
use crate::store::{AlertRecord, Query};
use series::Graph;

/// The time the graphs cover.
pub const WINDOW_MS: u64 = 3_600_000;
/// Alerts listed, newest first.
pub const RECENT_ALERTS: usize = 20;
/// Seconds between the page's own reloads.
pub const REFRESH_S: u32 = 10;
/// How far ahead of the server's clock an agent's newest sample may be and still be drawn.
const CLOCK_SKEW_MS: u64 = 60_000;

/// Everything the status page shows, copied out of the server's state.
#[derive(Debug, Clone)]
pub struct StatusPage {
    pub now_ms: u64,
    /// The graphs' time window.
    pub start_ms: u64,
    pub end_ms: u64,
    pub agents: Vec<AgentStatus>,
    pub tasks: usize,
    pub metrics_stored: u64,
    pub alerts_stored: u64,
    /// Newest first, at most [`RECENT_ALERTS`].
    pub alerts: Vec<AlertRecord>,
}

/// One agent's row and graphs.
#[derive(Debug, Clone)]
pub struct AgentStatus {
    /// The id the server assigned (names the agent's section in the page).
    pub id: u32,
    pub name: String,
    pub up: bool,
    pub address: Option<String>,
    pub last_seen_ms: u64,
    pub tasks: Vec<String>,
    pub graphs: Vec<Graph>,
}

impl StatusPage {
    /// Copies what the page shows at `now_ms` out of `state`.
    pub fn gather(state: &State, now_ms: u64) -> StatusPage {
        let start_ms = now_ms.saturating_sub(WINDOW_MS);
        let mut newest_ms = now_ms;
        let agents = state
            .registry
            .all()
            .into_iter()
            .map(|a| {
                let records = state.store.metrics(&Query {
                    agent: Some(a.name.clone()),
                    since_ms: Some(start_ms),
                    limit: None,
                });
                if let Some(last) = records.last() {
                    newest_ms = newest_ms.max(last.time_ms.min(now_ms + CLOCK_SKEW_MS));
                }
                AgentStatus {
                    id: a.id,
                    name: a.name.clone(),
                    up: a.status == Status::Up,
                    address: a.address.map(|x| x.to_string()),
                    last_seen_ms: a.last_seen_ms,
                    tasks: state
                        .dispatch
                        .tasks()
                        .filter(|t| t.task.device(&a.name).is_some())
                        .map(|t| t.task.task_id.clone())
                        .collect(),
                    graphs: series::graphs(&records),
                }
            })
            .collect();
        let mut alerts = state.store.alerts(&Query {
            limit: Some(RECENT_ALERTS),
            ..Query::default()
        });
        alerts.reverse();
        StatusPage {
            now_ms,
            start_ms,
            end_ms: newest_ms,
            agents,
            tasks: state.dispatch.tasks().count(),
            metrics_stored: state.store.stats.metrics_stored,
            alerts_stored: state.store.stats.alerts_stored,
            alerts,
        }
    }

    /// The page as an HTML document.
    pub fn render(&self) -> String {
        html::render(self)
    }
}
