//! The HTTP API answers bad requests with a 4xx status and a JSON error that says what is wrong,
//! and a refused request changes nothing on the server.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::http::http_request_as;
use support::sandbox::Sandbox;

fn error_of(response: &support::http::HttpResponse) -> String {
    response.json()["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error in {:?}", response.body))
        .to_string()
}

/// Bad requests that a well-formed HTTP client can send: (method, path, body, the status and
/// a part of the JSON error they get).
const BAD_REQUESTS: [(&str, &str, Option<&str>, u16, &str); 9] = [
    (
        "GET",
        "/api/nothing",
        None,
        404,
        "no such endpoint: /api/nothing",
    ),
    (
        "DELETE",
        "/api/agents",
        None,
        405,
        "DELETE is not allowed on /api/agents",
    ),
    (
        "GET",
        "/api/alerts?limit=many",
        None,
        400,
        "limit=many: not a non-negative integer",
    ),
    (
        "GET",
        "/api/metrics?agent=r1&since=yesterday",
        None,
        400,
        "since=yesterday: not a time",
    ),
    (
        "GET",
        "/api/metrics?colour=blue",
        None,
        400,
        "unknown query parameter \"colour\"",
    ),
    (
        "POST",
        "/api/tasks",
        Some("{\"task_id\": "),
        400,
        "request body: ",
    ),
    (
        "POST",
        "/api/tasks",
        Some("task_id=t1&frequency=5"),
        400,
        "request body: top level at 1:1: this is not JSON (it begins \"task_id=t1&frequency=5\")",
    ),
    (
        "POST",
        "/api/tasks",
        Some(
            r#"{"task_id":"t","frequency":5,"devices":[{"device_id":"a","device_metrics":{"cpu_usage":true},"alertflow_conditions":{"cpu_usage":120}}]}"#,
        ),
        400,
        "request body: devices[0].alertflow_conditions.cpu_usage at 1:",
    ),
    (
        "POST",
        "/api/tasks",
        Some(
            r#"{"task_id":"t","frequency":5,"devices":[{"device_id":"a","device_metrics":{"cpu_usage":true},"colour":1}]}"#,
        ),
        400,
        "unknown field",
    ),
];

#[test]
fn bad_requests_get_a_4xx_and_a_json_error_and_change_nothing() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(&[], &[]);
    let addr = server.http_addr();
    let tasks_before = server.get("/api/tasks");

    let token = server.token();
    for (method, path, body, status, message) in BAD_REQUESTS {
        let response =
            http_request_as(addr, Some(&token), method, path, body).expect("the server answers");
        assert_eq!(
            response.status, status,
            "{method} {path}: {:?}",
            response.body
        );
        let error = error_of(&response);
        assert!(
            error.contains(message),
            "{method} {path}: {error:?} lacks {message:?}"
        );
    }
    check_an_oversized_body_is_refused_unread(addr, &token);
    check_requests_that_are_not_http_get_a_json_error(addr);

    assert_eq!(
        server.get("/api/tasks"),
        tasks_before,
        "nothing was installed"
    );
    assert_eq!(server.get("/api/status")["tasks"], 0);
}

/// A body larger than the limit is refused before it is read.
fn check_an_oversized_body_is_refused_unread(addr: SocketAddr, token: &str) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /api/tasks HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("exceeds the limit of 1048576 bytes"),
        "{text}"
    );
}

/// A request that is not HTTP, or whose target or head is too large, gets a JSON error too.
fn check_requests_that_are_not_http_get_a_json_error(addr: SocketAddr) {
    let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(10_000));
    let big_head = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000));
    for (request, status, message) in [
        (
            &b"\x00\x01 garbage\r\n\r\n"[..],
            "400",
            "malformed HTTP request",
        ),
        (
            long_target.as_bytes(),
            "414",
            "request target longer than 8192 bytes",
        ),
        (
            big_head.as_bytes(),
            "431",
            "request head larger than 65536 bytes",
        ),
    ] {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let _ = stream.write_all(request);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert!(
            json["error"].as_str().is_some_and(|e| e.contains(message)),
            "{json}"
        );
    }
}

#[test]
fn a_bad_rule_file_is_refused_with_its_name_and_position() {
    let mut sandbox = Sandbox::new();
    let server = sandbox.start_server(&[], &[]);
    let upload = serde_json::json!({
        "origin": "tasks/cpu.json",
        "base_dir": "tasks",
        "content": r#"{"task_id":"t","frequency":5,"devices":[{"device_id":"a","device_metrics":{"cpu_usage":true},"rules":["hot.rhai"]}]}"#,
        "rule_files": { "tasks/hot.rhai": "if cpu_percent > 90.0 {\n  alert(\"cpu\", 90.0, cpu_percent, \"hot\"\n}\n" },
    });
    let response = server.post("/api/tasks", &upload.to_string());
    assert_eq!(response.status, 400, "{:?}", response.body);
    let error = error_of(&response);
    assert!(error.starts_with("tasks/hot.rhai:"), "{error}");
    assert!(error.contains("syntax error"), "{error}");
    assert_eq!(server.get("/api/status")["tasks"], 0);
}
