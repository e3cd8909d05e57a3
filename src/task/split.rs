//! Splitting a task into the work each agent receives: one [`TaskAssignment`] per device, with
//! every iperf client's server filled in and its time slot from the [`IperfPlan`]. A server given
//! as a device of the task is reached at the address its entry gives, or else looked up through
//! a resolver, which the server backs with its registry of agents.

use super::error::TaskError;
use super::model::{Device, IperfTarget, PlannedItem, Task};
use super::plan::IperfPlan;
use super::validate::is_host;
use crate::wire::{TaskAssignment, WorkItem};
use std::net::{IpAddr, SocketAddr};

impl Task {
    /// The assignment for each device, in file order, as `(device_id, assignment)`, all with
    /// `task_number` and no rules (the caller compiles the conditions and rule files and fills
    /// `rules`), with the iperf slots of a plan of this task alone.
    ///
    /// `resolve` gives the address an agent registered from, by device id: a host name or IP
    /// address, with or without a port (a port is dropped: iperf uses its own). It is asked only
    /// for devices that play iperf server for a client without `server_address`.
    ///
    /// # Errors
    /// [`TaskError::ServerAddress`] when such a device has no known address, or its address is
    /// not a host name or IP address.
    pub fn assignments(
        &self,
        task_number: u32,
        resolve: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, TaskAssignment)>, TaskError> {
        let plan = IperfPlan::build([self]);
        self.devices
            .iter()
            .map(|device| {
                let assignment = self.assignment(device, task_number, &resolve, &plan)?;
                Ok((device.device_id.clone(), assignment))
            })
            .collect()
    }

    /// The assignment of one device (see [`Task::assignments`]); each iperf client gets its
    /// slot from `plan`, and a client the plan could not place is left out.
    pub fn assignment(
        &self,
        device: &Device,
        task_number: u32,
        resolve: impl Fn(&str) -> Option<String>,
        plan: &IperfPlan,
    ) -> Result<TaskAssignment, TaskError> {
        let mut items = Vec::with_capacity(device.items.len());
        for (i, item) in device.items.iter().enumerate() {
            let offset = plan.offset_ms(&self.task_id, &device.device_id, i);
            if matches!(item, PlannedItem::IperfClient { .. }) && offset.is_none() {
                continue;
            }
            items.push(self.work_item(item, &device.device_id, offset.unwrap_or(0), &resolve)?);
        }
        Ok(TaskAssignment {
            task_number,
            task_id: self.task_id.clone(),
            items,
            conditions: device.conditions.clone(),
            rules: Vec::new(),
        })
    }

    fn work_item(
        &self,
        item: &PlannedItem,
        device_id: &str,
        offset_ms: u32,
        resolve: &impl Fn(&str) -> Option<String>,
    ) -> Result<WorkItem, TaskError> {
        Ok(match item {
            PlannedItem::MetricsGathering {
                cpu,
                ram,
                interfaces,
                frequency_s,
            } => WorkItem::MetricsGathering {
                cpu: *cpu,
                ram: *ram,
                interfaces: interfaces.clone(),
                frequency_s: *frequency_s,
            },
            PlannedItem::Ping {
                destination,
                packet_count,
                interval_ms,
                frequency_s,
            } => WorkItem::Ping {
                destination: destination.clone(),
                packet_count: *packet_count,
                interval_ms: *interval_ms,
                frequency_s: *frequency_s,
            },
            PlannedItem::IperfClient {
                server,
                port,
                duration_s,
                transport,
                rate_bps,
                frequency_s,
                ..
            } => WorkItem::IperfClient {
                server_address: match server {
                    IperfTarget::Address(address) => address.clone(),
                    IperfTarget::Device(server) => {
                        self.server_address(device_id, server, resolve)?
                    }
                },
                port: *port,
                duration_s: *duration_s,
                transport: *transport,
                rate_bps: *rate_bps,
                offset_ms,
                frequency_s: *frequency_s,
            },
            PlannedItem::IperfServer {
                port,
                duration_s,
                transport,
                frequency_s,
                ..
            } => WorkItem::IperfServer {
                port: *port,
                duration_s: *duration_s,
                transport: *transport,
                frequency_s: *frequency_s,
            },
            PlannedItem::Probe(item) => WorkItem::Probe(item.clone()),
        })
    }

    /// The address a server device's entry gives as its own (`server_address` on a server).
    pub fn declared_address(&self, server: &str) -> Option<&str> {
        self.device(server)?
            .items
            .iter()
            .find_map(|item| match item {
                PlannedItem::IperfServer {
                    address: Some(a), ..
                } => Some(a.as_str()),
                _ => None,
            })
    }

    /// When the task file gives iperf server `device` an address (`server_address` on its
    /// server entry) that is an IP address other than `registered`, the one its agent registered
    /// from: a sentence saying so. (A host name is not resolved here; a NAT can explain a
    /// difference, so clients still use the address the file gives.)
    pub fn address_mismatch(&self, device: &str, registered: IpAddr) -> Option<String> {
        let declared = self.declared_address(device)?;
        let ip: IpAddr = declared.parse().ok()?;
        (ip != registered).then(|| {
            format!(
                "task {}: the iperf server {device} is given server_address {declared}, but its \
                 agent registered from {registered}; its clients connect to {declared}",
                self.task_id
            )
        })
    }

    fn server_address(
        &self,
        client: &str,
        server: &str,
        resolve: &impl Fn(&str) -> Option<String>,
    ) -> Result<String, TaskError> {
        let error = |problem: String| TaskError::ServerAddress {
            task_id: self.task_id.clone(),
            client: client.to_owned(),
            server: server.to_owned(),
            problem,
        };
        if let Some(address) = self.declared_address(server) {
            return Ok(address.to_owned());
        }
        let Some(address) = resolve(server) else {
            return Err(error(
                "whose address is not known (has its agent registered?)".to_owned(),
            ));
        };
        let host = match address.parse::<SocketAddr>() {
            Ok(socket) => socket.ip().to_string(),
            Err(_) => address,
        };
        if is_host(&host) {
            Ok(host)
        } else {
            Err(error(format!(
                "whose address {host:?} is not a host name or IP address"
            )))
        }
    }
}
