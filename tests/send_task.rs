//! `nms send-task` as a user runs it, against a stand-in for the server: a raw TCP listener on
//! 127.0.0.1:0 that records the request and answers a canned response. Checks what is posted
//! (the file's text and its rule sources), what is printed, and the errors a user meets: a bad
//! rule file (caught before anything is sent), a refused upload, and no server at all.

mod support;

use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::Output;
use std::sync::mpsc;
use support::fake_http::Request;
use support::fixtures::repo;
use support::process::nms_output;

/// Answers every request with `status` and `answer`.
fn fake_server(status: &'static str, answer: Value) -> (String, mpsc::Receiver<Request>) {
    support::fake_http::serve(move |_| (status, answer.clone()))
}

/// A folder holding `tasks/ping.json`, which names the rule file `rules/<rule>` beside it.
fn task_folder(rule_source: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::create_dir_all(dir.path().join("tasks/rules")).expect("mkdir");
    std::fs::write(dir.path().join("tasks/rules/spike.rhai"), rule_source).expect("write rule");
    let text = r#"{
  "task_id": "task-1",
  "frequency": 5,
  "devices": [
    {"device_id": "r1",
     "link_metrics": {"latency": {"tool": "ping", "destination": "127.0.0.1", "packet_count": 3}},
     "rules": ["rules/spike.rhai"]},
    {"device_id": "r3", "device_metrics": {"cpu_usage": true}}
  ]
}
"#;
    std::fs::write(dir.path().join("tasks/ping.json"), text).expect("write task");
    (dir, text.to_string())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_upload_carries_the_file_and_its_rules_and_the_answer_is_shown_per_device() {
    let rule = std::fs::read_to_string(repo("rules/latency_spike.rhai")).expect("shipped rule");
    let (dir, text) = task_folder(&rule);
    let answer = json!({"tasks": [{
    "task_id": "task-1", "number": 3, "cancelled": [],
    "devices": [
        {"device": "r1", "status": "sent", "agent_id": 1, "items": ["ping 127.0.0.1 x3 every 5s"]},
        {"device": "r3", "status": "waiting", "agent_id": null, "items": ["cpu every 5s"],
         "reason": "not connected; gets the task when it registers"}
    ]}]});
    let (url, received) = fake_server("200 OK", answer.clone());
    let output = nms_output(
        dir.path(),
        &["send-task", "tasks/ping.json", "--server", &url],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));

    let request = received.recv().expect("the server got a request");
    assert!(
        request.head.starts_with("POST /api/tasks HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    let upload: Value = serde_json::from_slice(&request.body).expect("the body is JSON");
    assert_eq!(upload["origin"], "tasks/ping.json");
    assert_eq!(upload["base_dir"], "tasks");
    assert_eq!(upload["content"], text.as_str());
    assert_eq!(
        upload["rule_files"],
        json!({"tasks/rules/spike.rhai": rule})
    );

    let shown = stdout(&output);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines,
        [
            "task-1 (#3)",
            "  r1  sent     ping 127.0.0.1 x3 every 5s",
            "  r3  waiting  (not connected; gets the task when it registers)",
            "               cpu every 5s",
        ]
    );

    // --json prints the server's answer as it came.
    let (url, _received) = fake_server("200 OK", answer.clone());
    let output = nms_output(
        dir.path(),
        &["send-task", "--json", "tasks/ping.json", "--server", &url],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let printed: Value = serde_json::from_str(&stdout(&output)).expect("--json prints JSON");
    assert_eq!(printed, answer);
}

#[test]
fn a_bad_rule_file_is_reported_with_its_line_and_column_before_anything_is_sent() {
    let bad =
        std::fs::read_to_string(repo("tests/fixtures/rules/bad_syntax.rhai")).expect("fixture");
    let (dir, _) = task_folder(&bad);
    let (url, received) = fake_server("200 OK", json!({"tasks": []}));
    let output = nms_output(
        dir.path(),
        &["send-task", "tasks/ping.json", "--server", &url],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.starts_with("nms: tasks/rules/spike.rhai:3:"),
        "{error}"
    );
    assert!(error.contains("syntax error"), "{error}");
    assert!(
        received.try_recv().is_err(),
        "nothing should have been posted"
    );
}

#[test]
fn an_invalid_task_file_names_the_file_path_and_position() {
    let output = nms_output(
        &repo("."),
        &[
            "send-task",
            "tests/fixtures/tasks/bad-percent.json",
            "--server",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.starts_with(
            "nms: tests/fixtures/tasks/bad-percent.json: [0].devices[0].alertflow_conditions.cpu_usage at 13:24:"
        ),
        "{error}"
    );
}

#[test]
fn a_refused_upload_shows_the_servers_message() {
    let (dir, _) = task_folder("");
    let (url, _received) = fake_server(
        "400 Bad Request",
        json!({"error": "task-1 is already installed from another origin"}),
    );
    let output = nms_output(
        dir.path(),
        &["send-task", "tasks/ping.json", "--server", &url],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.contains("400"), "{error}");
    assert!(
        error.contains("task-1 is already installed from another origin"),
        "{error}"
    );
}

#[test]
fn no_server_listening_is_a_clear_error() {
    let (dir, _) = task_folder("");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = nms_output(
        dir.path(),
        &["send-task", "tasks/ping.json", "--server", &url],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.starts_with(&format!("nms: cannot connect to 127.0.0.1:{port}")),
        "{error}"
    );
    assert!(
        error.contains("is `nms server` running? (--server URL)"),
        "{error}"
    );
    assert!(stdout(&output).is_empty());
}
