//! Sending tasks to agents: each device its assignment of a task when its agent is up,
//! CANCEL to those no longer named, and installing tasks posted over the HTTP API.

use super::dispatch::{Dispatch, LoadedTask, TaskUpload};
use super::registry::Status;
use super::{HTTP_ORIGIN, Shared, State, dispatch, operate};
use crate::log::{self, Level};
use crate::wire::Message;
use serde::Serialize;
use std::sync::Arc;

/// Says once, when it happens, that an iperf test could not be given a time slot (and so is
/// not run).
pub(super) fn report_unscheduled(unplaced: &[crate::task::plan::Unplaced]) -> Vec<String> {
    unplaced
        .iter()
        .map(|u| {
            let text = format!("{} is not scheduled: {}", u.run, u.reason);
            log::event(Level::Bad, "PLAN", &text);
            text
        })
        .collect()
}

/// What dispatching one task did for one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceOutcome {
    pub device: String,
    /// `sent`, `waiting` (agent not registered), or `blocked` (an address is missing).
    pub status: &'static str,
    pub agent_id: Option<u32>,
    pub items: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Sends one device its assignment of one task, if its agent is registered.
pub(super) fn dispatch_device(
    shared: &Arc<Shared>,
    state: &mut State,
    loaded: &LoadedTask,
    device: &str,
) -> DeviceOutcome {
    let agent = state.registry.by_name(device).map(|r| (r.id, r.status));
    let registry = &state.registry;
    let resolve = |d: &str| {
        registry
            .by_name(d)
            .and_then(|r| r.address)
            .map(|a| a.ip().to_string())
    };
    let Some(result) = state.dispatch.assignment(loaded, device, resolve) else {
        return DeviceOutcome {
            device: device.to_string(),
            status: "unknown",
            agent_id: None,
            items: Vec::new(),
            reason: Some("not a device of this task".into()),
        };
    };
    let assignment = match result {
        Ok(a) => a,
        Err(e) => {
            return DeviceOutcome {
                device: device.to_string(),
                status: "blocked",
                agent_id: agent.map(|a| a.0),
                items: Vec::new(),
                reason: Some(e.to_string()),
            };
        }
    };
    let items: Vec<String> = assignment.items.iter().map(|i| i.describe()).collect();
    if let Some(mismatch) = state
        .registry
        .by_name(device)
        .and_then(|r| r.address)
        .and_then(|a| loaded.task.address_mismatch(device, a.ip()))
    {
        log::event(Level::Warn, "TASK", &mismatch);
    }
    let Some((agent_id, _)) = agent.filter(|(_, status)| *status == Status::Up) else {
        return DeviceOutcome {
            device: device.to_string(),
            status: "waiting",
            agent_id: agent.map(|a| a.0),
            items,
            reason: Some("the agent is not connected; it gets the task when it registers".into()),
        };
    };
    send_assignment(
        shared,
        state,
        loaded,
        (device, agent_id),
        assignment,
        &items,
    );
    DeviceOutcome {
        device: device.to_string(),
        status: "sent",
        agent_id: Some(agent_id),
        items,
        reason: None,
    }
}

/// Sends `device`'s agent (up, as `agent_id`) its assignment, and notes that it runs the task.
fn send_assignment(
    shared: &Arc<Shared>,
    state: &mut State,
    loaded: &LoadedTask,
    (device, agent_id): (&str, u32),
    assignment: crate::wire::TaskAssignment,
    items: &[String],
) {
    state
        .dispatch
        .assigned
        .entry(device.to_string())
        .or_default()
        .insert(loaded.number);
    let message = Message::Task(assignment);
    shared.send_to(agent_id, message, Some("TASK"));
    log::event(
        Level::Info,
        "TASK",
        format_args!(
            "{} (#{}) sent to {device}: {}",
            loaded.task.task_id,
            loaded.number,
            items.join(", ")
        ),
    );
}

/// Sends a newly registered agent every task naming it, and re-sends the iperf clients that
/// connect to it (its address may have changed).
pub(super) fn dispatch_agent(shared: &Arc<Shared>, state: &mut State, name: &str) {
    for loaded in state.dispatch.tasks_of(name) {
        let outcome = dispatch_device(shared, state, &loaded, name);
        if outcome.status == "blocked" {
            log::event(
                Level::Warn,
                "TASK",
                format_args!(
                    "{} for {name} waits: {}",
                    loaded.task.task_id,
                    outcome.reason.unwrap_or_default()
                ),
            );
        }
        for client in Dispatch::iperf_clients_of(&loaded, name) {
            if state
                .registry
                .by_name(&client)
                .is_some_and(|r| r.status == Status::Up)
            {
                dispatch_device(shared, state, &loaded, &client);
            }
        }
    }
}

/// What installing one task did.
#[derive(Debug, Clone, Serialize)]
pub struct TaskOutcome {
    pub task_id: String,
    pub number: u32,
    pub devices: Vec<DeviceOutcome>,
    /// Agents that ran the task before and no longer do.
    pub cancelled: Vec<String>,
    /// iperf tests of the task that could not be given a time slot, and why (not run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unscheduled: Vec<String>,
}

/// Validates and installs an uploaded task file, dispatches it, and keeps it for restarts.
pub fn install_upload(
    shared: &Arc<Shared>,
    upload: &TaskUpload,
) -> Result<Vec<TaskOutcome>, dispatch::LoadError> {
    let tasks = Dispatch::read_upload(upload)?;
    let mut state = shared.state();
    let mut outcomes = Vec::new();
    let mut ids = Vec::new();
    for (task, rules) in tasks {
        ids.push(task.task_id.clone());
        let number = state.dispatch.install(task, rules, HTTP_ORIGIN)?;
        outcomes.push(dispatch_installed(shared, &mut state, number));
    }
    // The new tasks may have moved the iperf slots of others: send those devices their new
    // slots; say once what could not be scheduled.
    let changes = state.dispatch.take_plan_changes();
    for unplaced in &changes.unplaced {
        if let Some(outcome) = outcomes
            .iter_mut()
            .find(|o| o.task_id == unplaced.run.task_id)
        {
            outcome
                .unscheduled
                .extend(report_unscheduled(std::slice::from_ref(unplaced)));
        } else {
            report_unscheduled(std::slice::from_ref(unplaced));
        }
    }
    for (number, device) in changes.moved {
        let Some(loaded) = state.dispatch.by_number(number).cloned() else {
            continue;
        };
        let sent_now = outcomes.iter().any(|o| o.number == number);
        let assigned = state
            .dispatch
            .assigned
            .get(&device)
            .is_some_and(|n| n.contains(&number));
        if !sent_now && assigned {
            dispatch_device(shared, &mut state, &loaded, &device);
        }
    }
    state.dispatch.persist_upload(&ids, upload)?;
    Ok(outcomes)
}

/// Dispatches the task just installed as `number` to each of its devices, and sends CANCEL to
/// the agents that ran it before and are not named any more.
pub(super) fn dispatch_installed(
    shared: &Arc<Shared>,
    state: &mut State,
    number: u32,
) -> TaskOutcome {
    let Some(loaded) = state.dispatch.by_number(number).cloned() else {
        return TaskOutcome {
            task_id: String::new(),
            number,
            devices: Vec::new(),
            cancelled: Vec::new(),
            unscheduled: Vec::new(),
        };
    };
    let devices: Vec<String> = loaded
        .task
        .devices
        .iter()
        .map(|d| d.device_id.clone())
        .collect();
    let mut outcome = TaskOutcome {
        task_id: loaded.task.task_id.clone(),
        number,
        devices: Vec::new(),
        cancelled: Vec::new(),
        unscheduled: Vec::new(),
    };
    for device in &devices {
        outcome
            .devices
            .push(dispatch_device(shared, state, &loaded, device));
    }
    // Agents that ran this task and are not named any more stop running it.
    let stale: Vec<String> = state
        .dispatch
        .assigned
        .iter()
        .filter(|(name, numbers)| numbers.contains(&number) && !devices.contains(name))
        .map(|(name, _)| name.clone())
        .collect();
    for name in stale {
        if let Some(numbers) = state.dispatch.assigned.get_mut(&name) {
            numbers.remove(&number);
        }
        if let Some(agent_id) = state.registry.by_name(&name).map(|r| r.id) {
            operate::send_cancel(shared, agent_id, number);
            outcome.cancelled.push(name);
        }
    }
    outcome
}
