//! An operator's day with a real `nms server` and agents on loopback, through the `nms`
//! subcommands: acknowledge an alert (shown in /api/alerts and on the page), silence an
//! agent (its alert leaves the page's firing list and comes back when the silence ends),
//! remove a posted task (its agent is sent CANCEL, its saved copy is deleted, nothing comes
//! back after a restart), a down agent stays one AGENT_DOWN across a restart, and forgetting an
//! agent resolves its alerts for good. Also: SIGTERM stops the server cleanly (exit 0, no ping
//! left behind), and a server started in-process stops when its signal says so.

mod support;

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::process::{NmsServer, Process, nms_binary};
use support::wait::wait_for_processes;

/// `nms ARGS --server URL --json` against the server; its JSON answer, or its error text.
fn nms_json(server: &NmsServer, dir: &Path, args: &[&str]) -> Result<Value, String> {
    let out = std::process::Command::new(nms_binary())
        .args(args)
        .args(["--server", &server.http, "--json"])
        .env("NMS_API_TOKEN", token(dir))
        .env("USER", "ops")
        .output()
        .expect("run nms");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("not JSON ({e})"))
}

fn token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server/api-token"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A task file for `devices` whose RAM threshold of 1% fires at once.
fn ram_task(task_id: &str, devices: &[&str]) -> String {
    let mut json: Value =
        serde_json::from_str(&support::fixtures::every_second_task(task_id, devices, &[])).unwrap();
    for d in json["devices"].as_array_mut().unwrap() {
        d["alertflow_conditions"] = serde_json::json!({"ram_usage": 1});
    }
    json.to_string()
}

/// The firing alerts of `agent` (of `kind`, when given).
fn firing(http: &str, agent: &str, kind: &str) -> Vec<Value> {
    support::http::get_json(http, &format!("/api/alerts?firing=true&agent={agent}"))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["kind"] == kind)
        .collect()
}

/// The stored AGENT_DOWN alerts of `agent`.
fn agent_downs(http: &str, agent: &str) -> usize {
    support::http::get_json(http, &format!("/api/alerts?agent={agent}"))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|a| a["kind"] == "agent_down")
        .count()
}

#[test]
fn acknowledge_silence_remove_and_forget_leave_nothing_behind_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().join("base.json");
    std::fs::write(
        &base,
        support::fixtures::every_second_task("base", &["edge"], &[]),
    )
    .unwrap();
    let args = [
        "--config",
        base.to_str().unwrap(),
        "--heartbeat-ms",
        "200",
        "--missed-heartbeats",
        "5",
    ];
    let mut server = NmsServer::start(dir.path(), &args);
    let mut agent = server.agent(dir.path(), "edge");
    let id = post_a_task_whose_alert_fires(&mut server, &mut agent, dir.path());
    acknowledge_the_alert(&server, dir.path(), &id);
    silence_the_agent_until_the_alert_is_back(&mut server, &mut agent, dir.path(), &id);
    remove_the_posted_task(&mut server, &mut agent, dir.path());

    // The agent dies: one AGENT_DOWN, and still one after the server restarts.
    agent.kill();
    let http = server.http.clone();
    wait_for_processes(
        "AGENT_DOWN for the killed agent",
        Duration::from_secs(30),
        &mut [&mut server.process],
        || (!firing(&http, "edge", "agent_down").is_empty()).then_some(()),
    );
    server.process.kill();
    let mut server = NmsServer::start(dir.path(), &args);
    check_one_agent_down_after_the_restart(&mut server);

    // Forget it: its alerts are resolved, and stay so after another restart.
    let forgot = nms_json(&server, dir.path(), &["agents", "forget", "edge"]).unwrap();
    assert_eq!(forgot["forgotten"], "edge");
    assert!(firing(&server.http, "edge", "agent_down").is_empty());
    server.process.kill();
    let server = NmsServer::start(dir.path(), &args);
    check_forgotten_after_the_restart(&server, dir.path());
}

/// A task posted over the API (as nms send-task does), with an alert that fires at once;
/// returns the id of that alert once it fires.
fn post_a_task_whose_alert_fires(
    server: &mut NmsServer,
    agent: &mut Process,
    dir: &Path,
) -> String {
    let http = server.http.clone();
    let posted = dir.join("posted.json");
    std::fs::write(&posted, ram_task("posted", &["edge"])).unwrap();
    let sent = std::process::Command::new(nms_binary())
        .args([
            "send-task",
            posted.to_str().unwrap(),
            "--server",
            &server.http,
        ])
        .env("NMS_API_TOKEN", token(dir))
        .output()
        .expect("nms send-task");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let alert = wait_for_processes(
        "the posted task's RAM alert firing",
        Duration::from_secs(30),
        &mut [&mut server.process, agent],
        || firing(&http, "edge", "ram").into_iter().next(),
    );
    alert["alert_id"].as_str().unwrap().to_string()
}

/// Acknowledge it: who and why show in `nms alerts list` and on the page; a bad id is refused.
fn acknowledge_the_alert(server: &NmsServer, dir: &Path, id: &str) {
    let acked = nms_json(
        server,
        dir,
        &["alerts", "ack", id, "--comment", "replacing RAM"],
    )
    .expect("nms alerts ack");
    assert_eq!(acked["acknowledged"]["by"], "ops", "{acked}");
    let listed = nms_json(server, dir, &["alerts", "list", "--firing"]).unwrap();
    let shown = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alert_id"] == id)
        .cloned()
        .expect("the alert in nms alerts list --firing");
    assert_eq!(shown["acknowledged"]["comment"], "replacing RAM");
    let page = support::http::get_text(&server.http, "/").unwrap();
    assert!(
        page.contains("ops</span>: replacing RAM"),
        "the page shows who acknowledged"
    );
    let bad = nms_json(server, dir, &["alerts", "ack", "zz"]).unwrap_err();
    assert!(bad.contains("not an alert id"), "{bad}");
}

/// Silence the agent: the alert leaves the page's firing list, and comes back after.
fn silence_the_agent_until_the_alert_is_back(
    server: &mut NmsServer,
    agent: &mut Process,
    dir: &Path,
    id: &str,
) {
    let http = server.http.clone();
    let silence = nms_json(
        server,
        dir,
        &[
            "alerts",
            "silence",
            "--agent",
            "edge",
            "--duration",
            "4s",
            "--comment",
            "swap",
        ],
    )
    .expect("nms alerts silence");
    let silence_id = silence["id"].as_str().unwrap().to_string();
    let page = support::http::get_text(&server.http, "/").unwrap();
    let firing_section = page.split("<h2>Firing</h2>").nth(1).unwrap_or_default();
    let firing_section = firing_section
        .split("</section>")
        .next()
        .unwrap_or_default();
    assert!(
        !firing_section.contains(id),
        "a silenced alert in the firing list"
    );
    assert!(
        page.contains("agent=edge") && page.contains(&silence_id),
        "silence not shown"
    );
    let silences = nms_json(server, dir, &["alerts", "silences"]).unwrap();
    assert_eq!(silences[0]["state"], "active", "{silences}");
    wait_for_processes(
        "the alert back in the page's firing list after the silence",
        Duration::from_secs(30),
        &mut [&mut server.process, agent],
        || {
            let page = support::http::get_text(&http, "/")?;
            let section = page
                .split("<h2>Firing</h2>")
                .nth(1)?
                .split("</section>")
                .next()?;
            section.contains(id).then_some(())
        },
    );
    let bad = nms_json(server, dir, &["alerts", "silence", "--duration", "1h"]);
    assert!(bad.unwrap_err().contains("--agent, --task and/or --kind"));
}

/// Remove the posted task: CANCEL reaches the agent, its alert is resolved, its saved copy
/// is gone; a task from a --config file is refused.
fn remove_the_posted_task(server: &mut NmsServer, agent: &mut Process, dir: &Path) {
    let http = server.http.clone();
    let agent_log = agent.log.clone();
    let removed = nms_json(server, dir, &["tasks", "remove", "posted"]).unwrap();
    assert_eq!(removed["removed"]["cancelled"][0], "edge", "{removed}");
    wait_for_processes(
        "the agent told to cancel the task",
        Duration::from_secs(30),
        &mut [&mut server.process, agent],
        || {
            std::fs::read_to_string(&agent_log)
                .ok()?
                .contains("CANCELLED")
                .then_some(())
        },
    );
    assert!(
        firing(&http, "edge", "ram").is_empty(),
        "the removed task's alert fires on"
    );
    let saved: Vec<_> = std::fs::read_dir(dir.join("server/tasks"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(
        saved.is_empty(),
        "the posted task is still saved: {saved:?}"
    );
    let refused = nms_json(server, dir, &["tasks", "remove", "base"]).unwrap_err();
    assert!(refused.contains("task file"), "{refused}");
}

/// After the restart the dead agent is judged down again, the removed task has not come back,
/// and there is still only the one AGENT_DOWN.
fn check_one_agent_down_after_the_restart(server: &mut NmsServer) {
    let http = server.http.clone();
    // Long enough for liveness to have judged the agent (5 missed heartbeats of 200 ms),
    // measured by the server's own log rather than a clock: its next AGENT_DOWN would be logged.
    wait_for_processes(
        "the restarted server's liveness pass",
        Duration::from_secs(30),
        &mut [&mut server.process],
        || {
            let up = support::http::get_json(&http, "/api/agents")?;
            (up[0]["status"] == "down").then_some(())
        },
    );
    let tasks = support::http::get_json(&server.http, "/api/tasks").unwrap();
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["task_id"] != "posted"),
        "the removed task came back: {tasks}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        agent_downs(&http, "edge"),
        1,
        "a second AGENT_DOWN after the restart"
    );
    assert!(!server.process.output().contains("DOWN       edge"));
}

/// After another restart the forgotten agent is not listed and none of its alerts fire.
fn check_forgotten_after_the_restart(server: &NmsServer, dir: &Path) {
    let http = server.http.clone();
    let agents = nms_json(server, dir, &["agents", "list"]).unwrap();
    assert_eq!(agents, serde_json::json!([]), "the forgotten agent is back");
    let all = support::http::get_json(&http, "/api/alerts?firing=true").unwrap();
    assert_eq!(
        all,
        serde_json::json!([]),
        "alerts of a forgotten agent fire on"
    );
    // The base task still names it: if it comes back, it gets its task again.
    let tasks = nms_json(server, dir, &["tasks", "list"]).unwrap();
    assert_eq!(tasks[0]["devices"][0]["device_id"], "edge");
}

/// The pids of the processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: the comm may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

#[test]
fn sigterm_stops_the_server_cleanly_and_leaves_no_probe_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Pings that last a few seconds each, so that one runs when the signal comes.
    let mut task: Value = serde_json::from_str(&support::fixtures::every_second_task(
        "term",
        &["local"],
        &[],
    ))
    .unwrap();
    task["devices"][0]["link_metrics"]["latency"]["packet_count"] = 20.into();
    task["devices"][0]["link_metrics"]["latency"]["frequency"] = 30.into();
    let file = dir.path().join("term.json");
    std::fs::write(&file, task.to_string()).unwrap();
    let mut server = NmsServer::start(
        dir.path(),
        &["--config", file.to_str().unwrap(), "--local-agent", "local"],
    );
    let pid = server.process.id();
    let pings = wait_for_processes(
        "a ping running under the local agent",
        Duration::from_secs(30),
        &mut [&mut server.process],
        || {
            let kids = children(pid);
            (!kids.is_empty()).then_some(kids)
        },
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = wait_for_processes(
        "the server to exit after SIGTERM",
        Duration::from_secs(30),
        &mut [],
        || server.process.try_wait(),
    );
    assert!(
        exit.success(),
        "exit status {exit}:\n{}",
        server.process.output()
    );
    let log = server.process.output();
    assert!(log.contains("stopped cleanly"), "{log}");
    for ping in pings {
        let state = std::fs::read_to_string(format!("/proc/{ping}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z "),
            "ping {ping} still runs after the server stopped: {state}"
        );
    }
    // The store was closed cleanly: it opens again and has what was reported.
    let store = nms::store::Store::open(
        &dir.path().join("server"),
        nms::store::StoreOptions {
            background: false,
            ..Default::default()
        },
    )
    .expect("the store opens after a clean stop");
    drop(store);
}

#[test]
fn a_server_started_in_process_stops_when_its_signal_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = nms::server::ServerOptions {
        task_files: Vec::new(),
        listen: "127.0.0.1".parse().unwrap(),
        nettask_port: 0,
        alertflow_port: 0,
        advertise_alertflow_port: None,
        http: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        keys: nms::nettask::Keys::default(),
        heartbeat: Duration::from_secs(1),
        missed_heartbeats: 5,
        initial_timeout: Duration::from_millis(200),
        max_retransmissions: 3,
        local_agent: None,
        verbose: false,
        alertmanagers: Vec::new(),
        remote_writes: Vec::new(),
        peers: Vec::new(),
        external_url: None,
        store: nms::store::StoreOptions::default(),
        max_agents: 100,
        new_agents_per_second: 50,
        forget_unreported_after: Duration::from_secs(3600),
        api: nms::server::http::ApiAccess {
            token: Some("an-in-process-test-token".into()),
            public_read: true,
        },
    };
    smol::block_on(async {
        let listeners = nms::server::Listeners::bind(&options).await.expect("bind");
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let running = nms::server::run(options, listeners, async move {
            let _ = stopped.recv().await;
        })
        .await
        .expect("start");
        let http = format!("http://{}", running.bound.http);
        let healthy = nms::client::get_text(&http, "/-/healthy")
            .await
            .expect("healthy");
        assert_eq!(healthy, "nms is Healthy.\n");
        let ready = nms::client::get_text(&http, "/-/ready")
            .await
            .expect("ready");
        assert_eq!(ready, "nms is Ready.\n");
        assert!(running.shared().is_some());
        stop.close();
        running.stopped().await.expect("a clean stop");
        assert!(
            nms::client::get_text(&http, "/-/healthy").await.is_err(),
            "still answering after it stopped"
        );
    });
}
