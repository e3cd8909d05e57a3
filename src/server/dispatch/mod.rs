//! The tasks a server has loaded and what each agent should be running.
//!
//! A task is installed from a file at start (`--config`) or posted through the HTTP API; its rule
//! files are read and checked before anything is dispatched. Each task id gets a number, stable
//! across restarts (`tasks.json`), that metrics reports use to name it. Posted tasks are kept in
//! `tasks/` in the data directory and installed again at start.
//!
//! The iperf runs of all loaded tasks are placed together ([`IperfPlan`]), in task-number order,
//! so that no two tests share an iperf server or an agent at once; installing a task plans
//! again, and says which devices' slots moved and which runs could not be placed.

use crate::persist::replace_json;
use crate::rules;
use crate::task::plan::Unplaced;
use crate::task::{self, IperfPlan, PlannedItem, Task, TaskError};
use crate::wire::{RuleSource, TaskAssignment};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod uploads;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("{path}: cannot read rule file: {source}")]
    RuleFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Rule(#[from] rules::RuleError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A parsed task with its rule files read and checked, per device id.
pub type CheckedTask = (Task, HashMap<String, Vec<RuleSource>>);

/// A task ready to dispatch.
#[derive(Debug, Clone)]
pub struct LoadedTask {
    pub task: Task,
    pub number: u32,
    /// Where it came from (a file path, or the HTTP API).
    pub origin: String,
    /// Rule files per device id, read and checked.
    pub rules: HashMap<String, Vec<RuleSource>>,
    /// Position of each device in `task.devices`, so finding an agent's device is one lookup
    /// however many devices the task has.
    device_index: HashMap<String, usize>,
}

impl LoadedTask {
    /// The device with this id.
    pub fn device(&self, device_id: &str) -> Option<&task::Device> {
        self.device_index
            .get(device_id)
            .and_then(|&i| self.task.devices.get(i))
    }
}

/// A task file's text and where its relative paths point: what `send-task` posts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskUpload {
    /// The file name shown in errors.
    pub origin: String,
    /// The folder that relative rule-file paths are resolved against.
    pub base_dir: String,
    /// The task file's JSON text.
    pub content: String,
    /// Rule files the task names, by resolved path, with their sources.
    #[serde(default)]
    pub rule_files: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Numbers {
    next: u32,
    numbers: BTreeMap<String, u32>,
}

#[derive(Debug)]
pub struct Dispatch {
    dir: PathBuf,
    numbers: Numbers,
    tasks: BTreeMap<String, Arc<LoadedTask>>,
    by_number: HashMap<u32, String>,
    /// Numbers of the tasks that name each device.
    by_device: HashMap<String, BTreeSet<u32>>,
    /// Task numbers each agent (by name) was sent.
    pub assigned: HashMap<String, BTreeSet<u32>>,
    /// Where every iperf run of every loaded task goes.
    plan: IperfPlan,
    /// What planning again after the installs so far changed, until taken.
    changes: PlanChanges,
}

/// What planning again changed.
#[derive(Debug, Default)]
pub struct PlanChanges {
    /// (task number, client device) whose iperf slots moved, appeared or went.
    pub moved: BTreeSet<(u32, String)>,
    /// Runs that cannot be placed now and could before (or are new).
    pub unplaced: Vec<Unplaced>,
}

impl Dispatch {
    pub fn open(data_dir: &Path) -> Result<Dispatch, LoadError> {
        let path = data_dir.join("tasks.json");
        let numbers = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LoadError::Io {
                path: path.clone(),
                source: e.into(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Numbers {
                next: 1,
                ..Numbers::default()
            },
            Err(source) => return Err(LoadError::Io { path, source }),
        };
        Ok(Dispatch {
            dir: data_dir.to_path_buf(),
            numbers,
            tasks: BTreeMap::new(),
            by_number: HashMap::new(),
            by_device: HashMap::new(),
            assigned: HashMap::new(),
            plan: IperfPlan::default(),
            changes: PlanChanges::default(),
        })
    }

    /// Reads and checks a task file and its rule files from disk.
    pub fn read_file(path: &Path) -> Result<Vec<CheckedTask>, LoadError> {
        let tasks = task::load(path)?;
        tasks
            .into_iter()
            .map(|t| {
                let rules = read_rules(&t, |p| {
                    std::fs::read_to_string(p).map_err(|source| LoadError::RuleFile {
                        path: p.to_path_buf(),
                        source,
                    })
                })?;
                Ok((t, rules))
            })
            .collect()
    }

    /// Parses and checks an upload (rule files come with it).
    pub fn read_upload(upload: &TaskUpload) -> Result<Vec<CheckedTask>, LoadError> {
        let tasks = task::parse(&upload.origin, &upload.content, Path::new(&upload.base_dir))?;
        tasks
            .into_iter()
            .map(|t| {
                let rules = read_rules(&t, |p| {
                    upload
                        .rule_files
                        .get(&p.display().to_string())
                        .cloned()
                        .ok_or_else(|| LoadError::RuleFile {
                            path: p.to_path_buf(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::NotFound,
                                "the task names this rule file, but it was not sent with the task \
                                 and is not on the server at that path (nms send-task sends the \
                                 rule files a task names, relative to the task file's folder)",
                            ),
                        })
                })?;
                Ok((t, rules))
            })
            .collect()
    }

    /// Installs (or replaces) a task; returns its number.
    pub fn install(
        &mut self,
        task: Task,
        rules: HashMap<String, Vec<RuleSource>>,
        origin: &str,
    ) -> Result<u32, LoadError> {
        let number = match self.numbers.numbers.get(&task.task_id) {
            Some(n) => *n,
            None => {
                let n = self.numbers.next.max(1);
                self.numbers.next = n + 1;
                self.numbers.numbers.insert(task.task_id.clone(), n);
                self.save_numbers()?;
                n
            }
        };
        self.by_number.insert(number, task.task_id.clone());
        let device_index: HashMap<String, usize> = task
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.device_id.clone(), i))
            .collect();
        for device in device_index.keys() {
            self.by_device
                .entry(device.clone())
                .or_default()
                .insert(number);
        }
        let replaced = self.tasks.insert(
            task.task_id.clone(),
            Arc::new(LoadedTask {
                task,
                number,
                origin: origin.to_string(),
                rules,
                device_index,
            }),
        );
        // Devices the new version of a task no longer names stop pointing at it.
        if let Some(old) = replaced {
            let current = &self.tasks[&old.task.task_id];
            for device in old.device_index.keys() {
                if current.device_index.contains_key(device) {
                    continue;
                }
                if let Some(numbers) = self.by_device.get_mut(device) {
                    numbers.remove(&number);
                    if numbers.is_empty() {
                        self.by_device.remove(device);
                    }
                }
            }
        }
        self.replan();
        Ok(number)
    }

    /// Places the iperf runs of every task again and records what changed.
    fn replan(&mut self) {
        let mut ordered: Vec<&LoadedTask> = self.tasks.values().map(|t| &**t).collect();
        ordered.sort_by_key(|t| t.number);
        let plan = IperfPlan::build(ordered.iter().map(|t| &t.task));
        let number_of = |task_id: &str| self.tasks.get(task_id).map(|t| t.number);
        let old: BTreeSet<_> = self
            .plan
            .placed
            .iter()
            .map(|p| (&p.run, p.offset_ms))
            .collect();
        let new: BTreeSet<_> = plan.placed.iter().map(|p| (&p.run, p.offset_ms)).collect();
        for (run, _) in old.symmetric_difference(&new) {
            if let Some(number) = number_of(&run.task_id) {
                self.changes.moved.insert((number, run.client.clone()));
            }
        }
        for unplaced in &plan.unplaced {
            if !self.plan.unplaced.contains(unplaced) {
                self.changes.unplaced.push(unplaced.clone());
            }
        }
        self.plan = plan;
    }

    /// What the installs since the last call changed in the iperf plan.
    pub fn take_plan_changes(&mut self) -> PlanChanges {
        std::mem::take(&mut self.changes)
    }

    /// Where every iperf run of every loaded task goes.
    pub fn plan(&self) -> &IperfPlan {
        &self.plan
    }

    /// Removes a task: it is no longer dispatched and reports naming its number are dropped
    /// (its number stays reserved for its id). Returns it, `None` when there is no such task.
    pub fn remove(&mut self, task_id: &str) -> Option<Arc<LoadedTask>> {
        let removed = self.tasks.remove(task_id)?;
        self.by_number.remove(&removed.number);
        for device in removed.device_index.keys() {
            if let Some(numbers) = self.by_device.get_mut(device) {
                numbers.remove(&removed.number);
                if numbers.is_empty() {
                    self.by_device.remove(device);
                }
            }
        }
        // Its iperf runs leave the plan: the others may move into their slots.
        self.replan();
        Some(removed)
    }

    fn save_numbers(&self) -> Result<(), LoadError> {
        let path = self.dir.join("tasks.json");
        replace_json(&path, &self.numbers).map_err(|source| LoadError::Io { path, source })
    }

    pub fn tasks(&self) -> impl Iterator<Item = &LoadedTask> {
        self.tasks.values().map(|t| &**t)
    }

    /// The tasks that name `device`, by number.
    pub fn tasks_of(&self, device: &str) -> Vec<Arc<LoadedTask>> {
        self.by_device
            .get(device)
            .into_iter()
            .flatten()
            .filter_map(|n| self.by_number.get(n))
            .filter_map(|id| self.tasks.get(id).cloned())
            .collect()
    }

    pub fn get(&self, task_id: &str) -> Option<&LoadedTask> {
        self.tasks.get(task_id).map(|t| &**t)
    }

    pub fn by_number(&self, number: u32) -> Option<&LoadedTask> {
        self.by_number
            .get(&number)
            .and_then(|id| self.tasks.get(id))
            .map(|t| &**t)
    }

    /// The assignment of `device` in `task`, if the task names it; `Err` when an iperf server's
    /// address is not known yet.
    pub fn assignment(
        &self,
        loaded: &LoadedTask,
        device: &str,
        resolve: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<TaskAssignment, TaskError>> {
        let d = loaded.device(device)?;
        Some(
            loaded
                .task
                .assignment(d, loaded.number, resolve, &self.plan)
                .map(|mut a| {
                    a.rules = loaded.rules.get(device).cloned().unwrap_or_default();
                    a
                }),
        )
    }

    /// The devices of a task whose iperf client connects to `server_device`.
    pub fn iperf_clients_of(loaded: &LoadedTask, server_device: &str) -> Vec<String> {
        loaded
            .task
            .devices
            .iter()
            .filter(|d| {
                d.items.iter().any(|i| {
                    matches!(i, PlannedItem::IperfClient { server: task::IperfTarget::Device(s), .. } if s == server_device)
                })
            })
            .map(|d| d.device_id.clone())
            .collect()
    }

    /// What a device's reports measure towards: its ping destination and iperf server.
    pub fn targets(&self, number: u32, device: &str) -> (Option<String>, Option<String>) {
        let Some(d) = self.by_number(number).and_then(|t| t.device(device)) else {
            return (None, None);
        };
        let mut ping = None;
        let mut iperf = None;
        for item in &d.items {
            match item {
                PlannedItem::Ping { destination, .. } => ping = Some(destination.clone()),
                PlannedItem::IperfClient { server, .. } => {
                    iperf = Some(match server {
                        task::IperfTarget::Address(a) => a.clone(),
                        task::IperfTarget::Device(d) => d.clone(),
                    })
                }
                _ => {}
            }
        }
        (ping, iperf)
    }

    /// Whether `target` is what one of the device's link measurements (ping, iperf, a probe)
    /// measures towards now.
    pub fn is_target(&self, number: u32, device: &str, target: &str) -> bool {
        let (ping, iperf) = self.targets(number, device);
        ping.as_deref() == Some(target)
            || iperf.as_deref() == Some(target)
            || crate::probes::PROBES
                .iter()
                .any(|p| self.probe_target(number, device, p.number).as_deref() == Some(target))
    }

    /// What the device's item of the probe numbered `probe` measures towards: its first host
    /// field (a DNS probe's `query`).
    pub fn probe_target(&self, number: u32, device: &str, probe: u8) -> Option<String> {
        let def = crate::probes::by_number(probe)?;
        let host = def
            .params
            .iter()
            .find(|p| matches!(p.kind, crate::probes::ParamKind::Host))?;
        let d = self.by_number(number)?.device(device)?;
        d.items.iter().find_map(|item| match item {
            PlannedItem::Probe(p) if p.probe == def.name => {
                crate::probes::probe::text(p, host.name).map(str::to_owned)
            }
            _ => None,
        })
    }
}

/// Reads and checks the rule files of every device of a task.
fn read_rules(
    task: &Task,
    read: impl Fn(&Path) -> Result<String, LoadError>,
) -> Result<HashMap<String, Vec<RuleSource>>, LoadError> {
    let mut out = HashMap::new();
    for device in &task.devices {
        let mut sources = Vec::new();
        for path in &device.rule_files {
            let source = read(path)?;
            let shown = path.display().to_string();
            rules::check(&shown, &source)?;
            let name = path
                .file_name()
                .map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
            sources.push(RuleSource { name, source });
        }
        // The conditions compile to rhai too; check them with the rule files so that a bad
        // threshold is reported before anything is dispatched.
        let mut all = rules::compile_conditions(&device.conditions);
        all.extend(sources.iter().cloned());
        rules::RuleSet::compile(&all)?;
        out.insert(device.device_id.clone(), sources);
    }
    Ok(out)
}
