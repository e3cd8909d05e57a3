//! `alertflow_conditions`: each threshold checked on its scale, and against the figures the
//! device's reports carry, since a threshold on a figure never measured could never fire.

use super::{Checker, Unmeasured};
use crate::rules::{CONDITIONS, Needs, Scale};
use crate::task::dialect::RawConditions;
use crate::task::error::{JsonPath, TaskError};
use crate::task::model::PlannedItem;
use crate::wire::{AlertConditions, Transport};
use serde_json::Number;

/// Which figures a device's reports carry.
struct Figures {
    cpu: bool,
    ram: bool,
    interfaces: bool,
    ping: bool,
    udp_client: bool,
    tcp_client: bool,
    iperf_server: bool,
}

impl Figures {
    fn of(items: &[PlannedItem]) -> Figures {
        let mut f = Figures {
            cpu: false,
            ram: false,
            interfaces: false,
            ping: false,
            udp_client: false,
            tcp_client: false,
            iperf_server: false,
        };
        for item in items {
            match item {
                PlannedItem::MetricsGathering {
                    cpu,
                    ram,
                    interfaces,
                    ..
                } => {
                    f.cpu |= *cpu;
                    f.ram |= *ram;
                    f.interfaces |= !interfaces.is_empty();
                }
                PlannedItem::Ping { .. } => f.ping = true,
                PlannedItem::IperfClient { transport, .. } => match transport {
                    Transport::Udp => f.udp_client = true,
                    Transport::Tcp => f.tcp_client = true,
                },
                PlannedItem::IperfServer { .. } => f.iperf_server = true,
                PlannedItem::Probe(_) => {}
            }
        }
        f
    }

    /// Why a condition's figure is never measured by the device, if it is not.
    fn why_missing(&self, needs: Needs) -> Option<String> {
        match needs {
            Needs::Cpu => (!self.cpu).then(|| "device_metrics.cpu_usage is not enabled".to_owned()),
            Needs::Ram => (!self.ram).then(|| "device_metrics.ram_usage is not enabled".to_owned()),
            Needs::Interfaces => (!self.interfaces)
                .then(|| "device_metrics.interface_stats names no interface".to_owned()),
            Needs::PingOrUdpIperf(figure) => self.why_no_udp_figure(figure),
        }
    }

    /// Why jitter or packet loss (ping, or a UDP iperf client) is never measured, if it is not.
    fn why_no_udp_figure(&self, figure: &str) -> Option<String> {
        if self.ping || self.udp_client {
            None
        } else if self.tcp_client {
            Some(format!(
                "the device's iperf tests run over TCP, which has no {figure} (measure it over \
                 UDP, or add a ping)"
            ))
        } else if self.iperf_server {
            Some(format!(
                "the device is only the iperf server of its tests, whose figures its client \
                 reports: put the {figure} threshold on the client's device"
            ))
        } else {
            Some("the device runs no ping or iperf client".to_owned())
        }
    }
}

impl Checker<'_> {
    /// `alertflow_conditions`, checked against what the device measures. A threshold on a
    /// figure the device never measures could never fire: with [`Unmeasured::Refuse`] it is an
    /// error, with [`Unmeasured::Ignore`] it is left out and noted.
    pub(super) fn conditions(
        &self,
        path: &JsonPath,
        raw: Option<&RawConditions>,
        items: &[PlannedItem],
        unmeasured: Unmeasured,
        notes: &mut Vec<String>,
    ) -> Result<AlertConditions, TaskError> {
        let Some(raw) = raw else {
            return Ok(AlertConditions::default());
        };
        let figures = Figures::of(items);
        let mut values = [None; 5];
        for (slot, condition) in values.iter_mut().zip(&CONDITIONS) {
            let name = condition.name;
            let Some(n) = raw.get(name) else { continue };
            let at = path.key(name);
            let threshold = self.threshold(&at, n, condition.scale)?;
            match (figures.why_missing(condition.needs), unmeasured) {
                (None, _) => *slot = Some(threshold),
                (Some(why), Unmeasured::Refuse) => {
                    return Err(
                        self.error(&at, format!("a {name} threshold can never fire: {why}"))
                    );
                }
                (Some(why), Unmeasured::Ignore) => notes.push(format!(
                    "alertflow_conditions.{name} ({n}) is not used: {why}"
                )),
            }
        }
        Ok(AlertConditions::from_values(values))
    }

    fn threshold(&self, path: &JsonPath, n: &Number, scale: Scale) -> Result<f32, TaskError> {
        let value = n.as_f64().unwrap_or(f64::NAN);
        match scale {
            Scale::Percent if !(0.0..=100.0).contains(&value) => {
                Err(self.error(path, format!("threshold {n} is not a percentage (0..=100)")))
            }
            Scale::NonNegative if value.is_nan() || value < 0.0 => {
                Err(self.error(path, format!("threshold {n} must be a non-negative number")))
            }
            Scale::NonNegative if !(value as f32).is_finite() => Err(self.error(
                path,
                format!("threshold {n} is too large: at most {:e}", f32::MAX),
            )),
            _ => Ok(value as f32),
        }
    }
}
