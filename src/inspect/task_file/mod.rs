//! `nms inspect --task FILE`: what a task file means, without a server. The file is validated
//! as the server would (`nms::task::load`); each device's measurements and thresholds are listed,
//! with the rhai each threshold compiles to and whether each hand-written rule file reads and
//! checks (`nms::rules::check`), and the iperf plan (when each iperf test runs), so a task can be
//! debugged before it is sent.
//!
//! This file checks the file and gives the check as JSON; `text` gives it as text.

mod text;

pub use text::{describe, render};

use crate::rules::{self, RuleSet};
use crate::send_task::read_rule_file;
use crate::task::{self, Device, IperfPlan, PlannedItem, Task, TaskError};
use crate::wire::RuleSource;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Where a rule of a device comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    /// A rule every agent runs without being asked (a watched interface going down).
    Builtin,
    /// A threshold of `alertflow_conditions`, compiled to rhai.
    Condition,
    /// A hand-written rule file.
    File(PathBuf),
}

/// One rule of a device and how it checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCheck {
    /// The name agents know the rule by: `condition:<field>`, or the rule file's name.
    pub name: String,
    pub origin: RuleOrigin,
    /// The rhai source, when it could be read.
    pub source: Option<String>,
    /// Why it cannot be used (unreadable, syntax error, fails its trial run), if so.
    pub problem: Option<String>,
}

/// One device's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCheck {
    pub device_id: String,
    pub rules: Vec<RuleCheck>,
    /// Why the rules cannot run together (two share a name), if so.
    pub problem: Option<String>,
}

/// One task of the file and the check of each of its devices.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCheck {
    pub task: Task,
    pub devices: Vec<DeviceCheck>,
}

/// The result of inspecting a task file.
#[derive(Debug)]
pub struct FileCheck {
    pub file: String,
    pub result: Result<Vec<TaskCheck>, TaskError>,
    /// When each iperf test of the file runs (empty when the file is invalid).
    pub plan: IperfPlan,
}

/// Loads and validates `path` and checks every rule of every device.
pub fn check_file(path: &Path) -> FileCheck {
    let loaded = task::load(path);
    let plan = match &loaded {
        Ok(tasks) => IperfPlan::build(tasks),
        Err(_) => IperfPlan::default(),
    };
    FileCheck {
        file: path.display().to_string(),
        result: loaded.map(|tasks| {
            tasks
                .into_iter()
                .map(|task| TaskCheck {
                    devices: task.devices.iter().map(check_device).collect(),
                    task,
                })
                .collect()
        }),
        plan,
    }
}

fn check_device(device: &Device) -> DeviceCheck {
    let interfaces = device.items.iter().any(
        |item| matches!(item, PlannedItem::MetricsGathering { interfaces, .. } if !interfaces.is_empty()),
    );
    let builtin = rules::builtin_rules(interfaces)
        .into_iter()
        .map(|rule| (rule, RuleOrigin::Builtin));
    let conditions = rules::compile_conditions(&device.conditions)
        .into_iter()
        .map(|rule| (rule, RuleOrigin::Condition));
    let mut checks: Vec<RuleCheck> = builtin
        .chain(conditions)
        .map(|(rule, origin)| RuleCheck {
            problem: rules::check(&rule.name, &rule.source)
                .err()
                .map(|e| e.to_string()),
            name: rule.name,
            origin,
            source: Some(rule.source),
        })
        .collect();
    for path in &device.rule_files {
        let shown = path.display().to_string();
        let (source, problem) = match read_rule_file(path) {
            Ok(source) => {
                let problem = rules::check(&shown, &source).err().map(|e| e.to_string());
                (Some(source), problem)
            }
            Err(e) => (None, Some(crate::log::error_chain(&e))),
        };
        checks.push(RuleCheck {
            // The server names a rule file's rule by its file name.
            name: path
                .file_name()
                .map_or(shown.clone(), |n| n.to_string_lossy().into_owned()),
            origin: RuleOrigin::File(path.clone()),
            source,
            problem,
        });
    }
    // Rules that check one by one must also load together, as the agent loads them.
    let problem = if checks.iter().all(|c| c.problem.is_none()) {
        let all: Vec<RuleSource> = checks
            .iter()
            .map(|c| RuleSource {
                name: c.name.clone(),
                source: c.source.clone().unwrap_or_default(),
            })
            .collect();
        RuleSet::compile(&all)
            .err()
            .map(|e| format!("device {}: {e}", device.device_id))
    } else {
        None
    };
    DeviceCheck {
        device_id: device.device_id.clone(),
        rules: checks,
        problem,
    }
}

impl FileCheck {
    /// Every reason the file cannot be sent, in order.
    pub fn problems(&self) -> Vec<String> {
        match &self.result {
            Err(e) => vec![e.to_string()],
            Ok(tasks) => tasks
                .iter()
                .flat_map(|t| &t.devices)
                .flat_map(|d| {
                    d.rules
                        .iter()
                        .filter_map(|r| r.problem.clone())
                        .chain(d.problem.clone())
                })
                .collect(),
        }
    }

    /// `{valid, error?, file, tasks: [task with, per device, its rules]}`.
    pub fn to_json(&self) -> Value {
        let problems = self.problems();
        let tasks: Vec<Value> = match &self.result {
            Err(_) => Vec::new(),
            Ok(tasks) => tasks.iter().map(task_json).collect(),
        };
        let mut out = json!({
            "valid": problems.is_empty(),
            "file": self.file,
            "tasks": tasks,
            "iperf_plan": self.plan,
        });
        if let Some(first) = problems.first() {
            out["error"] = json!(first);
        }
        out
    }
}

fn task_json(check: &TaskCheck) -> Value {
    let mut value = serde_json::to_value(&check.task).unwrap_or(Value::Null);
    if let Some(devices) = value.get_mut("devices").and_then(Value::as_array_mut) {
        for (device, device_check) in devices.iter_mut().zip(&check.devices) {
            let rules: Vec<Value> = device_check
                .rules
                .iter()
                .map(|r| {
                    let mut rule = json!({
                        "name": r.name,
                        "kind": match r.origin {
                            RuleOrigin::Builtin => "builtin",
                            RuleOrigin::Condition => "condition",
                            RuleOrigin::File(_) => "file",
                        },
                        "ok": r.problem.is_none(),
                        "source": r.source,
                    });
                    if let RuleOrigin::File(path) = &r.origin {
                        rule["path"] = json!(path.display().to_string());
                    }
                    if let Some(problem) = &r.problem {
                        rule["error"] = json!(problem);
                    }
                    rule
                })
                .collect();
            device["rules"] = json!(rules);
            if let Some(problem) = &device_check.problem {
                device["error"] = json!(problem);
            }
        }
    }
    value
}
