//! `nms server`: registers agents, dispatches tasks, ingests metrics and alerts, stores them,
//! watches liveness and serves the HTTP API.
//!
//! Data flows one way: the NetTask driver owns the socket and the endpoint and hands events to
//! the event loop ([`run`]), which updates the [`State`] (registry, tasks, store) and sends
//! commands back to the driver. AlertFlow connections and HTTP requests use the same state.

pub mod ack;
pub mod alertmanager;
pub mod dispatch;
pub mod firing;
pub mod http;
mod http_head;
pub mod operate;
pub mod page;
pub mod prometheus;
pub mod registry;
pub mod remote_write;
pub mod silence;

pub use operate::reload;

mod admission;
mod alert_ingest;
mod endpoint;
mod error;
mod event_loop;
mod ingest;
mod liveness;
mod options;
mod startup;
mod state;
mod task_delivery;

pub use admission::{NEW_AGENTS_BURST, NewAgentBucket};
pub use error::ServerError;
pub use ingest::summarize;
pub use liveness::forget_agent;
pub(crate) use liveness::server_alert;
pub use options::{
    DEFAULT_MAX_AGENTS, DEFAULT_NEW_AGENTS_PER_SECOND, HTTP_ORIGIN, ServerOptions,
    check_external_url,
};
pub use startup::{Bound, Listeners, RunningServer, run};
pub use state::{Shared, State, Throttles};
pub use task_delivery::{DeviceOutcome, TaskOutcome, install_upload};

use admission::{SharedNames, admit_registration};
use alert_ingest::AlertIngest;
use error::chain;
use event_loop::{serve, stats_refresh};
use ingest::{handle_events, store_batch};
use liveness::{liveness, mark_heard};
use startup::Started;
use task_delivery::{dispatch_agent, dispatch_device, dispatch_installed, report_unscheduled};
