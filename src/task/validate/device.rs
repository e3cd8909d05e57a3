//! The parts of a task both dialects share: its header (id, frequency, how many devices), each
//! device's id, its `device_metrics` and rule files, and the finished device with its checked
//! conditions.

use super::{Checker, MAX_DEVICES, MAX_RULE_FILES, Unmeasured};
use crate::task::dialect::{RawDevice, RawDeviceMetrics, RawTask, TextId};
use crate::task::error::{JsonPath, TaskError};
use crate::task::model::{Device, PlannedItem};
use crate::wire::codec::MAX_STRING_LEN;
use crate::wire::metrics::MAX_INTERFACE_NAME;
use crate::wire::task::MAX_INTERFACES;
use std::collections::HashSet;
use std::path::PathBuf;

impl Checker<'_> {
    /// `device_metrics` as a gathering item at the task's frequency, or `None` when it asks for
    /// nothing.
    pub fn device_metrics(
        &self,
        path: &JsonPath,
        raw: Option<&RawDeviceMetrics>,
        frequency_s: u32,
    ) -> Result<Option<PlannedItem>, TaskError> {
        let Some(raw) = raw else { return Ok(None) };
        let interfaces = match &raw.interface_stats {
            None => Vec::new(),
            Some(names) => self.interfaces(&path.key("interface_stats"), names)?,
        };
        if !raw.cpu_usage && !raw.ram_usage && interfaces.is_empty() {
            return Ok(None);
        }
        Ok(Some(PlannedItem::MetricsGathering {
            cpu: raw.cpu_usage,
            ram: raw.ram_usage,
            interfaces,
            frequency_s,
        }))
    }

    fn interfaces(&self, path: &JsonPath, names: &[String]) -> Result<Vec<String>, TaskError> {
        if names.is_empty() {
            return Err(self.error(
                path,
                "the interface list is empty: name the interfaces to watch (such as [\"eth0\"]) \
                 or leave interface_stats out",
            ));
        }
        if names.len() > MAX_INTERFACES {
            return Err(self.error(
                path,
                format!(
                    "{} interfaces, more than the {MAX_INTERFACES} allowed",
                    names.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, name) in names.iter().enumerate() {
            let at = path.index(i);
            if name.is_empty()
                || name.len() > MAX_INTERFACE_NAME
                || name.chars().any(char::is_control)
            {
                return Err(self.error(
                    &at,
                    format!(
                        "interface name {name:?} must be 1 to {MAX_INTERFACE_NAME} bytes without \
                         control characters"
                    ),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(self.error(&at, format!("interface {name:?} is listed twice")));
            }
        }
        Ok(names.to_vec())
    }

    /// `rules`: hand-written rhai files, resolved against the task file's folder.
    fn rule_files(
        &self,
        path: &JsonPath,
        raw: Option<&Vec<String>>,
    ) -> Result<Vec<PathBuf>, TaskError> {
        let Some(names) = raw else {
            return Ok(Vec::new());
        };
        if names.len() > MAX_RULE_FILES {
            return Err(self.error(
                path,
                format!(
                    "{} rule files, more than the {MAX_RULE_FILES} allowed",
                    names.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut files = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let at = path.index(i);
            if name.len() > MAX_STRING_LEN
                || !name.ends_with(".rhai")
                || name.len() == ".rhai".len()
            {
                return Err(self.error(
                    &at,
                    format!(
                        "rule file {name:?} is not the path of a rhai script (ending in .rhai)"
                    ),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(self.error(&at, format!("rule file {name:?} is listed twice")));
            }
            files.push(self.base_dir.join(name));
        }
        Ok(files)
    }

    /// A device's id, unique within its task.
    pub fn device_id(
        &self,
        path: &JsonPath,
        id: &TextId,
        earlier: &[String],
    ) -> Result<String, TaskError> {
        let at = path.key("device_id");
        let id = self.id(&at, id, "device_id")?;
        if earlier.contains(&id) {
            return Err(self.error(&at, format!("device {id:?} appears twice in this task")));
        }
        Ok(id)
    }

    /// A task's id and frequency, and the path of its devices after checking how many there are.
    pub fn task_header<L>(
        &self,
        path: &JsonPath,
        raw: &RawTask<L>,
    ) -> Result<(String, u32, JsonPath), TaskError> {
        let task_id = self.id(&path.key("task_id"), &raw.task_id, "task_id")?;
        let frequency_s = self.seconds(&path.key("frequency"), &raw.frequency, "frequency")?;
        let devices_path = path.key("devices");
        let count = raw.devices.len();
        if count == 0 {
            return Err(self.error(&devices_path, "the task has no devices"));
        }
        if count > MAX_DEVICES {
            return Err(self.error(
                &devices_path,
                format!("{count} devices, more than the {MAX_DEVICES} allowed in one task"),
            ));
        }
        Ok((task_id, frequency_s, devices_path))
    }

    /// A device of either dialect, given all it measures: checks its conditions against those
    /// items, resolves its rule files, and insists that it measures something.
    pub fn finish_device<L>(
        &self,
        path: &JsonPath,
        device_id: String,
        raw: &RawDevice<L>,
        items: Vec<PlannedItem>,
        unmeasured: Unmeasured,
    ) -> Result<Device, TaskError> {
        if items.is_empty() {
            return Err(self.error(
                path,
                format!(
                    "device {device_id:?} measures nothing: enable device_metrics or add \
                     link_metrics"
                ),
            ));
        }
        let mut notes = Vec::new();
        let conditions = self.conditions(
            &path.key("alertflow_conditions"),
            raw.alertflow_conditions.as_ref(),
            &items,
            unmeasured,
            &mut notes,
        )?;
        let rule_files = self.rule_files(&path.key("rules"), raw.rules.as_ref())?;
        Ok(Device {
            device_id,
            items,
            conditions,
            rule_files,
            notes,
        })
    }
}
