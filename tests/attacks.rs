//! The real server, tried as someone on the same network would: a small UDP and TCP attacker
//! (raw REGISTRATIONs and ALERT frames built with the wire module, idle and trickling
//! connections) against `nms server` processes on loopback. Each test is one attack from issue
//! 10 and checks what an operator would see: the API, the log, the stored data.

mod support;

use nms::wire::{
    Alert, AlertType, Body, Frame, FrameBody, Message, Packet, Registration, Severity,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;
use support::http::{http_request, http_request_as};
use support::sandbox::{Sandbox, Server};
use support::wait::{WAIT, wait_for};

/// A REGISTRATION of `name`, plain (no key).
fn registration(name: &str, instance: u64) -> Vec<u8> {
    Packet {
        keyed: false,
        agent_id: 0,
        body: Body::Reliable {
            seq: 0,
            message: Message::Registration(Registration {
                name: name.into(),
                instance,
                time_ms: nms::log::now_ms(),
                capabilities: 0,
                software: "attacker".into(),
            }),
        },
    }
    .encode(None)
}

/// Sends a REGISTRATION of `name` from a fresh socket and returns the agent id the server
/// answered with (or `None`).
fn register_raw(server: &Server, name: &str, instance: u64) -> Option<u32> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let to: SocketAddr = server.nettask_addr().parse().unwrap();
    for _ in 0..10 {
        socket.send_to(&registration(name, instance), to).unwrap();
        let mut buf = [0u8; 2048];
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && let Ok(p) = Packet::decode(&buf[..n], None)
        {
            return match p.body {
                Body::Reliable {
                    message: Message::Registered(_),
                    ..
                } => Some(p.agent_id),
                _ => None,
            };
        }
    }
    None
}

fn agent_names(server: &Server) -> Vec<String> {
    server
        .get("/api/agents")
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn writes_to_the_api_need_the_token_and_an_open_bind_needs_one_to_start() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(&[], &[]);
    let task = r#"{"task_id":"t1","frequency":5,"devices":[{"device_id":"a","device_metrics":{"cpu_usage":true}}]}"#;
    let addr = server.http_addr();
    let anonymous = http_request(addr, "POST", "/api/tasks", Some(task)).unwrap();
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let wrong = http_request_as(
        addr,
        Some("not-the-token-at-all"),
        "POST",
        "/api/tasks",
        Some(task),
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    assert_eq!(server.get("/api/status")["tasks"], 0, "nothing installed");
    assert_eq!(server.post("/api/tasks", task).status, 200);
    // Reads stay open on loopback.
    assert_eq!(server.get("/api/tasks").as_array().unwrap().len(), 1);

    // Forgetting an agent is a write too.
    assert_eq!(register_raw(&server, "old-host", 7), Some(1));
    let path = "/api/agents/old-host";
    assert_eq!(
        http_request(addr, "DELETE", path, None).unwrap().status,
        401
    );
    let out = std::process::Command::new(support::process::nms_binary())
        .args([
            "agents",
            "forget",
            "old-host",
            "--server",
            &format!("http://{addr}"),
        ])
        .arg("--api-token-file")
        .arg(server.data_dir.join("api-token"))
        .env_remove("NMS_API_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("forgot old-host (agent 1)"));
    assert!(agent_names(&server).is_empty());
    // A new registration of the name gets a new id: ids are never handed out twice.
    assert_eq!(register_raw(&server, "old-host", 8), Some(2));

    // On an address other hosts reach, the server does not start without a token.
    let port = support::ports::free_tcp_port();
    let out = std::process::Command::new(support::process::nms_binary())
        .args(["server", "--http", &format!("0.0.0.0:{port}")])
        .args([
            "--nettask-port",
            "0",
            "--alertflow-port",
            "0",
            "--listen",
            "127.0.0.1",
        ])
        .arg("--data-dir")
        .arg(sandbox.path().join("open"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--api-token-file") && stderr.contains("--insecure-api"),
        "{stderr}"
    );
}

#[test]
fn a_request_trickled_byte_by_byte_is_cut_at_the_deadline() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(&[], &[]);
    let mut stream = TcpStream::connect(server.http_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let request = b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for byte in request.iter().cycle().take(200) {
        if stream.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "one byte a second held the connection for 200 s");
    // The server answers others all along.
    assert_eq!(server.get("/api/status")["agents"], 0);
}

#[test]
fn a_flood_of_spoofed_registrations_is_capped_and_forgotten() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(
        &[],
        &["--max-agents", "5", "--forget-unreported-after-s", "1"],
    );
    let mut accepted = 0;
    for i in 0..20u64 {
        if register_raw(&server, &format!("spoof-{i}"), 100 + i).is_some() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 5, "the cap");
    assert!(
        server.get("/api/status")["new_agents_refused"]
            .as_u64()
            .unwrap()
            >= 15
    );
    // None of them ever sends anything: forgotten after the silence, without AGENT_DOWN.
    wait_for(WAIT, "the silent spoofed agents to be forgotten", || {
        agent_names(&server).is_empty().then_some(())
    });
    assert!(
        server.alerts().is_empty(),
        "no AGENT_DOWN for agents that never reported"
    );
    // And there is room again.
    assert!(register_raw(&server, "real-host", 1).is_some());
}

#[test]
fn names_with_control_characters_are_escaped_in_the_log() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(&[], &[]);
    let evil = "evil\u{1b}[31m\u{7}\r2026-01-01T00:00:00.000Z REGISTER   admin";
    assert!(register_raw(&server, evil, 42).is_some());
    let log = wait_for(WAIT, "the registration in the log", || {
        let log = sandbox.log(&server.name);
        log.contains("evil\\u{1b}[31m").then_some(log)
    });
    assert!(!log.contains('\u{1b}'), "a raw escape reached the log");
    assert!(!log.contains('\r'), "a raw carriage return reached the log");
    assert!(!log.contains('\u{7}'));
}

/// An ALERT frame from agent `agent_id` whose body names `name`.
fn alert_frame(agent_id: u32, name: &str, id: u64) -> Vec<u8> {
    Frame {
        keyed: false,
        agent_id,
        body: FrameBody::Alert(Alert {
            alert_id: id,
            resolves: 0,
            agent: name.into(),
            task: "t".into(),
            alert_type: AlertType::Cpu,
            severity: Severity::Critical,
            value: 99.0,
            threshold: 90.0,
            time_ms: nms::log::now_ms(),
            rule: "forged".into(),
            message: "forged".into(),
            subject: String::new(),
        }),
    }
    .encode(None)
}

/// Sends one frame on a new AlertFlow connection; whether an ALERT_ACK came back.
fn send_alert(server: &Server, frame: &[u8]) -> bool {
    let mut stream =
        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], server.ports.alertflow))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(frame).unwrap();
    let mut buf = [0u8; 26];
    stream.read_exact(&mut buf).is_ok() && buf[4] & 0x0f == 2
}

#[test]
fn an_alert_is_stored_under_the_sending_agent_and_one_naming_another_is_refused() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(&[], &[]);
    let r1 = register_raw(&server, "r1", 1).unwrap();
    register_raw(&server, "r2", 2).unwrap();
    // r1 claims to be r2: refused.
    assert!(!send_alert(&server, &alert_frame(r1, "r2", 0x1111)));
    // An id nobody registered: refused.
    assert!(!send_alert(&server, &alert_frame(999, "r1", 0x2222)));
    // Its own name (or none): stored under r1.
    assert!(send_alert(&server, &alert_frame(r1, "r1", 0x3333)));
    assert!(send_alert(&server, &alert_frame(r1, "", 0x4444)));
    let alerts = server.alerts();
    let agents: Vec<&str> = alerts
        .iter()
        .map(|a| a["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, vec!["r1", "r1"], "{alerts:?}");
    assert_eq!(
        server.get("/api/status")["alerts_refused"],
        1,
        "the one naming another agent"
    );
}

#[test]
fn with_per_agent_keys_a_name_without_one_is_refused() {
    let mut sandbox = Sandbox::new();
    let keys = sandbox.path().join("agent-keys");
    std::fs::write(&keys, "# name key\nr1 00112233445566778899aabbccddeeff\n").unwrap();
    let keys_arg = keys.display().to_string();
    let server = sandbox.start_server(&[], &["--keys-file", &keys_arg]);
    // An agent with a name the file does not have, unkeyed: never served.
    assert_eq!(register_raw(&server, "intruder", 5), None);
    assert_eq!(register_raw(&server, "intruder", 6), None);
    let status = server.get("/api/status");
    assert!(
        status["nettask"]["keyless_names"].as_u64().unwrap() >= 2,
        "{status}"
    );
    assert!(agent_names(&server).is_empty());
    // Nor can it raise an alert.
    assert!(!send_alert(&server, &alert_frame(1, "intruder", 0x5555)));
    let log = sandbox.log(&server.name);
    let lines = log
        .lines()
        .filter(|l| l.contains("REFUSED") && l.contains("intruder"))
        .count();
    assert_eq!(lines, 1, "one line per name per interval:\n{log}");
}

#[test]
fn posted_task_files_with_similar_ids_are_both_kept_across_a_restart() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(&[], &[]);
    for id in ["site.a", "site/a"] {
        let task = format!(
            r#"{{"task_id":"{id}","frequency":5,"devices":[{{"device_id":"a","device_metrics":{{"cpu_usage":true}}}}]}}"#
        );
        assert_eq!(server.post("/api/tasks", &task).status, 200);
    }
    sandbox.kill(&server.name);
    let server = sandbox.restart_server(&server);
    let mut ids: Vec<String> = server
        .get("/api/tasks")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["site.a", "site/a"]);
}

#[test]
fn a_registration_is_answered_only_once_the_registry_is_saved() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(&[], &[]);
    // The journal cannot be written (a directory is in its way), as when descriptors or the
    // disk run out.
    let journal = server.data_dir.join("agents.log");
    std::fs::create_dir(&journal).unwrap();
    assert_eq!(
        register_raw(&server, "r1", 1),
        None,
        "no id handed out unsaved"
    );
    wait_for(WAIT, "the failed save in the log", || {
        sandbox
            .log(&server.name)
            .contains("the agent registry was not saved")
            .then_some(())
    });
    // Writable again: the agent's next copy is answered, and the id survives a restart.
    std::fs::remove_dir(&journal).unwrap();
    assert_eq!(register_raw(&server, "r1", 1), Some(1));
    sandbox.kill(&server.name);
    let server = sandbox.restart_server(&server);
    assert_eq!(
        register_raw(&server, "r2", 2),
        Some(2),
        "id 1 is not given again"
    );
    assert_eq!(register_raw(&server, "r1", 3), Some(1));
}
