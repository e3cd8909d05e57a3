//! What the fault tests read from and give to agents: what an agent logged under
//! `NMS_LOG_REPORTS=1` ([`AgentLog`]), a task file whose rule keeps alerts flowing
//! ([`write_task`]), and a key file ([`write_key`]).

use serde_json::Value;
use std::path::{Path, PathBuf};

/// What an agent logged: its reports, raised alerts, registration and tasks.
#[derive(Debug, Default, Clone)]
pub struct AgentLog {
    /// `(task, time_ms)` of each report, from `REPORT` lines.
    pub reports: Vec<(String, u64)>,
    /// Alert ids (16 hex digits) from `RAISED` lines.
    pub raised: Vec<String>,
    pub registered: bool,
    /// Task ids from `TASK` lines.
    pub tasks: Vec<String>,
}

impl AgentLog {
    /// Reads the lines `TIME LEVEL KIND TEXT...` the agent writes.
    pub fn parse(text: &str) -> AgentLog {
        let mut log = AgentLog::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [_, _, "REPORT", task, time] => {
                    if let Ok(t) = time.parse() {
                        log.reports.push((task.to_string(), t));
                    }
                }
                [_, _, "RAISED", id, ..] => log.raised.push(id.to_string()),
                [_, _, "REGISTERED", ..] => log.registered = true,
                [_, _, "TASK", task, ..] => log.tasks.push(task.to_string()),
                _ => {}
            }
        }
        log
    }

    /// The report times of one task.
    pub fn report_times(&self, task: &str) -> Vec<u64> {
        self.reports
            .iter()
            .filter(|(t, _)| t == task)
            .map(|(_, time)| *time)
            .collect()
    }
}

/// Writes a task file for `agents`: CPU and RAM every second, a RAM condition that fires at
/// once, and a rule (`flip.rhai`, written next to it) that raises an alert every other report,
/// so that alerts keep flowing during the run. Returns the task file's path.
pub fn write_task(dir: &Path, task_id: &str, agents: &[&str]) -> PathBuf {
    let rule = "// An alert on every other report (raised, resolved, raised...).\n\
                state.n = (state.n ?? 0) + 1;\n\
                if state.n % 2 == 0 && measured(cpu_percent) {\n    \
                    alert(\"cpu\", 0.0, cpu_percent, `report ${state.n}: every other report`);\n\
                }\n";
    std::fs::write(dir.join("flip.rhai"), rule).expect("write the rule file");
    let devices: Vec<Value> = agents
        .iter()
        .map(|a| {
            serde_json::json!({
                "device_id": a,
                "device_metrics": {"cpu_usage": true, "ram_usage": true},
                "alertflow_conditions": {"ram_usage": 1},
                "rules": ["flip.rhai"],
            })
        })
        .collect();
    let task = serde_json::json!({"task_id": task_id, "frequency": 1, "devices": devices});
    let path = dir.join(format!("{task_id}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&task).expect("task JSON"))
        .expect("write the task file");
    path
}

/// Writes a key file of 32 random bytes in hex.
pub fn write_key(path: &Path) -> PathBuf {
    let mut rng = fastrand::Rng::new();
    let key: String = (0..32).map(|_| format!("{:02x}", rng.u8(..))).collect();
    std::fs::write(path, key).expect("write the key file");
    path.to_path_buf()
}
