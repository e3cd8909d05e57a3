//! The status page in a real browser: a real server (with its local agent) and a second agent
//! process on loopback, the page at `/` loaded by headless Chromium. The page must list each agent
//! with drawn graphs, log nothing to the console (no script errors, no blocked external assets),
//! and render to a screenshot.
//!
//! Needs Chromium (Debian package `chromium`; `.ci/run` installs it). With
//! `NMS_REGENERATE_SCREENSHOT=1` the screenshot is written to `docs/status-page.png`.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Chromium binary: `NMS_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("NMS_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "this test needs Chromium and found none on the PATH: install it (`apt-get install chromium` \
         on Debian; .ci/run does) or name the binary in NMS_CHROMIUM"
    );
}

/// Runs headless Chromium on `url` with `extra` arguments, stopping it after `limit`.
fn run_chromium(
    browser: &Path,
    profile: &Path,
    url: &str,
    extra: &[String],
    limit: Duration,
) -> Output {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Read both pipes while Chromium runs, so that neither fills up and blocks it.
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// What the page logged to the browser console: every such line is a script error, a blocked
/// resource or a warning, since the page has no scripts of its own.
fn console_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("CONSOLE("))
        .map(str::to_string)
        .collect()
}

fn get_json(base: &str, path: &str) -> Option<Value> {
    smol::block_on(nms::client::get_json(base, path)).ok()
}

/// The `<section class="agent">` whose heading starts with `name`.
fn agent_section<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    dom.split(r#"<section class="agent""#)
        .skip(1)
        .map(|s| &s[..s.find("</section>").unwrap_or(s.len())])
        .find(|s| s.contains(&format!("<h2>{name}<")))
}

#[test]
fn the_status_page_shows_each_agent_with_graphs_in_headless_chromium() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("temp dir");
    let task = write_page_task(dir.path());
    let (server, nettask, base) = start_server(dir.path(), &task);
    let other = Running(
        Command::new(support::process::nms_binary())
            .args(["agent", "--server", &nettask, "--id", "other", "--data-dir"])
            .arg(dir.path().join("other"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nms agent"),
    );

    // Both agents have reported a few times: their graphs have lines to draw.
    let deadline = Instant::now() + Duration::from_secs(30);
    for agent in ["local", "other"] {
        loop {
            let reported = get_json(&base, &format!("/api/metrics?agent={agent}"))
                .and_then(|v| v.as_array().map(|a| a.len()))
                .unwrap_or(0);
            if reported >= 6 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{agent} stored only {reported} metrics reports in 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let profile = dir.path().join("chromium");
    let url = format!("{base}/");
    check_the_page_in_the_dom(&browser, &profile, &url);
    check_the_screenshot(&browser, &profile, &url, dir.path());
    drop(other);
    drop(server);
}

/// The task file of the page test: two agents with CPU, RAM and ping every 2 s.
fn write_page_task(dir: &Path) -> PathBuf {
    let task = dir.join("page-task.json");
    std::fs::write(
        &task,
        r#"{
  "task_id": "page-test",
  "frequency": 2,
  "devices": [
    {"device_id": "local",
     "device_metrics": {"cpu_usage": true, "ram_usage": true},
     "link_metrics": {"latency": {"tool": "ping", "destination": "127.0.0.1", "packet_count": 2, "frequency": 2}}},
    {"device_id": "other",
     "device_metrics": {"cpu_usage": true, "ram_usage": true},
     "link_metrics": {"latency": {"tool": "ping", "destination": "127.0.0.1", "packet_count": 2, "frequency": 2}}}
  ]
}"#,
    )
    .expect("write the task file");
    task
}

/// Starts `nms server` with its local agent on `task`; returns it, its NetTask address and its
/// HTTP base URL, read from the line where it says where it listens.
fn start_server(dir: &Path, task: &Path) -> (Running, String, String) {
    let mut server = Command::new(support::process::nms_binary())
        .args(["server", "--listen", "127.0.0.1", "--nettask-port", "0"])
        .args(["--alertflow-port", "0", "--http", "127.0.0.1:0"])
        .args(["--local-agent", "local", "--config"])
        .arg(task)
        .arg("--data-dir")
        .arg(dir.join("server"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nms server");
    let stderr = server.stderr.take().expect("piped stderr");
    let server = Running(server);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // "nms server: NetTask udp/127.0.0.1:P, AlertFlow tcp/127.0.0.1:P, HTTP http://127.0.0.1:P, ..."
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut said = Vec::new();
    let start = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("nms server: NetTask udp/") => break line,
            Ok(line) => said.push(line),
            Err(e) => panic!(
                "the server did not say where it listens ({e}); it said:\n{}",
                said.join("\n")
            ),
        }
    };
    let field = |prefix: &str| -> String {
        let rest = &start[start.find(prefix).expect(prefix) + prefix.len()..];
        rest[..rest.find(',').unwrap_or(rest.len())].to_string()
    };
    let nettask = field("NetTask udp/");
    let base = field("HTTP ");
    (server, nettask, base)
}

/// The page as Chromium builds it lists both agents up, each with its drawn graphs, and logs
/// nothing to the console.
fn check_the_page_in_the_dom(browser: &Path, profile: &Path, url: &str) {
    let loaded = run_chromium(
        browser,
        profile,
        url,
        &["--dump-dom".into()],
        Duration::from_secs(40),
    );
    assert!(
        loaded.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let dom = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        dom.contains("<h1>nms status</h1>"),
        "not the status page: {dom}"
    );
    assert!(dom.contains("<strong>2/2</strong> agents up"), "{dom}");
    for agent in ["local", "other"] {
        assert!(
            dom.contains(&format!(">{agent}</a>")),
            "{agent} is not in the agent table"
        );
        let section =
            agent_section(&dom, agent).unwrap_or_else(|| panic!("no section for {agent}: {dom}"));
        for graph in ["RTT to 127.0.0.1 (ms)", "CPU (%)", "RAM (%)"] {
            assert!(
                section.contains(graph),
                "{agent} has no {graph} graph: {section}"
            );
        }
        assert!(section.contains("<svg"), "{agent}: no SVG");
        assert!(
            section.contains(r#"<path class="band""#) && section.contains(r#"<path class="line""#),
            "{agent}: the graphs draw no data: {section}"
        );
    }
    let console = console_lines(&loaded.stderr);
    assert!(
        console.is_empty(),
        "the page logged to the console:\n{}",
        console.join("\n")
    );
}

/// The page renders to a 1280x1600 PNG without logging to the console.
fn check_the_screenshot(browser: &Path, profile: &Path, url: &str, dir: &Path) {
    let screenshot = if std::env::var_os("NMS_REGENERATE_SCREENSHOT").is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png")
    } else {
        dir.join("status-page.png")
    };
    let shot = run_chromium(
        browser,
        profile,
        url,
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,1600".into(),
        ],
        Duration::from_secs(40),
    );
    assert!(
        shot.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is a PNG"
    );
    // The IHDR chunk: width and height, big-endian, at bytes 16..24.
    let size = |at: usize| {
        png.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    assert_eq!((size(16), size(20)), (Some(1280), Some(1600)));
    assert!(
        console_lines(&shot.stderr).is_empty(),
        "the page logged to the console while rendering the screenshot"
    );
}
