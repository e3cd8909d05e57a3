//! The original implementation's dialect into the model: `link_metrics` holds
//! `iperf_parameters` and `ping_parameters`; a task with one device is a ping task, a task with
//! two devices an iperf pair in which exactly one device has `is_server: true`. The client
//! always connects to the server device of its pair.
//!
//! Every field means what it meant there: `ping_parameters.frequency` is the interval between
//! echo requests (`ping -c packet_count -i frequency`), the ping runs every task `frequency`, and
//! `packet_count × frequency` must fit in the task's frequency; `enabled: false` switches ping off
//! and its other fields are then not read; an iperf pair's flags are combined. A threshold on a
//! figure the device does not measure is ignored with a note, as that system ignored it.
//!
//! Compared with the original validation, a pair may watch bandwidth together with jitter and
//! packet loss (one UDP run reports all three), and every value is checked as in the assignment
//! dialect.

use super::dialect::{IperfParameters, OriginalDevice, OriginalTask, PingParameters};
use super::error::{JsonPath, TaskError};
use super::model::{Dialect, IperfMetrics, IperfTarget, PlannedItem, Task};
use super::probe_entry;
use super::validate::{
    Checker, DEFAULT_UDP_RATE_BPS, ORIGINAL_DEFAULT_PING_INTERVAL_MS, Unmeasured,
};
use crate::wire::Transport;

pub(super) fn task(
    c: &Checker<'_>,
    path: &JsonPath,
    raw: &OriginalTask,
) -> Result<Task, TaskError> {
    let (task_id, frequency_s, devices_path) = c.task_header(path, raw)?;
    if raw.devices.len() > 2 {
        return Err(c.error(
            &devices_path,
            format!(
                "{} devices: in the original dialect a task has one device (a ping task) or two \
                 (an iperf pair)",
                raw.devices.len()
            ),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(raw.devices.len());
    for (d, device) in raw.devices.iter().enumerate() {
        ids.push(c.device_id(&devices_path.index(d), &device.device_id, &ids)?);
    }
    let link_items: Vec<Option<PlannedItem>> = match raw.devices.as_slice() {
        // A device that runs probes is a ping task only when it enables ping.
        [device]
            if !probe_items(c, &devices_path.index(0), device, frequency_s)?.is_empty()
                && !link_parts(device).1.is_some_and(|p| p.enabled) =>
        {
            vec![None]
        }
        [device] => vec![Some(ping_item(
            c,
            &devices_path.index(0),
            device,
            frequency_s,
        )?)],
        [_, _] => pair_items(c, &devices_path, raw, &ids, frequency_s)?
            .into_iter()
            .map(Some)
            .collect(),
        _ => Vec::new(),
    };

    let mut devices = Vec::with_capacity(raw.devices.len());
    for (d, ((raw_device, device_id), link_item)) in
        raw.devices.iter().zip(ids).zip(link_items).enumerate()
    {
        let device_path = devices_path.index(d);
        let mut items = Vec::with_capacity(2);
        let metrics_path = device_path.key("device_metrics");
        if let Some(item) = c.device_metrics(
            &metrics_path,
            raw_device.device_metrics.as_ref(),
            frequency_s,
        )? {
            items.push(item);
        }
        items.extend(link_item);
        items.extend(probe_items(c, &device_path, raw_device, frequency_s)?);
        devices.push(c.finish_device(
            &device_path,
            device_id,
            raw_device,
            items,
            Unmeasured::Ignore,
        )?);
    }
    Ok(Task {
        task_id,
        frequency_s,
        dialect: Dialect::Original,
        devices,
    })
}

fn link_parts(device: &OriginalDevice) -> (Option<&IperfParameters>, Option<&PingParameters>) {
    device.link_metrics.as_ref().map_or((None, None), |link| {
        (
            link.iperf_parameters.as_ref(),
            link.ping_parameters.as_ref(),
        )
    })
}

/// The device's enabled probe entries (`NAME_parameters`) as items at the task's frequency.
fn probe_items(
    c: &Checker<'_>,
    device_path: &JsonPath,
    device: &OriginalDevice,
    task_frequency_s: u32,
) -> Result<Vec<PlannedItem>, TaskError> {
    let link_path = device_path.key("link_metrics");
    let mut items = Vec::new();
    for entry in device.link_metrics.iter().flat_map(|l| &l.probes) {
        items.extend(probe_entry::item(
            c,
            &link_path,
            entry,
            Dialect::Original,
            task_frequency_s,
        )?);
    }
    Ok(items)
}

/// The one device of a ping task.
fn ping_item(
    c: &Checker<'_>,
    device_path: &JsonPath,
    device: &OriginalDevice,
    task_frequency_s: u32,
) -> Result<PlannedItem, TaskError> {
    let link_path = device_path.key("link_metrics");
    let (iperf, ping) = link_parts(device);
    if iperf.is_some_and(IperfParameters::any_metric) {
        return Err(c.error(
            &link_path.key("iperf_parameters"),
            "iperf needs two devices (a server and a client); a one-device task is a ping task",
        ));
    }
    let ping_path = link_path.key("ping_parameters");
    let Some(ping) = ping.filter(|p| p.enabled) else {
        return Err(c.error(
            &ping_path,
            "a one-device task is a ping task: it needs ping_parameters with \"enabled\": true",
        ));
    };
    let Some(destination) = &ping.destination else {
        return Err(c.error(&ping_path, "ping_parameters needs a destination"));
    };
    let destination = c.host(&ping_path.key("destination"), destination, "destination")?;
    let Some(packet_count) = &ping.packet_count else {
        return Err(c.error(&ping_path, "ping_parameters needs a packet_count"));
    };
    let count_path = ping_path.key("packet_count");
    let packet_count = c.packet_count(&count_path, packet_count)?;
    // As the original system: `frequency` is the interval between packets (`ping -i`).
    let (interval_ms, interval_text) = match &ping.frequency {
        Some(n) => (
            c.ping_interval(&ping_path.key("frequency"), n, "frequency")?,
            n.to_string(),
        ),
        None => (
            ORIGINAL_DEFAULT_PING_INTERVAL_MS,
            "1 (ping's default)".to_owned(),
        ),
    };
    let pinging_ms = u64::from(packet_count) * u64::from(interval_ms);
    if pinging_ms > u64::from(task_frequency_s) * 1000 {
        return Err(c.error(
            &count_path,
            format!(
                "packet_count {packet_count} × frequency {interval_text} s = {} s of pinging does \
                 not fit in the task's frequency of {task_frequency_s} s (ping_parameters.frequency \
                 is the interval between packets, and packet_count × frequency must not exceed \
                 the task's frequency)",
                pinging_ms as f64 / 1000.0
            ),
        ));
    }
    Ok(PlannedItem::Ping {
        destination,
        packet_count,
        interval_ms,
        frequency_s: task_frequency_s,
    })
}

/// One device of an iperf pair: where its `iperf_parameters` are, and what they say.
type PairSide<'a> = (JsonPath, &'a IperfParameters);

/// The two devices of an iperf pair, in file order: the server's item and the client's.
fn pair_items(
    c: &Checker<'_>,
    devices_path: &JsonPath,
    raw: &OriginalTask,
    ids: &[String],
    frequency_s: u32,
) -> Result<Vec<PlannedItem>, TaskError> {
    let sides = pair_sides(c, devices_path, raw)?;
    let server = server_side(c, &sides)?;
    let client = 1 - server;
    let measures = pair_measures(c, &sides[client], &sides[server])?;
    let transport = if measures.jitter || measures.packet_loss {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let duration_s = pair_duration(c, &sides[client], &sides[server], frequency_s)?;
    let port = pair_port(c, &sides[client], &sides[server])?;
    let rate_bps = pair_rate(c, [&sides[client], &sides[server]], transport)?;

    let server_item = PlannedItem::IperfServer {
        port,
        duration_s,
        transport,
        frequency_s,
        measures,
        address: None,
    };
    let client_item = PlannedItem::IperfClient {
        server: IperfTarget::Device(ids[server].clone()),
        port,
        duration_s,
        transport,
        rate_bps,
        frequency_s,
        measures,
    };
    Ok(if server == 0 {
        vec![server_item, client_item]
    } else {
        vec![client_item, server_item]
    })
}

/// Each device's `iperf_parameters`, in file order; ping has no place in a pair.
fn pair_sides<'a>(
    c: &Checker<'_>,
    devices_path: &JsonPath,
    raw: &'a OriginalTask,
) -> Result<Vec<PairSide<'a>>, TaskError> {
    let mut sides = Vec::with_capacity(2);
    for (d, device) in raw.devices.iter().enumerate() {
        let link_path = devices_path.index(d).key("link_metrics");
        let (iperf, ping) = link_parts(device);
        if ping.is_some_and(|p| p.enabled) {
            return Err(c.error(
                &link_path.key("ping_parameters").key("enabled"),
                "a two-device task is an iperf pair; ping belongs in a one-device task",
            ));
        }
        let Some(iperf) = iperf else {
            return Err(c.error(
                &link_path,
                "a two-device task is an iperf pair: each device needs iperf_parameters",
            ));
        };
        sides.push((link_path.key("iperf_parameters"), iperf));
    }
    Ok(sides)
}

/// The index of the one side with `is_server: true`.
fn server_side(c: &Checker<'_>, sides: &[PairSide<'_>]) -> Result<usize, TaskError> {
    let servers: Vec<usize> = (0..sides.len()).filter(|&i| sides[i].1.is_server).collect();
    match servers.as_slice() {
        [one] => Ok(*one),
        [] => Err(c.error(
            &sides[1].0,
            "neither device of the iperf pair has \"is_server\": true; exactly one must",
        )),
        _ => Err(c.error(
            &sides[1].0.key("is_server"),
            "both devices of the iperf pair have \"is_server\": true; exactly one must",
        )),
    }
}

/// What the pair measures: a figure either side asks for; at least one must be asked for.
fn pair_measures(
    c: &Checker<'_>,
    (client_path, client_params): &PairSide<'_>,
    (_, server_params): &PairSide<'_>,
) -> Result<IperfMetrics, TaskError> {
    let measures = IperfMetrics {
        bandwidth: client_params.bandwidth || server_params.bandwidth,
        jitter: client_params.jitter || server_params.jitter,
        packet_loss: client_params.packet_loss || server_params.packet_loss,
    };
    if !(measures.bandwidth || measures.jitter || measures.packet_loss) {
        return Err(c.error(
            client_path,
            "the iperf pair measures nothing: enable bandwidth, jitter or packet_loss",
        ));
    }
    Ok(measures)
}

/// The client's `test_duration`; the server may repeat it, but not differ.
fn pair_duration(
    c: &Checker<'_>,
    (client_path, client_params): &PairSide<'_>,
    (server_path, server_params): &PairSide<'_>,
    frequency_s: u32,
) -> Result<u32, TaskError> {
    let Some(duration) = &client_params.test_duration else {
        return Err(c.error(client_path, "the iperf client needs a test_duration"));
    };
    let duration_s = c.duration(
        &client_path.key("test_duration"),
        duration,
        "test_duration",
        frequency_s,
    )?;
    if let Some(server_duration) = &server_params.test_duration {
        let at = server_path.key("test_duration");
        let server_duration_s = c.duration(&at, server_duration, "test_duration", frequency_s)?;
        if server_duration_s != duration_s {
            return Err(c.error(
                &at,
                format!(
                    "the server's test_duration {server_duration_s} s differs from the client's \
                     {duration_s} s"
                ),
            ));
        }
    }
    Ok(duration_s)
}

/// The port the client connects to, which must be the one the server listens on.
fn pair_port(
    c: &Checker<'_>,
    (client_path, client_params): &PairSide<'_>,
    (server_path, server_params): &PairSide<'_>,
) -> Result<u16, TaskError> {
    let port = c.port(&client_path.key("port"), client_params.port.as_ref())?;
    let server_port = c.port(&server_path.key("port"), server_params.port.as_ref())?;
    if server_port != port {
        return Err(c.error(
            &server_path.key("port"),
            format!("the server listens on port {server_port} but the client connects to {port}"),
        ));
    }
    Ok(port)
}

/// The rate a UDP pair offers (given once, or the same on both sides, else the default); a TCP
/// pair has none.
fn pair_rate(
    c: &Checker<'_>,
    client_then_server: [&PairSide<'_>; 2],
    transport: Transport,
) -> Result<u64, TaskError> {
    let mut rate_bps = None;
    for (path, params) in client_then_server {
        let Some(n) = &params.rate_mbps else { continue };
        let at = path.key("rate_mbps");
        if transport == Transport::Tcp {
            return Err(c.error(
                &at,
                "rate_mbps sets the rate a UDP test offers; this pair measures bandwidth only, \
                 over TCP, which sends as fast as the link allows",
            ));
        }
        let rate = c.rate(&at, n)?;
        if rate_bps.is_some_and(|r| r != rate) {
            return Err(c.error(
                &at,
                "the two devices of the pair give different rate_mbps; give it once, or the same",
            ));
        }
        rate_bps = Some(rate);
    }
    Ok(match transport {
        Transport::Udp => rate_bps.unwrap_or(DEFAULT_UDP_RATE_BPS),
        Transport::Tcp => 0,
    })
}
