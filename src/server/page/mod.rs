//! The status page at `/`: the server's summary, its agents and their state, per-agent graphs of
//! a chosen range, from the last hour to the last year (RTT as a SmokePing-style band, jitter,
//! loss, bandwidth, CPU, RAM), each drawn from the store tier that has its resolution, and the
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

use super::Shared;
use super::registry::Status;
use crate::store::{AlertQuery, AlertRecord, StepQuery};
use series::Graph;

/// Alerts listed, newest first.
pub const RECENT_ALERTS: usize = 20;
/// Seconds between the page's own reloads.
pub const REFRESH_S: u32 = 10;
/// How far ahead of the server's clock an agent's newest sample may be and still be drawn.
const CLOCK_SKEW_MS: u64 = 60_000;

/// The time ranges the page shows, picked with `?range=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    #[default]
    Hour,
    SixHours,
    Day,
    Week,
    Month,
    Year,
}

impl Range {
    pub const ALL: [Range; 6] = [
        Range::Hour,
        Range::SixHours,
        Range::Day,
        Range::Week,
        Range::Month,
        Range::Year,
    ];

    /// Its name in `?range=`.
    pub fn name(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::SixHours => "6h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
            Range::Year => "1y",
        }
    }

    /// Its words in the page.
    pub fn label(self) -> &'static str {
        match self {
            Range::Hour => "Last hour",
            Range::SixHours => "Last 6 hours",
            Range::Day => "Last 24 hours",
            Range::Week => "Last 7 days",
            Range::Month => "Last 30 days",
            Range::Year => "Last year",
        }
    }

    pub fn parse(text: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.name() == text)
    }

    pub fn names() -> Vec<&'static str> {
        Range::ALL.iter().map(|r| r.name()).collect()
    }

    pub fn span_ms(self) -> u64 {
        const HOUR: u64 = 3_600_000;
        match self {
            Range::Hour => HOUR,
            Range::SixHours => 6 * HOUR,
            Range::Day => 24 * HOUR,
            Range::Week => 7 * 24 * HOUR,
            Range::Month => 30 * 24 * HOUR,
            Range::Year => 365 * 24 * HOUR,
        }
    }

    /// The step of its graphs: the last hour shows reports about as they came, longer ranges
    /// a few hundred to 1,800 steps, read from the tier that has the resolution (raw reports
    /// up to 6 hours, minute rollups up to 7 days, hour rollups beyond).
    pub fn step_ms(self) -> u64 {
        const S: u64 = 1000;
        match self {
            Range::Hour => 2 * S,
            Range::SixHours => 15 * S,
            Range::Day => 60 * S,
            Range::Week => 300 * S,
            Range::Month => 3600 * S,
            Range::Year => 6 * 3600 * S,
        }
    }
}

/// Everything the status page shows, copied out of the server's state and store.
#[derive(Debug, Clone)]
pub struct StatusPage {
    pub now_ms: u64,
    pub range: Range,
    /// The graphs' time window.
    pub start_ms: u64,
    pub end_ms: u64,
    /// The store tier the graphs come from (`raw`, `minute`, `hour`).
    pub tier: &'static str,
    pub agents: Vec<AgentStatus>,
    pub tasks: usize,
    pub metrics_stored: u64,
    pub alerts_stored: u64,
    /// Newest first, at most [`RECENT_ALERTS`].
    pub alerts: Vec<AlertRecord>,
    /// The alerts firing now that no silence holds back, oldest first.
    pub firing: Vec<crate::server::firing::FiringAlert>,
    /// Firing alerts a silence holds back.
    pub silenced: usize,
    /// Silences in force or still to come.
    pub silences: Vec<crate::server::silence::Silence>,
    /// Acknowledgements of the alerts shown, by alert id.
    pub acks: std::collections::HashMap<u64, crate::server::ack::Acknowledgement>,
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
    /// Copies what the page shows at `now_ms` over `range` out of the server: agents under the
    /// state lock, then graphs from the store's steps (outside it).
    pub fn gather(shared: &Shared, now_ms: u64, range: Range) -> StatusPage {
        let start_ms = now_ms.saturating_sub(range.span_ms());
        let (mut agents, tasks) = agent_statuses(shared);
        agents.sort_by(|a, b| a.name.cmp(&b.name));
        let graphed = graph_agents(shared, agents, now_ms, start_ms, range.step_ms());
        let mut alerts = shared
            .store
            .alerts(&AlertQuery {
                limit: RECENT_ALERTS,
                ..AlertQuery::default()
            })
            .unwrap_or_default();
        alerts.reverse();
        let (firing, silenced) = {
            let all = shared.firing().all();
            let silences = shared.silences();
            let (held, shown): (Vec<_>, Vec<_>) = all
                .into_iter()
                .partition(|a| silences.silencing(&a.record, now_ms).is_some());
            (shown, held.len())
        };
        let silences: Vec<_> = shared
            .silences()
            .all()
            .into_iter()
            .filter(|s| s.ends_ms > now_ms)
            .collect();
        let acks = {
            let acks = shared.acks();
            alerts
                .iter()
                .chain(firing.iter().map(|a| &a.record))
                .filter_map(|r| Some((r.alert_id, acks.get(r.alert_id)?.clone())))
                .collect()
        };
        let stats = shared.store.stats();
        StatusPage {
            now_ms,
            range,
            start_ms,
            end_ms: graphed.newest_ms,
            tier: graphed.tier,
            agents: graphed.agents,
            tasks,
            metrics_stored: stats.metrics_stored,
            alerts_stored: stats.alerts_stored,
            alerts,
            firing,
            silenced,
            silences,
            acks,
        }
    }

    /// The page as an HTML document.
    pub fn render(&self) -> String {
        html::render(self)
    }
}

/// Each agent's row (without graphs), and how many tasks there are, copied under the state
/// lock.
fn agent_statuses(shared: &Shared) -> (Vec<AgentStatus>, usize) {
    let state = shared.state();
    let agents: Vec<AgentStatus> = state
        .registry
        .all()
        .into_iter()
        .map(|a| AgentStatus {
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
            graphs: Vec::new(),
        })
        .collect();
    (agents, state.dispatch.tasks().count())
}

/// The agents with their graphs, and what the graphs span.
struct Graphed {
    agents: Vec<AgentStatus>,
    /// The end of the newest step shown.
    newest_ms: u64,
    /// The store tier the steps came from.
    tier: &'static str,
}

/// Gives each agent its graphs from the store's steps (outside the state lock).
fn graph_agents(
    shared: &Shared,
    agents: Vec<AgentStatus>,
    now_ms: u64,
    start_ms: u64,
    step_ms: u64,
) -> Graphed {
    let mut newest_ms = now_ms;
    let mut tier =
        crate::store::query::tier_for(&shared.store.options().retention, now_ms, start_ms, step_ms)
            .dir_name();
    let agents = agents
        .into_iter()
        .map(|mut a| {
            let steps = shared
                .store
                .steps(&StepQuery {
                    agent: Some(a.name.clone()),
                    task: None,
                    from_ms: start_ms,
                    to_ms: now_ms + CLOCK_SKEW_MS,
                    step_ms,
                    fields: Vec::new(),
                })
                .unwrap_or_default();
            for s in &steps {
                tier = s.tier;
                if let Some(last) = s.steps.last() {
                    newest_ms =
                        newest_ms.max((last.start_ms + step_ms).min(now_ms + CLOCK_SKEW_MS));
                }
            }
            a.graphs = series::graphs(&steps);
            a
        })
        .collect();
    Graphed {
        agents,
        newest_ms,
        tier,
    }
}
