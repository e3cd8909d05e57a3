//! The end-to-end task files of `tests/fixtures/tasks-e2e/`, read as JSON, and a way to change
//! one field everywhere in them; plus small task files written for a test, and paths inside
//! the repository.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// A path inside the repository (`configs/default.json`).
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The folder of the end-to-end task files.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tasks-e2e")
}

/// Reads a fixture of `tests/fixtures/tasks-e2e/` as JSON.
pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sets every field named `key`, at any depth, to `value` (e.g. every iperf `port`).
pub fn set_everywhere(json: &mut Value, key: &str, value: &Value) {
    match json {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == key {
                    *v = value.clone();
                } else {
                    set_everywhere(v, key, value);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                set_everywhere(v, key, value);
            }
        }
        _ => {}
    }
}

/// A task file for `devices`: CPU, RAM and a ping of 127.0.0.1 every second, plus `rules`
/// (rule files) for each device.
pub fn every_second_task(task_id: &str, devices: &[&str], rules: &[&str]) -> String {
    let devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            serde_json::json!({
                "device_id": d,
                "device_metrics": {"cpu_usage": true, "ram_usage": true, "interface_stats": ["lo"]},
                "link_metrics": {
                    "latency": {"tool": "ping", "destination": "127.0.0.1", "packet_count": 1, "frequency": 1}
                },
                "rules": rules,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "task_id": task_id,
        "frequency": 1,
        "devices": devices,
    }))
    .expect("JSON")
}
