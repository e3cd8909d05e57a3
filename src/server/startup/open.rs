//! What a starting server opens in its data directory ([`Opened`]): the store, registry,
//! tasks (those of the task files, and those posted over the API before the restart),
//! silences, acknowledgements and firing alerts; and the [`Shared`] parts built around them,
//! with the Alertmanager forwarders and remote writers started.

use super::{Bound, http_base};
use crate::log::{self, Level};
use crate::nettask::driver::SocketStats;
use crate::nettask::{ServerEndpoint, Stats};
use crate::server::dispatch::Dispatch;
use crate::server::registry::Registry;
use crate::server::{
    HTTP_ORIGIN, NewAgentBucket, ServerError, ServerOptions, Shared, SharedNames, State, Throttles,
    ack, alertmanager, chain, firing, remote_write, report_unscheduled, silence,
};
use crate::store::Store;
use crate::wire::AlertType;
use smol::channel::Sender;
use std::sync::{Arc, Mutex};

/// What [`run`] opens in the data directory before anything is started.
pub(super) struct Opened {
    pub(super) store: Arc<Store>,
    pub(super) registry: Registry,
    pub(super) dispatch: Dispatch,
    pub(super) silences: silence::Silences,
    pub(super) acks: ack::Acknowledgements,
    pub(super) firing: firing::Firing,
    pub(super) down_alerted: std::collections::HashMap<u32, u64>,
}

impl Opened {
    /// Creates the data directory and opens the store, registry, tasks, silences,
    /// acknowledgements and firing alerts kept in it.
    pub(super) fn open(options: &ServerOptions) -> Result<Opened, ServerError> {
        std::fs::create_dir_all(&options.data_dir).map_err(|source| {
            ServerError::DataDirectory {
                path: options.data_dir.clone(),
                source,
            }
        })?;
        let store = Arc::new(Store::open(&options.data_dir, options.store.clone())?);
        let registry = Registry::open(&options.data_dir)?;
        let dispatch = Dispatch::open(&options.data_dir)?;
        let silences = silence::Silences::open(&options.data_dir)?;
        let acks = ack::Acknowledgements::open(&options.data_dir)?;
        let firing = firing::Firing::load(&store).map_err(ServerError::FiringAlerts)?;
        // An agent already down when the server stopped is still down: its AGENT_DOWN fires
        // on, and no second one is raised.
        let down_alerted: std::collections::HashMap<u32, u64> = firing
            .matching(|r| r.kind == AlertType::AgentDown)
            .into_iter()
            .filter_map(|a| Some((registry.by_name(&a.record.agent)?.id, a.record.alert_id)))
            .collect();
        if !firing.is_empty() {
            log::event(
                Level::Info,
                "ALERTS",
                format_args!(
                    "{} alert(s) firing, {} of them AGENT_DOWN",
                    firing.len(),
                    down_alerted.len()
                ),
            );
        }
        Ok(Opened {
            store,
            registry,
            dispatch,
            silences,
            acks,
            firing,
            down_alerted,
        })
    }

    /// The shared parts built around what was opened: the Alertmanager forwarders and
    /// remote writers are started here.
    pub(super) fn into_shared(
        self,
        options: &ServerOptions,
        bound: Bound,
        commands: Sender<crate::nettask::driver::Command<ServerEndpoint>>,
    ) -> Result<Arc<Shared>, ServerError> {
        let external = options
            .external_url
            .clone()
            .unwrap_or_else(|| http_base(bound.http));
        let forwarders = start_forwarders(options, &external, &self.silences, &self.firing)?;
        let mut remote_writers = Vec::new();
        for destination in &options.remote_writes {
            remote_writers.push(remote_write::Writer::start(
                destination.clone(),
                self.store.clone(),
            )?);
        }
        Ok(Arc::new(Shared {
            state: Mutex::new(State {
                registry: self.registry,
                dispatch: self.dispatch,
                down_alerted: self.down_alerted,
                served_elsewhere: std::collections::HashMap::new(),
                started_ms: log::now_ms(),
                new_agents: NewAgentBucket::default(),
                refused_new_agents: 0,
                refused_alerts: 0,
                throttles: Throttles::default(),
                shared_names: SharedNames::default(),
            }),
            commands,
            store: self.store,
            alertmanagers: forwarders,
            remote_writers,
            api: Mutex::new(options.api.clone()),
            firing: Mutex::new(self.firing),
            silences: Mutex::new(self.silences),
            acks: Mutex::new(self.acks),
            external_url: external,
            options: options.clone(),
            endpoint_stats: Mutex::new(Stats::default()),
            socket_stats: Arc::new(SocketStats::default()),
            alertflow_port: options
                .advertise_alertflow_port
                .unwrap_or(bound.alertflow.port()),
        }))
    }
}

/// Installs the tasks of the task files, then restores the tasks posted over the HTTP API
/// before the restart.
pub(super) fn load_tasks(
    options: &ServerOptions,
    dispatch: &mut Dispatch,
) -> Result<(), ServerError> {
    for path in &options.task_files {
        let tasks = Dispatch::read_file(path)?;
        for (task, rules) in tasks {
            let id = task.task_id.clone();
            let number = dispatch.install(task, rules, &path.display().to_string())?;
            log::event(
                Level::Info,
                "TASK",
                format_args!("loaded {id} (#{number}) from {}", path.display()),
            );
        }
    }
    report_unscheduled(&dispatch.take_plan_changes().unplaced);
    for (path, upload) in dispatch.persisted_uploads() {
        match upload.and_then(|u| Dispatch::read_upload(&u).map_err(|e| chain(&e))) {
            Ok(tasks) => {
                for (task, rules) in tasks {
                    let id = task.task_id.clone();
                    let number = dispatch.install(task, rules, HTTP_ORIGIN)?;
                    log::event(
                        Level::Info,
                        "TASK",
                        format_args!("restored {id} (#{number}) posted earlier"),
                    );
                }
            }
            Err(e) => log::event(
                Level::Warn,
                "TASK",
                format_args!("{}: not restored: {e:#}", path.display()),
            ),
        }
    }
    report_unscheduled(&dispatch.take_plan_changes().unplaced);
    Ok(())
}

/// One forwarder per `--alertmanager`, each told the silences and the alerts firing now.
fn start_forwarders(
    options: &ServerOptions,
    external: &str,
    silences: &silence::Silences,
    firing: &firing::Firing,
) -> Result<Vec<alertmanager::Forwarder>, ServerError> {
    let mut forwarders = Vec::new();
    for target in &options.alertmanagers {
        let forwarder = alertmanager::Forwarder::start(target, Some(external.to_string()))?;
        log::event(
            Level::Info,
            "ALERTMGR",
            format_args!("forwarding alerts to {}", forwarder.url()),
        );
        forwarder.send(alertmanager::Event::Silences(silences.all()));
        for alert in firing.all() {
            forwarder.send(alertmanager::Event::Fired(alert));
        }
        forwarders.push(forwarder);
    }
    Ok(forwarders)
}
