//! Task files as a user writes them: both dialects read into the expected model, every example
//! in configs/ is valid, each kind of mistake gets the exact message a user sees (file, JSON
//! path, line:column), and splitting a task fills in the iperf server's address.

use nms::task::{self, Device, Dialect, IperfMetrics, IperfTarget, PlannedItem, Task, TaskError};
use nms::wire::{AlertConditions, Transport, WorkItem};
use std::path::{Path, PathBuf};

fn load(path: &str) -> Vec<Task> {
    match task::load(Path::new(path)) {
        Ok(tasks) => tasks,
        Err(e) => panic!("{path} should be valid: {e}"),
    }
}

fn error_of(fixture: &str) -> String {
    let path = format!("tests/fixtures/tasks/{fixture}");
    match task::load(Path::new(&path)) {
        Ok(tasks) => panic!("{path} should be rejected, read {tasks:?}"),
        Err(e) => e.to_string(),
    }
}

fn metrics(cpu: bool, ram: bool, interfaces: &[&str], frequency_s: u32) -> PlannedItem {
    PlannedItem::MetricsGathering {
        cpu,
        ram,
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
        frequency_s,
    }
}

const ALL_IPERF: IperfMetrics = IperfMetrics {
    bandwidth: true,
    jitter: true,
    packet_loss: true,
};

#[test]
fn assignment_dialect_reads_into_the_model() {
    let tasks = load("tests/fixtures/tasks/assignment.json");
    let expected = Task {
        task_id: "lab".into(),
        frequency_s: 30,
        dialect: Dialect::Assignment,
        devices: vec![assignment_device_1(), assignment_device_r2()],
    };
    assert_eq!(tasks, vec![expected]);
}

/// Device 1 of assignment.json as read: metrics, a ping and two iperf clients, conditions and
/// rule files.
fn assignment_device_1() -> Device {
    Device {
        // A numeric device_id is matched as text.
        device_id: "1".into(),
        items: vec![
            metrics(true, false, &["eth0", "lo"], 30),
            PlannedItem::Ping {
                destination: "r2.lab.example".into(),
                packet_count: 10,
                interval_ms: 200,
                frequency_s: 30,
            },
            // bandwidth and jitter describe the same run: one item watches both.
            PlannedItem::IperfClient {
                server: IperfTarget::Device("r2".into()),
                port: 5201,
                duration_s: 10,
                transport: Transport::Udp,
                rate_bps: 100_000_000,
                frequency_s: 30,
                measures: IperfMetrics {
                    bandwidth: true,
                    jitter: true,
                    packet_loss: false,
                },
            },
            // packet_loss has its own server, port and frequency; UDP is implied.
            PlannedItem::IperfClient {
                server: IperfTarget::Address("10.0.0.9".into()),
                port: 5202,
                duration_s: 5,
                transport: Transport::Udp,
                rate_bps: 100_000_000,
                frequency_s: 60,
                measures: IperfMetrics {
                    bandwidth: false,
                    jitter: false,
                    packet_loss: true,
                },
            },
        ],
        conditions: AlertConditions {
            cpu_usage: Some(75.5),
            interface_stats: Some(2000.0),
            jitter: Some(8.0),
            ..AlertConditions::default()
        },
        rule_files: vec![
            PathBuf::from("tests/fixtures/tasks/rules/sustained_cpu.rhai"),
            PathBuf::from("/etc/nms/night.rhai"),
        ],
        notes: Vec::new(),
    }
}

/// Device r2 of assignment.json as read: the iperf server of device 1's first client.
fn assignment_device_r2() -> Device {
    Device {
        device_id: "r2".into(),
        items: vec![PlannedItem::IperfServer {
            port: 5201,
            duration_s: 10,
            transport: Transport::Udp,
            frequency_s: 30,
            measures: IperfMetrics {
                bandwidth: true,
                jitter: false,
                packet_loss: false,
            },
            address: None,
        }],
        conditions: AlertConditions::default(),
        rule_files: Vec::new(),
        notes: Vec::new(),
    }
}

#[test]
fn original_dialect_reads_into_the_model() {
    let tasks = load("configs/original-example.json");
    assert_eq!(tasks, vec![original_ping_task(), original_pair_task()]);
}

/// task-1 of configs/original-example.json as read: one device with metrics and a ping.
fn original_ping_task() -> Task {
    Task {
        task_id: "task-1".into(),
        frequency_s: 10,
        dialect: Dialect::Original,
        devices: vec![Device {
            device_id: "r1".into(),
            items: vec![
                metrics(true, true, &["lo"], 10),
                // ping_parameters.frequency is the interval between packets.
                PlannedItem::Ping {
                    destination: "127.0.0.1".into(),
                    packet_count: 5,
                    interval_ms: 1000,
                    frequency_s: 10,
                },
            ],
            conditions: AlertConditions {
                cpu_usage: Some(80.0),
                ram_usage: Some(90.0),
                interface_stats: Some(2000.0),
                packet_loss: Some(5.0),
                jitter: Some(10.0),
            },
            rule_files: Vec::new(),
            notes: Vec::new(),
        }],
    }
}

/// task-2 of configs/original-example.json as read: an iperf pair.
fn original_pair_task() -> Task {
    Task {
        task_id: "task-2".into(),
        frequency_s: 30,
        dialect: Dialect::Original,
        devices: vec![
            Device {
                device_id: "r2".into(),
                items: vec![
                    metrics(true, false, &["lo"], 30),
                    PlannedItem::IperfServer {
                        port: 5201,
                        duration_s: 10,
                        transport: Transport::Udp,
                        frequency_s: 30,
                        measures: ALL_IPERF,
                        address: None,
                    },
                ],
                conditions: AlertConditions {
                    cpu_usage: Some(80.0),
                    ..AlertConditions::default()
                },
                rule_files: Vec::new(),
                notes: Vec::new(),
            },
            Device {
                device_id: "r3".into(),
                items: vec![
                    metrics(true, true, &["lo"], 30),
                    // The client's server is the other device of the pair.
                    PlannedItem::IperfClient {
                        server: IperfTarget::Device("r2".into()),
                        port: 5201,
                        duration_s: 10,
                        transport: Transport::Udp,
                        rate_bps: 100_000_000,
                        frequency_s: 30,
                        measures: ALL_IPERF,
                    },
                ],
                conditions: AlertConditions {
                    cpu_usage: Some(80.0),
                    ram_usage: Some(90.0),
                    packet_loss: Some(5.0),
                    jitter: Some(10.0),
                    ..AlertConditions::default()
                },
                rule_files: Vec::new(),
                notes: Vec::new(),
            },
        ],
    }
}

#[test]
fn every_example_in_configs_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir("configs").expect("configs/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let tasks = load(&path.display().to_string());
            assert!(!tasks.is_empty(), "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} example files found");
}

#[test]
fn the_default_task_watches_the_local_agent_and_alerts_on_an_idle_machine() {
    let tasks = load("configs/default.json");
    assert_eq!(tasks.len(), 1);
    let device = tasks[0].device("local").expect("a device named local");
    assert!(device.items.contains(&metrics(true, true, &["lo"], 5)));
    assert!(device.items.contains(&PlannedItem::Ping {
        destination: "127.0.0.1".into(),
        packet_count: 3,
        interval_ms: 200,
        frequency_s: 5,
    }));
    // Any running machine uses more than 1% of its RAM.
    assert_eq!(device.conditions.ram_usage, Some(1.0));
}

#[test]
fn the_multi_agent_examples_use_r1_r2_r3() {
    for file in [
        "configs/assignment-example.json",
        "configs/original-example.json",
    ] {
        let mut ids: Vec<String> = load(file)
            .iter()
            .flat_map(|t| t.devices.iter().map(|d| d.device_id.clone()))
            .collect();
        ids.sort();
        assert_eq!(ids, ["r1", "r2", "r3"], "{file}");
    }
}

#[test]
fn assignments_fill_the_iperf_server_address_from_the_resolver() {
    let tasks = load("configs/assignment-example.json");
    // The registry may hold the agent's socket address; the port is not iperf's and is dropped.
    let work = tasks[0]
        .assignments(7, |device| {
            (device == "r2").then(|| "127.0.0.2:40123".to_owned())
        })
        .expect("r2 is known");
    let ids: Vec<&str> = work.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2", "r3"]);
    for (_, assignment) in &work {
        assert_eq!(assignment.task_number, 7);
        assert_eq!(assignment.task_id, "task-202");
        assert!(assignment.rules.is_empty());
    }
    let r3 = &work[2].1;
    assert!(r3.items.contains(&WorkItem::IperfClient {
        server_address: "127.0.0.2".into(),
        port: 5201,
        duration_s: 10,
        transport: Transport::Udp,
        rate_bps: 100_000_000,
        offset_ms: 0,
        frequency_s: 20,
    }));
    assert!(work[1].1.items.contains(&WorkItem::IperfServer {
        port: 5201,
        duration_s: 10,
        transport: Transport::Udp,
        frequency_s: 20,
    }));
    // The assignment carries the device's thresholds.
    assert_eq!(r3.conditions.packet_loss, Some(2.5));
    // Every assignment fits the wire format.
    for (_, assignment) in &work {
        let mut bytes = Vec::new();
        assignment.encode(&mut bytes);
        let decoded = nms::wire::TaskAssignment::decode(&mut nms::wire::codec::Reader::new(&bytes))
            .expect("decodes");
        assert_eq!(&decoded, assignment);
    }
}

#[test]
fn assignments_fail_when_the_iperf_server_has_not_registered() {
    let tasks = load("configs/original-example.json");
    let error = tasks[1].assignments(2, |_| None).unwrap_err();
    assert!(matches!(error, TaskError::ServerAddress { .. }));
    assert_eq!(
        error.to_string(),
        "task task-2: device r3 is the iperf client of device r2, whose address is not known \
         (has its agent registered?)"
    );
    let error = tasks[1]
        .assignments(2, |_| Some("-oops".into()))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "task task-2: device r3 is the iperf client of device r2, whose address \"-oops\" is not \
         a host name or IP address"
    );
    // A task without clients never asks.
    assert!(tasks[0].assignments(1, |_| panic!("not asked")).is_ok());
}

#[test]
fn syntax_error() {
    assert_eq!(
        error_of("bad-syntax.json"),
        "tests/fixtures/tasks/bad-syntax.json: [0] at 5:5: not valid JSON: expected `,` or `}`"
    );
}

#[test]
fn wrong_type() {
    assert_eq!(
        error_of("bad-type.json"),
        "tests/fixtures/tasks/bad-type.json: [0].devices[0].device_metrics.cpu_usage at 8:42: \
         invalid type: string \"yes\", expected a boolean"
    );
}

#[test]
fn unknown_field() {
    assert_eq!(
        error_of("bad-unknown-field.json"),
        "tests/fixtures/tasks/bad-unknown-field.json: [0].devices[0].link_metrics.latency.timeout \
         at 9:87: unknown field `timeout`, expected one of `tool`, `destination`, \
         `packet_count`, `frequency`, `interval`"
    );
}

#[test]
fn missing_field() {
    assert_eq!(
        error_of("bad-missing-field.json"),
        "tests/fixtures/tasks/bad-missing-field.json: [0].devices[0] at 6:7: missing field \
         `device_id`"
    );
}

#[test]
fn percentage_above_100() {
    assert_eq!(
        error_of("bad-percent.json"),
        "tests/fixtures/tasks/bad-percent.json: [0].devices[0].alertflow_conditions.cpu_usage \
         at 13:24: threshold 120 is not a percentage (0..=100)"
    );
}

#[test]
fn iperf_duration_not_shorter_than_its_frequency() {
    assert_eq!(
        error_of("bad-duration.json"),
        "tests/fixtures/tasks/bad-duration.json: devices[1].link_metrics.bandwidth.duration at \
         14:71: duration 20 s does not fit in the frequency of 20 s (a test must end before the \
         next one starts)"
    );
}

#[test]
fn two_servers_in_an_iperf_pair() {
    assert_eq!(
        error_of("bad-two-servers.json"),
        "tests/fixtures/tasks/bad-two-servers.json: \
         [0].devices[1].link_metrics.iperf_parameters.is_server at 15:65: both devices of the \
         iperf pair have \"is_server\": true; exactly one must"
    );
}

#[test]
fn empty_interface_list() {
    assert_eq!(
        error_of("bad-empty-interfaces.json"),
        "tests/fixtures/tasks/bad-empty-interfaces.json: \
         [0].devices[0].device_metrics.interface_stats at 8:67: the interface list is empty: \
         name the interfaces to watch (such as [\"eth0\"]) or leave interface_stats out"
    );
}

#[test]
fn destination_with_shell_metacharacters() {
    assert_eq!(
        error_of("bad-destination.json"),
        "tests/fixtures/tasks/bad-destination.json: \
         [0].devices[0].link_metrics.latency.destination at 11:28: destination \
         \"127.0.0.1; rm -rf /\" is not a host name or IP address (letters, digits, '-' and \
         '.', or an IP literal)"
    );
}

#[test]
fn duplicate_device() {
    assert_eq!(
        error_of("bad-duplicate-device.json"),
        "tests/fixtures/tasks/bad-duplicate-device.json: [0].devices[2].device_id at 8:22: \
         device \"r1\" appears twice in this task"
    );
}

#[test]
fn duplicate_task_id() {
    assert_eq!(
        error_of("bad-duplicate-task.json"),
        "tests/fixtures/tasks/bad-duplicate-task.json: [1].task_id at 3:16: task_id \"t1\" is \
         used by an earlier task of this file"
    );
}

#[test]
fn frequency_that_is_not_whole_seconds() {
    assert_eq!(
        error_of("bad-fractional-frequency.json"),
        "tests/fixtures/tasks/bad-fractional-frequency.json: [0].frequency at 4:18: frequency \
         2.5 is not a whole number of seconds"
    );
}

#[test]
fn iperf_client_without_a_server() {
    assert_eq!(
        error_of("bad-no-iperf-server.json"),
        "tests/fixtures/tasks/bad-no-iperf-server.json: [0].devices[0].link_metrics.jitter at \
         9:21: this iperf client has no server_address and no device of the task plays iperf \
         server"
    );
}

#[test]
fn two_dialects_in_one_file() {
    assert_eq!(
        error_of("bad-mixed-dialects.json"),
        "tests/fixtures/tasks/bad-mixed-dialects.json: [1].devices[0].link_metrics at 13:44: \
         this is the original dialect but [0].devices[0].link_metrics is the assignment \
         dialect; a task file holds tasks of one dialect"
    );
}

#[test]
fn threshold_on_a_figure_the_device_never_measures() {
    assert_eq!(
        error_of("bad-condition-never-fires.json"),
        "tests/fixtures/tasks/bad-condition-never-fires.json: \
         [0].devices[0].alertflow_conditions.ram_usage at 9:48: a ram_usage threshold can \
         never fire: device_metrics.ram_usage is not enabled"
    );
}

#[test]
fn unreadable_file() {
    let error = task::load(Path::new("tests/fixtures/tasks/no-such-file.json")).unwrap_err();
    assert!(matches!(error, TaskError::Read { .. }));
    assert!(
        error
            .to_string()
            .starts_with("tests/fixtures/tasks/no-such-file.json: cannot read the task file: "),
        "{error}"
    );
}

#[test]
fn the_readme_shows_a_real_error_message() {
    let readme = std::fs::read_to_string("configs/README.md").expect("configs/README.md");
    let message = error_of("bad-percent.json");
    let shown = message.replace("tests/fixtures/tasks/bad-percent.json", "configs/bad.json");
    assert!(
        readme.contains(&shown),
        "configs/README.md should show:\n{shown}"
    );
}

mod damaged_files {
    use super::*;
    use proptest::prelude::*;

    fn examples() -> Vec<String> {
        [
            "configs/assignment-example.json",
            "configs/original-example.json",
            "configs/default.json",
        ]
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("example exists"))
        .collect()
    }

    proptest! {
        /// Cutting, inserting or replacing bytes of a valid file never panics, and any error
        /// points inside the file.
        #[test]
        fn never_panic_and_errors_point_inside_the_file(
            which in 0usize..3,
            at in any::<prop::sample::Index>(),
            cut in 0usize..40,
            insert in "[\\[\\]{}\",:0-9a-z. -]{0,6}",
        ) {
            let text = &examples()[which];
            let start = at.index(text.len());
            let end = (start + cut).min(text.len());
            let damaged = format!("{}{}{}", &text[..start], insert, &text[end..]);
            if let Err(TaskError::Invalid { line, column, .. }) =
                task::parse("damaged.json", &damaged, Path::new("."))
            {
                let lines = damaged.lines().count().max(1);
                prop_assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}");
                prop_assert!(column >= 1);
            }
        }
    }
}

// ---- the original system's files, iperf plans, rates, numbers -------------------------------------

fn parse(text: &str) -> Result<Vec<Task>, String> {
    task::parse("t.json", text, Path::new(".")).map_err(|e| e.to_string())
}

fn parse_error(text: &str) -> String {
    match parse(text) {
        Ok(tasks) => panic!("should be refused, read {tasks:?}"),
        Err(e) => e,
    }
}

/// A one-device original-dialect ping task every `task_frequency` seconds.
fn original_ping(task_frequency: &str, packet_count: &str, frequency: &str) -> String {
    format!(
        r#"[{{"task_id": 1, "frequency": {task_frequency}, "devices": [{{"device_id": 3,
             "link_metrics": {{"ping_parameters": {{"enabled": true, "destination": "pc2",
                 "packet_count": {packet_count}, "frequency": {frequency}}}}}}}]}}]"#
    )
}

#[test]
fn the_original_systems_own_task_file_loads_as_that_system_ran_it() {
    // The original implementation's configs/tasks.json, its interface names changed to `lo`.
    let tasks = load("tests/fixtures/tasks/original-system.json");
    let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4"]);
    // ping_parameters.frequency is the interval between packets; the ping runs every task
    // frequency (30 s): `ping -c 5 -i 1 pc2`.
    let pinger = tasks[1].device("3").expect("device 3");
    assert!(pinger.items.contains(&PlannedItem::Ping {
        destination: "pc2".into(),
        packet_count: 5,
        interval_ms: 1000,
        frequency_s: 30,
    }));
    // `enabled: false` in a pair: the ping fields are not read; the pair is one TCP test.
    let client = tasks[0].device("4").expect("device 4");
    assert!(client.items.contains(&PlannedItem::IperfClient {
        server: IperfTarget::Device("3".into()),
        port: 5201,
        duration_s: 10,
        transport: Transport::Tcp,
        rate_bps: 0,
        frequency_s: 30,
        measures: IperfMetrics {
            bandwidth: true,
            jitter: false,
            packet_loss: false,
        },
    }));
    // Its jitter and packet-loss thresholds cannot fire over TCP: not used, and said so.
    assert_eq!(client.conditions.jitter, None);
    assert_eq!(client.conditions.cpu_usage, Some(90.0));
    assert_eq!(client.notes.len(), 2, "{:?}", client.notes);
    assert!(
        client.notes[0].starts_with(
            "alertflow_conditions.packet_loss (5) is not used: the device's iperf tests run \
             over TCP"
        ),
        "{:?}",
        client.notes
    );
    // jitter and packet_loss make the pair UDP, at the documented default rate.
    let udp = tasks[3].device("1").expect("device 1");
    assert!(udp.items.iter().any(|i| matches!(
        i,
        PlannedItem::IperfClient {
            transport: Transport::Udp,
            rate_bps: 100_000_000,
            ..
        }
    )));
    assert_eq!(udp.conditions.jitter, Some(55.0));
    // The two pairs share no agent: both tests start at the beginning of their periods.
    let plan = task::IperfPlan::build(&tasks);
    assert!(plan.unplaced.is_empty());
    assert!(plan.placed.iter().all(|p| p.offset_ms == 0), "{plan:?}");
}

#[test]
fn an_original_ping_must_fit_packet_count_times_frequency_in_the_task_frequency() {
    // The issue's case: 5 packets 1 s apart do not fit in 1 s...
    assert_eq!(
        parse_error(&original_ping("4", "5", "1")),
        "t.json: [0].devices[0].link_metrics.ping_parameters.packet_count at 3:34: \
         packet_count 5 × frequency 1 s = 5 s of pinging does not fit in the task's frequency \
         of 4 s (ping_parameters.frequency is the interval between packets, and packet_count × \
         frequency must not exceed the task's frequency)"
    );
    // ...but 5 × 1 s fit exactly in 5 s, as the original check allowed.
    assert!(parse(&original_ping("5", "5", "1")).is_ok());
    // Sub-second intervals, as ping allows them (0.002 s and up).
    let tasks = parse(&original_ping("2", "10", "0.1")).expect("10 × 0.1 s in 2 s");
    assert!(matches!(
        tasks[0].devices[0].items[..],
        [PlannedItem::Ping {
            interval_ms: 100,
            frequency_s: 2,
            ..
        }]
    ));
    assert_eq!(
        parse_error(&original_ping("2", "10", "0.001")),
        "t.json: [0].devices[0].link_metrics.ping_parameters.frequency at 3:51: frequency \
         0.001 s is too small: at least 0.002 s"
    );
    // Without a frequency, ping's own default interval of 1 s.
    let text = original_ping("10", "3", "1").replace(r#", "frequency": 1}"#, "}");
    let tasks = parse(&text).expect("valid");
    assert!(matches!(
        tasks[0].devices[0].items[..],
        [PlannedItem::Ping {
            interval_ms: 1000,
            ..
        }]
    ));
}

#[test]
fn an_assignment_ping_may_set_its_interval() {
    let text = |interval: &str, count: u32| {
        format!(
            r#"{{"task_id": "t", "frequency": 10, "devices": [{{"device_id": "r1",
                "link_metrics": {{"latency": {{"destination": "127.0.0.1",
                    "packet_count": {count}, "interval": {interval}}}}}}}]}}"#
        )
    };
    let tasks = parse(&text("0.5", 19)).expect("18 × 0.5 s + 1 s fit in 10 s");
    assert!(matches!(
        tasks[0].devices[0].items[..],
        [PlannedItem::Ping {
            interval_ms: 500,
            packet_count: 19,
            frequency_s: 10,
            ..
        }]
    ));
    assert_eq!(
        parse_error(&text("0.5", 20)),
        "t.json: devices[0].link_metrics.latency.packet_count at 3:37: packet_count 20 does not \
         fit in the frequency of 10 s (ping sends a packet every 0.5 s and the run must end \
         before the next one starts; at most 19 fit)"
    );
}

/// A course-style assignment file: r2 is iperf server for bandwidth over TCP and jitter and
/// packet loss over UDP, every entry carrying `server_address` as course files do.
const COURSE: &str = r#"{"task_id": "course", "frequency": 20, "devices": [
  {"device_id": "r2", "link_metrics": {
     "bandwidth": {"tool": "iperf", "role": "server", "server_address": "10.0.0.2", "duration": 5, "transport": "tcp"},
     "jitter": {"tool": "iperf", "role": "server", "server_address": "10.0.0.2", "duration": 5, "transport": "udp"},
     "packet_loss": {"tool": "iperf", "role": "server", "server_address": "10.0.0.2", "duration": 5, "transport": "udp"}}},
  {"device_id": "r3", "link_metrics": {
     "bandwidth": {"tool": "iperf", "role": "client", "server_address": "10.0.0.2", "duration": 5, "transport": "tcp"},
     "jitter": {"tool": "iperf", "role": "client", "server_address": "10.0.0.2", "duration": 5, "transport": "udp"},
     "packet_loss": {"tool": "iperf", "role": "client", "server_address": "10.0.0.2", "duration": 5, "transport": "udp"}},
   "alertflow_conditions": {"jitter": 5, "packet_loss": 1}}]}"#;

#[test]
fn a_course_file_gives_the_tcp_and_udp_tests_on_one_server_their_own_slots() {
    let tasks = parse(COURSE).expect("server entries may carry server_address");
    let work = tasks[0]
        .assignments(9, |_| None)
        .expect("no registry needed");
    let r3 = &work[1].1;
    let slots: Vec<(Transport, u64, u32)> = r3
        .items
        .iter()
        .filter_map(|i| match i {
            WorkItem::IperfClient {
                server_address,
                transport,
                rate_bps,
                offset_ms,
                ..
            } => {
                assert_eq!(server_address, "10.0.0.2");
                Some((*transport, *rate_bps, *offset_ms))
            }
            _ => None,
        })
        .collect();
    // One TCP test and one UDP test (jitter and packet loss share it), one after the other:
    // the second starts when the first's 6 s slot (5 s test + 1 s) is over.
    assert_eq!(
        slots,
        [(Transport::Tcp, 0, 0), (Transport::Udp, 100_000_000, 6000)]
    );
    // r2 listens; the address the file gives is checked against the one r2 registered from.
    assert!(
        tasks[0]
            .address_mismatch("r2", "10.0.0.2".parse().unwrap())
            .is_none()
    );
    assert_eq!(
        tasks[0].address_mismatch("r2", "10.0.0.7".parse().unwrap()),
        Some(
            "task course: the iperf server r2 is given server_address 10.0.0.2, but its agent \
             registered from 10.0.0.7; its clients connect to 10.0.0.2"
                .into()
        )
    );
}

#[test]
fn iperf_tests_that_cannot_all_fit_in_their_frequency_are_refused() {
    let crowded = COURSE
        .replace(r#""duration": 5"#, r#""duration": 12"#)
        .replace(r#""frequency": 20"#, r#""frequency": 25"#);
    assert_eq!(
        parse_error(&crowded),
        "t.json: devices[1].link_metrics at 6:39: the iperf test task course: r3 -> r2 port \
         5201 (udp, 12 s every 25 s) cannot be scheduled: no 13 s slot (the test and 1 s to set \
         up) is free in every 25 s period: r3 and r2 already use their time with task course: \
         r3 -> r2 port 5201 (tcp, 12 s every 25 s) at +0 s"
    );
}

#[test]
fn a_udp_test_offers_the_rate_the_file_gives() {
    let with_rate = COURSE.replace(
        r#""role": "client", "server_address": "10.0.0.2", "duration": 5, "transport": "udp"}"#,
        r#""role": "client", "server_address": "10.0.0.2", "duration": 5, "transport": "udp", "rate_mbps": 250}"#,
    );
    let tasks = parse(&with_rate).expect("valid");
    assert!(tasks[0].devices[1].items.iter().any(|i| matches!(
        i,
        PlannedItem::IperfClient {
            transport: Transport::Udp,
            rate_bps: 250_000_000,
            ..
        }
    )));
    let tcp_rate = COURSE.replace(
        r#""role": "client", "server_address": "10.0.0.2", "duration": 5, "transport": "tcp"}"#,
        r#""role": "client", "server_address": "10.0.0.2", "duration": 5, "transport": "tcp", "rate_mbps": 250}"#,
    );
    assert!(
        parse_error(&tcp_rate).ends_with(
            "rate_mbps sets the rate a UDP test offers; this entry runs over TCP, which sends as \
             fast as the link allows"
        ),
        "{}",
        parse_error(&tcp_rate)
    );
}

#[test]
fn a_threshold_that_cannot_fire_on_a_tcp_only_device_is_refused() {
    let text = r#"{"task_id": "t", "frequency": 20, "devices": [
      {"device_id": "r2", "link_metrics": {"bandwidth": {"role": "server", "duration": 5}}},
      {"device_id": "r3", "link_metrics": {"bandwidth": {"role": "client", "duration": 5}},
       "alertflow_conditions": {"jitter": 5}}]}"#;
    assert_eq!(
        parse_error(text),
        "t.json: devices[1].alertflow_conditions.jitter at 4:43: a jitter threshold can never \
         fire: the device's iperf tests run over TCP, which has no jitter (measure it over UDP, \
         or add a ping)"
    );
    let on_server = text.replace(
        r#""role": "server", "duration": 5}}},"#,
        r#""role": "server", "duration": 5}}, "alertflow_conditions": {"packet_loss": 5}},"#,
    );
    assert!(
        parse_error(&on_server).contains(
            "a packet_loss threshold can never fire: the device is only the iperf server of its \
             tests, whose figures its client reports"
        ),
        "{}",
        parse_error(&on_server)
    );
}

#[test]
fn numbers_too_large_say_so() {
    let ping = |count: &str| original_ping("30", count, "1");
    assert!(
        parse_error(&ping("100000000000000000000"))
            .ends_with("packet_count 1e+20 is too large: at most 1000"),
        "{}",
        parse_error(&ping("100000000000000000000"))
    );
    assert!(parse_error(&ping("1001")).ends_with("packet_count 1001 is too large: at most 1000"));
    assert!(parse_error(&ping("2.5")).ends_with("packet_count 2.5 is not a whole number"));
    let frequency = original_ping("1e30", "1", "1");
    assert!(
        parse_error(&frequency)
            .ends_with("frequency 1e+30 is too large: at most 86400 seconds (one day)"),
        "{}",
        parse_error(&frequency)
    );
    let port = COURSE.replacen(
        r#""transport": "tcp"}"#,
        r#""transport": "tcp", "port": 70000}"#,
        1,
    );
    assert!(
        parse_error(&port).ends_with("port 70000 is too large: at most 65535"),
        "{}",
        parse_error(&port)
    );
    let id = original_ping("30", "1", "1").replace(r#""device_id": 3"#, r#""device_id": 1e20"#);
    assert!(
        parse_error(&id).ends_with(
            "the number 100000000000000000000 is too large for an id (write it as a string)"
        ),
        "{}",
        parse_error(&id)
    );
}

#[test]
fn text_that_is_not_json_is_called_that() {
    assert_eq!(
        parse_error("hello, this is a note"),
        "t.json: top level at 1:1: this is not JSON (it begins \"hello, this is a note\"): a \
         task file is a JSON object or array of task objects"
    );
    assert_eq!(
        parse_error("  \n"),
        "t.json: top level at 2:1: the text is empty, not JSON: a task file is a JSON object or \
         array of task objects"
    );
}
