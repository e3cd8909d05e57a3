//! Splitting a task into the work each agent receives: one [`TaskAssignment`] per device, with
//! every iperf client's server filled in. A server given as a device of the task is looked up
//! through a resolver, which the server backs with its registry of agents.

use super::error::TaskError;
use super::model::{Device, IperfTarget, PlannedItem, Task};
use super::validate::is_host;
use crate::wire::{TaskAssignment, WorkItem};
use std::net::SocketAddr;

impl Task {
    /// The assignment for each device, in file order, as `(device_id, assignment)`, all with
    /// `task_number` and no rules (the caller compiles the conditions and rule files and fills
    /// `rules`).
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
        self.devices
            .iter()
            .map(|device| {
                let assignment = self.assignment(device, task_number, &resolve)?;
                Ok((device.device_id.clone(), assignment))
            })
            .collect()
    }

    /// The assignment of one device (see [`Task::assignments`]).
    pub fn assignment(
        &self,
        device: &Device,
        task_number: u32,
        resolve: impl Fn(&str) -> Option<String>,
    ) -> Result<TaskAssignment, TaskError> {
        let items = device
            .items
            .iter()
            .map(|item| self.work_item(item, &device.device_id, &resolve))
            .collect::<Result<_, _>>()?;
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
                frequency_s,
            } => WorkItem::Ping {
                destination: destination.clone(),
                packet_count: *packet_count,
                frequency_s: *frequency_s,
            },
            PlannedItem::IperfClient {
                server,
                port,
                duration_s,
                transport,
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
