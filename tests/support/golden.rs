//! The golden packets: what each file in `tests/fixtures/packets/` holds, built from realistic
//! values, and where to find them.

use nms::wire::packet::{CAP_IPERF3, CAP_PING, RefusalReason, Refused};
use nms::wire::{
    Ack, Alert, AlertConditions, AlertType, Body, Cancel, Decoded, Fragment, Frame, FrameBody,
    Heartbeat, InterfaceCounters, Key, LinkState, Message, MetricsReport, Noack, NoackReason,
    Packet, PacketType, Registered, Registration, RuleSource, Sample, Severity, TaskAssignment,
    Transport, WorkItem,
};
use std::path::PathBuf;

/// The directory of the golden packets.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/packets")
}

/// The key of the keyed golden packets (`tests/fixtures/packets/test.key`).
pub fn test_key_path() -> PathBuf {
    golden_dir().join("test.key")
}

pub fn test_key() -> Key {
    let text = std::fs::read_to_string(test_key_path()).expect("tests/fixtures/packets/test.key");
    Key::from_hex(&text).expect("the test key is valid hex")
}

/// One golden packet: its file name, its value, and whether it is tagged with the test key.
pub struct Golden {
    pub file: &'static str,
    pub value: Decoded,
    pub keyed: bool,
}

impl Golden {
    /// The key its tag is made with: the session key of the examples' registration instance
    /// (keyed tags are bound to a session), derived from the test key.
    pub fn key(&self) -> Option<Key> {
        self.keyed.then(|| test_key().session(INSTANCE))
    }

    /// The bytes the current encoder produces for this packet.
    pub fn encode(&self) -> Vec<u8> {
        self.value.encode(self.key().as_ref())
    }

    pub fn read_file(&self) -> Vec<u8> {
        let path = golden_dir().join(self.file);
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with `NMS_REGENERATE_GOLDEN=1 cargo test --test golden -- --ignored`)",
                path.display()
            )
        })
    }
}

/// Agent 7, "edge-router-1", talks to the server; all times are around 2025-11-27 09:40 UTC.
const AGENT: u32 = 7;
const AGENT_NAME: &str = "edge-router-1";
const T0: u64 = 1_764_236_400_000;
pub const INSTANCE: u64 = 0x5f3a_91c2_0be4_7d16;
const ALERT_ID: u64 = 0x8f3c_2a71_d4e0_9b55;

fn packet(seq: u16, message: Message) -> Decoded {
    Decoded::NetTask(Packet {
        keyed: false,
        agent_id: AGENT,
        body: Body::Reliable { seq, message },
    })
}

fn ack(seq: u16, earlier: u32, keyed: bool) -> Decoded {
    Decoded::NetTask(Packet {
        keyed,
        agent_id: AGENT,
        body: Body::Ack(Ack { seq, earlier }),
    })
}

fn task(task_number: u32, task_id: &str, item: WorkItem, conditions: AlertConditions) -> Message {
    Message::Task(TaskAssignment {
        task_number,
        task_id: task_id.to_string(),
        items: vec![item],
        conditions,
        rules: Vec::new(),
    })
}

fn interface(
    name: &str,
    packets: f32,
    bytes: f32,
    errors: f32,
    counters: InterfaceCounters,
) -> Sample {
    Sample::Interface {
        name: name.to_string(),
        state: LinkState::Up,
        packets_per_sec: packets,
        bytes_per_sec: bytes,
        errors_per_sec: errors,
        counters,
    }
}

#[allow(clippy::too_many_arguments)]
fn ping(min: f32, avg: f32, max: f32, jitter: f32, loss: f32, sent: u64, received: u64) -> Sample {
    Sample::Ping {
        rtt_min_ms: min,
        rtt_avg_ms: avg,
        rtt_max_ms: max,
        jitter_ms: jitter,
        loss_percent: loss,
        sent,
        received,
    }
}

/// eth0's counters in the examples: all eight, as Linux tells them.
fn eth0_counters() -> InterfaceCounters {
    InterfaceCounters {
        rx_bytes: Some(84_213_337_612),
        tx_bytes: Some(19_734_220_118),
        rx_packets: Some(61_402_117),
        tx_packets: Some(28_311_906),
        rx_errors: Some(0),
        tx_errors: Some(0),
        rx_dropped: Some(14),
        tx_dropped: Some(0),
    }
}

/// eth1's: no drop counters (a host that does not tell them).
fn eth1_counters() -> InterfaceCounters {
    InterfaceCounters {
        rx_dropped: None,
        tx_dropped: None,
        rx_bytes: Some(1_048_576),
        tx_bytes: Some(524_288),
        rx_packets: Some(2048),
        tx_packets: Some(1024),
        rx_errors: Some(0),
        tx_errors: Some(1),
    }
}

/// The metrics task of the examples: CPU, RAM and two interfaces, with thresholds and a rule.
fn metrics_task() -> TaskAssignment {
    TaskAssignment {
        task_number: 2,
        task_id: "task-101".to_string(),
        items: vec![WorkItem::MetricsGathering {
            cpu: true,
            ram: true,
            interfaces: vec!["eth0".to_string(), "eth1".to_string()],
            frequency_s: 10,
        }],
        conditions: AlertConditions {
            cpu_usage: Some(80.0),
            ram_usage: Some(90.0),
            interface_stats: Some(2000.0),
            packet_loss: None,
            jitter: None,
        },
        rules: vec![RuleSource {
            name: "cpu_and_ram".to_string(),
            source: "// both high at once\ncpu > 70.0 && ram > 85.0".to_string(),
        }],
    }
}

/// Every golden packet, in the order PROTOCOL.md shows them.
pub fn golden_packets() -> Vec<Golden> {
    [
        registration_packets(),
        acknowledgement_packets(),
        task_packets(),
        report_packets(),
        control_packets(),
        keyed_packets(),
        alertflow_packets(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A golden packet that is not tagged.
fn plain(file: &'static str, value: Decoded) -> Golden {
    Golden {
        file,
        value,
        keyed: false,
    }
}

/// A golden packet tagged with the test key.
fn keyed(file: &'static str, value: Decoded) -> Golden {
    Golden {
        file,
        value,
        keyed: true,
    }
}

/// The agent's registration of the examples (agent id 0: it has none yet).
fn registration(keyed: bool) -> Decoded {
    Decoded::NetTask(Packet {
        keyed,
        agent_id: 0,
        body: Body::Reliable {
            seq: 0,
            message: Message::Registration(Registration {
                name: AGENT_NAME.to_string(),
                instance: INSTANCE,
                time_ms: T0,
                capabilities: CAP_PING | CAP_IPERF3,
                software: "nms 0.1.0".to_string(),
            }),
        },
    })
}

/// The registration and the server's answer to it.
fn registration_packets() -> Vec<Golden> {
    vec![
        plain("registration.bin", registration(false)),
        plain(
            "registered.bin",
            packet(
                0,
                Message::Registered(Registered {
                    instance: INSTANCE,
                    alertflow_port: 7071,
                    heartbeat_ms: 10_000,
                    timeout_ms: 200,
                    max_retransmissions: 3,
                    server_time_ms: T0 + 12,
                }),
            ),
        ),
    ]
}

/// The acknowledgements: a single one, one with earlier ones in its bitmap, and a refusal.
fn acknowledgement_packets() -> Vec<Golden> {
    vec![
        plain("ack.bin", ack(1042, 0, false)),
        // Acknowledges 1042 and, through the bitmap, 1041, 1039 and 1033.
        plain("ack_multi.bin", ack(1042, 0b1_0000_0101, false)),
        plain(
            "noack.bin",
            Decoded::NetTask(Packet {
                keyed: false,
                agent_id: AGENT,
                body: Body::Noack(Noack {
                    seq: 1043,
                    reason: NoackReason::BadTag,
                }),
            }),
        ),
    ]
}

/// The task assignments: metrics, ping, and both ends of an iperf3 test.
fn task_packets() -> Vec<Golden> {
    vec![
        plain("task_metrics.bin", packet(2, Message::Task(metrics_task()))),
        plain(
            "task_ping.bin",
            packet(
                3,
                task(
                    3,
                    "task-202",
                    WorkItem::Ping {
                        destination: "10.0.4.10".to_string(),
                        packet_count: 5,
                        interval_ms: 200,
                        frequency_s: 20,
                    },
                    AlertConditions::default(),
                ),
            ),
        ),
        plain(
            "task_iperf_client.bin",
            packet(
                4,
                task(
                    4,
                    "task-303",
                    WorkItem::IperfClient {
                        server_address: "10.0.5.20".to_string(),
                        port: 5201,
                        duration_s: 10,
                        transport: Transport::Udp,
                        rate_bps: 100_000_000,
                        offset_ms: 11_000,
                        frequency_s: 60,
                    },
                    AlertConditions {
                        packet_loss: Some(5.0),
                        jitter: Some(30.0),
                        ..AlertConditions::default()
                    },
                ),
            ),
        ),
        plain(
            "task_iperf_server.bin",
            packet(
                5,
                task(
                    4,
                    "task-303",
                    WorkItem::IperfServer {
                        port: 5201,
                        duration_s: 10,
                        transport: Transport::Udp,
                        frequency_s: 60,
                    },
                    AlertConditions::default(),
                ),
            ),
        ),
    ]
}

/// The agent's reports: metrics of each kind and a heartbeat.
fn report_packets() -> Vec<Golden> {
    vec![
        plain(
            "metrics_typical.bin",
            packet(
                1044,
                Message::Metrics(MetricsReport {
                    task_number: 2,
                    time_ms: T0 + 10_000,
                    samples: vec![
                        Sample::Cpu { percent: 37.5 },
                        Sample::Ram { percent: 61.25 },
                        interface("eth0", 1520.0, 1_250_000.0, 0.0, eth0_counters()),
                        interface("eth1", 88.5, 42_600.0, 0.0, eth1_counters()),
                        ping(0.412, 0.583, 0.91, 0.121, 0.0, 30, 30),
                    ],
                }),
            ),
        ),
        plain(
            "metrics_iperf_udp.bin",
            packet(
                1045,
                Message::Metrics(MetricsReport {
                    task_number: 4,
                    time_ms: T0 + 70_000,
                    samples: vec![Sample::Iperf {
                        transport: Transport::Udp,
                        bandwidth_bps: 94_300_000.0,
                        offered_bps: 100_000_000.0,
                        jitter_ms: 0.42,
                        loss_percent: 0.8,
                    }],
                }),
            ),
        ),
        // Every ping was lost: the round-trip times are NaN ("not measured").
        plain(
            "metrics_ping_lost.bin",
            packet(
                1046,
                Message::Metrics(MetricsReport {
                    task_number: 3,
                    time_ms: T0 + 20_000,
                    samples: vec![ping(f32::NAN, f32::NAN, f32::NAN, f32::NAN, 100.0, 3, 0)],
                }),
            ),
        ),
        plain(
            "heartbeat.bin",
            packet(
                1047,
                Message::Heartbeat(Heartbeat {
                    time_ms: T0 + 30_000,
                    pending_reports: 0,
                }),
            ),
        ),
    ]
}

/// The server's control messages: a fragment of the metrics task, a cancel, a refusal.
fn control_packets() -> Vec<Golden> {
    let mut task_body = Vec::new();
    metrics_task().encode(&mut task_body);
    vec![
        plain(
            "fragment.bin",
            packet(
                6,
                Message::Fragment(Fragment {
                    message_id: 12,
                    index: 0,
                    count: 2,
                    inner_type: PacketType::Task,
                    chunk: task_body[..task_body.len() / 2].to_vec(),
                }),
            ),
        ),
        plain(
            "cancel.bin",
            packet(7, Message::Cancel(Cancel { task_number: 4 })),
        ),
        plain(
            "refused.bin",
            Decoded::NetTask(Packet {
                keyed: false,
                agent_id: 0,
                body: Body::Reliable {
                    seq: 0,
                    message: Message::Refused(Refused {
                        instance: INSTANCE,
                        reason: RefusalReason::Full,
                        server_time_ms: T0 + 12,
                        last_accepted_ms: 0,
                    }),
                },
            }),
        ),
    ]
}

/// The NetTask packets tagged with the test key.
fn keyed_packets() -> Vec<Golden> {
    vec![
        keyed("keyed_registration.bin", registration(true)),
        keyed(
            "keyed_refused.bin",
            Decoded::NetTask(Packet {
                keyed: true,
                agent_id: 0,
                body: Body::Reliable {
                    seq: 0,
                    // The agent's clock was 7 minutes ahead of the server's.
                    message: Message::Refused(Refused {
                        instance: INSTANCE,
                        reason: RefusalReason::Clock,
                        server_time_ms: T0 - 420_000,
                        last_accepted_ms: 0,
                    }),
                },
            }),
        ),
        keyed("keyed_ack.bin", ack(1042, 0, true)),
    ]
}

/// The CPU alert of the examples, as an AlertFlow frame.
fn cpu_alert(keyed: bool) -> Decoded {
    Decoded::AlertFlow(Frame {
        keyed,
        agent_id: AGENT,
        body: FrameBody::Alert(Alert {
            alert_id: ALERT_ID,
            resolves: 0,
            agent: AGENT_NAME.to_string(),
            task: "task-101".to_string(),
            alert_type: AlertType::Cpu,
            severity: Severity::Critical,
            value: 97.5,
            threshold: 80.0,
            time_ms: T0 + 40_000,
            rule: "cpu_usage".to_string(),
            message: "CPU usage 97.5% is above 80%".to_string(),
            subject: String::new(),
        }),
    })
}

/// The AlertFlow frames: the alert, plain and keyed, and its acknowledgement.
fn alertflow_packets() -> Vec<Golden> {
    vec![
        plain("alertflow_alert.bin", cpu_alert(false)),
        keyed("keyed_alertflow_alert.bin", cpu_alert(true)),
        plain(
            "alertflow_alert_ack.bin",
            Decoded::AlertFlow(Frame {
                keyed: false,
                agent_id: AGENT,
                body: FrameBody::AlertAck { alert_id: ALERT_ID },
            }),
        ),
    ]
}
