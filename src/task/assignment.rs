//! The assignment dialect into the model: `link_metrics` entries `bandwidth`, `jitter` and
//! `packet_loss` (iperf) and `latency` (ping). Entries that describe the same iperf run (same
//! role, server, port, transport, duration and frequency) become one run that watches all their
//! metrics. A client without `server_address` connects to the device of the task that plays
//! iperf server: at the `server_address` that device's entry gives (course files give the server
//! its own address), or else at the address its agent registered from.

use super::dialect::{AssignmentDevice, AssignmentTask, IperfEntry, PingEntry, Role};
use super::error::{JsonPath, TaskError};
use super::model::{Dialect, IperfMetrics, IperfTarget, PlannedItem, Task};
use super::probe_entry;
use super::validate::{Checker, DEFAULT_PING_INTERVAL_MS, DEFAULT_UDP_RATE_BPS, Unmeasured};
use crate::wire::Transport;

/// One iperf run of a device, before a client's server device is known.
#[derive(Debug, Clone, PartialEq)]
struct IperfRun {
    role: Role,
    /// A client's server; a server's own address, as its clients reach it.
    server_address: Option<String>,
    port: u16,
    duration_s: u32,
    transport: Transport,
    rate_bps: u64,
    frequency_s: u32,
}

/// A device after its own checks, waiting for the pairing of iperf clients.
struct Pending<'a> {
    raw: &'a AssignmentDevice,
    path: JsonPath,
    device_id: String,
    items: Vec<PlannedItem>,
    /// Each run, the metrics it watches and the path of its first entry.
    runs: Vec<(IperfRun, IperfMetrics, JsonPath)>,
}

pub(super) fn task(
    c: &Checker<'_>,
    path: &JsonPath,
    raw: &AssignmentTask,
) -> Result<Task, TaskError> {
    let (task_id, frequency_s, devices_path) = c.task_header(path, raw)?;

    let mut pending: Vec<Pending<'_>> = Vec::with_capacity(raw.devices.len());
    let mut ids: Vec<String> = Vec::with_capacity(raw.devices.len());
    for (d, raw_device) in raw.devices.iter().enumerate() {
        let device_path = devices_path.index(d);
        let device_id = c.device_id(&device_path, &raw_device.device_id, &ids)?;
        ids.push(device_id.clone());
        pending.push(own_checks(
            c,
            device_path,
            device_id,
            raw_device,
            frequency_s,
        )?);
    }

    let servers: Vec<(&str, Vec<u16>)> = pending
        .iter()
        .filter_map(|p| {
            let ports: Vec<u16> = p
                .runs
                .iter()
                .filter(|(run, _, _)| run.role == Role::Server)
                .map(|(run, _, _)| run.port)
                .collect();
            (!ports.is_empty()).then_some((p.device_id.as_str(), ports))
        })
        .collect();

    let mut devices = Vec::with_capacity(pending.len());
    for p in &pending {
        let mut items = p.items.clone();
        for (run, measures, entry_path) in &p.runs {
            items.push(iperf_item(
                c,
                run,
                *measures,
                entry_path,
                &p.device_id,
                &servers,
            )?);
        }
        devices.push(c.finish_device(
            &p.path,
            p.device_id.clone(),
            p.raw,
            items,
            Unmeasured::Refuse,
        )?);
    }
    Ok(Task {
        task_id,
        frequency_s,
        dialect: Dialect::Assignment,
        devices,
    })
}

/// The checks that need only the device itself.
fn own_checks<'a>(
    c: &Checker<'_>,
    path: JsonPath,
    device_id: String,
    raw: &'a AssignmentDevice,
    frequency_s: u32,
) -> Result<Pending<'a>, TaskError> {
    let mut items = Vec::new();
    let metrics_path = path.key("device_metrics");
    if let Some(item) = c.device_metrics(&metrics_path, raw.device_metrics.as_ref(), frequency_s)? {
        items.push(item);
    }
    let mut runs: Vec<(IperfRun, IperfMetrics, JsonPath)> = Vec::new();
    if let Some(link) = &raw.link_metrics {
        let link_path = path.key("link_metrics");
        if let Some(entry) = &link.latency {
            items.push(ping_item(c, &link_path.key("latency"), entry, frequency_s)?);
        }
        for entry in &link.probes {
            items.extend(probe_entry::item(
                c,
                &link_path,
                entry,
                Dialect::Assignment,
                frequency_s,
            )?);
        }
        for (name, entry) in [
            ("bandwidth", &link.bandwidth),
            ("jitter", &link.jitter),
            ("packet_loss", &link.packet_loss),
        ] {
            let Some(entry) = entry else { continue };
            let entry_path = link_path.key(name);
            let run = iperf_run(c, &entry_path, name, entry, frequency_s)?;
            let index = match runs.iter().position(|(r, _, _)| *r == run) {
                Some(i) => i,
                None => {
                    runs.push((run, IperfMetrics::default(), entry_path));
                    runs.len() - 1
                }
            };
            let measures = &mut runs[index].1;
            match name {
                "bandwidth" => measures.bandwidth = true,
                "jitter" => measures.jitter = true,
                _ => measures.packet_loss = true,
            }
        }
    }
    Ok(Pending {
        raw,
        path,
        device_id,
        items,
        runs,
    })
}

fn ping_item(
    c: &Checker<'_>,
    path: &JsonPath,
    entry: &PingEntry,
    task_frequency_s: u32,
) -> Result<PlannedItem, TaskError> {
    let destination = c.host(&path.key("destination"), &entry.destination, "destination")?;
    let frequency_s = c.frequency_or(
        &path.key("frequency"),
        entry.frequency.as_ref(),
        task_frequency_s,
    )?;
    let interval_ms = match &entry.interval {
        Some(n) => c.ping_interval(&path.key("interval"), n, "interval")?,
        None => DEFAULT_PING_INTERVAL_MS,
    };
    let count_path = path.key("packet_count");
    let packet_count = c.packet_count(&count_path, &entry.packet_count)?;
    c.ping_fits(&count_path, packet_count, interval_ms, frequency_s)?;
    Ok(PlannedItem::Ping {
        destination,
        packet_count,
        interval_ms,
        frequency_s,
    })
}

fn iperf_run(
    c: &Checker<'_>,
    path: &JsonPath,
    metric: &str,
    entry: &IperfEntry,
    task_frequency_s: u32,
) -> Result<IperfRun, TaskError> {
    let frequency_s = c.frequency_or(
        &path.key("frequency"),
        entry.frequency.as_ref(),
        task_frequency_s,
    )?;
    let duration_s = c.duration(
        &path.key("duration"),
        &entry.duration,
        "duration",
        frequency_s,
    )?;
    let needs_udp = metric != "bandwidth";
    let transport = match entry.transport {
        None if needs_udp => Transport::Udp,
        None => Transport::Tcp,
        Some(Transport::Tcp) if needs_udp => {
            return Err(c.error(
                &path.key("transport"),
                format!(
                    "{metric} is measured over UDP: set \"transport\": \"udp\" or leave it out"
                ),
            ));
        }
        Some(t) => t,
    };
    let port = c.port(&path.key("port"), entry.port.as_ref())?;
    // On a server entry, `server_address` is the server's own address (as course files write
    // it): its clients connect there.
    let server_address = match &entry.server_address {
        Some(address) => Some(c.host(&path.key("server_address"), address, "server_address")?),
        None => None,
    };
    let rate_bps = match (&entry.rate_mbps, transport) {
        (Some(_), Transport::Tcp) => {
            return Err(c.error(
                &path.key("rate_mbps"),
                "rate_mbps sets the rate a UDP test offers; this entry runs over TCP, which \
                 sends as fast as the link allows",
            ));
        }
        (Some(n), Transport::Udp) => c.rate(&path.key("rate_mbps"), n)?,
        (None, Transport::Udp) => DEFAULT_UDP_RATE_BPS,
        (None, Transport::Tcp) => 0,
    };
    Ok(IperfRun {
        role: entry.role,
        server_address,
        port,
        duration_s,
        transport,
        rate_bps,
        frequency_s,
    })
}

/// Turns a run into an item; a client without an address gets the task's iperf server device.
fn iperf_item(
    c: &Checker<'_>,
    run: &IperfRun,
    measures: IperfMetrics,
    path: &JsonPath,
    device_id: &str,
    servers: &[(&str, Vec<u16>)],
) -> Result<PlannedItem, TaskError> {
    let IperfRun {
        role,
        server_address,
        port,
        duration_s,
        transport,
        rate_bps,
        frequency_s,
    } = run.clone();
    if role == Role::Server {
        return Ok(PlannedItem::IperfServer {
            port,
            duration_s,
            transport,
            frequency_s,
            measures,
            address: server_address,
        });
    }
    let server = match server_address {
        Some(address) => IperfTarget::Address(address),
        None => IperfTarget::Device(server_device(c, path, device_id, port, servers)?),
    };
    Ok(PlannedItem::IperfClient {
        server,
        port,
        duration_s,
        transport,
        rate_bps,
        frequency_s,
        measures,
    })
}

fn server_device(
    c: &Checker<'_>,
    path: &JsonPath,
    device_id: &str,
    port: u16,
    servers: &[(&str, Vec<u16>)],
) -> Result<String, TaskError> {
    match servers {
        [] => Err(c.error(
            path,
            "this iperf client has no server_address and no device of the task plays iperf server",
        )),
        [(server, _)] if *server == device_id => Err(c.error(
            path,
            format!(
                "this iperf client has no server_address and its own device {device_id:?} is the \
                 task's only iperf server; a device cannot test against itself"
            ),
        )),
        [(server, ports)] if !ports.contains(&port) => Err(c.error(
            path,
            format!(
                "this iperf client connects to port {port} but the task's iperf server {server:?} \
                 listens on {}",
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        [(server, _)] => Ok((*server).to_owned()),
        several => Err(c.error(
            path,
            format!(
                "this iperf client has no server_address and several devices play iperf server \
                 ({}): give server_address",
                several
                    .iter()
                    .map(|(id, _)| format!("{id:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}
