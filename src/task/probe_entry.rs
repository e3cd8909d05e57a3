//! A probe's entry of `link_metrics` into a planned item, in either dialect: the fields the
//! probe declares ([`crate::probes::ParamDef`]) checked by kind and bounds, with errors at their
//! JSON path; `tool` (assignment dialect, optional, the probe's name) and `frequency`
//! (assignment dialect, optional, the task's by default); `enabled` (original dialect, as
//! `ping_parameters` has it: an entry without `"enabled": true` is not run).

use super::dialect::ProbeEntry;
use super::error::{JsonPath, TaskError};
use super::model::{Dialect, PlannedItem};
use super::validate::Checker;
use crate::probes::ParamKind;
use crate::wire::{ParamValue, ProbeItem, ProbeParam};
use serde_json::Value;

/// The entry as a planned item; `None` for an original-dialect entry that is not enabled.
pub(super) fn item(
    c: &Checker<'_>,
    link_path: &JsonPath,
    entry: &ProbeEntry,
    dialect: Dialect,
    task_frequency_s: u32,
) -> Result<Option<PlannedItem>, TaskError> {
    let path = link_path.key(&entry.key);
    let probe = entry.probe;
    let own: &[&str] = match dialect {
        Dialect::Assignment => &["tool", "frequency"],
        Dialect::Original => &["enabled"],
    };
    let mut frequency_s = task_frequency_s;
    let mut params = Vec::new();
    for (name, value) in &entry.fields {
        let at = path.key(name);
        match (name.as_str(), value) {
            ("tool", Value::String(tool)) if own.contains(&"tool") && *tool == probe.name => {}
            ("tool", _) if own.contains(&"tool") => {
                return Err(c.error(
                    &at,
                    format!("the \"tool\" of {} is {:?}", entry.key, probe.name),
                ));
            }
            ("frequency", Value::Number(n)) if own.contains(&"frequency") => {
                frequency_s = c.seconds(&at, n, "frequency")?;
            }
            ("enabled", Value::Bool(false)) if own.contains(&"enabled") => return Ok(None),
            ("enabled", Value::Bool(true)) if own.contains(&"enabled") => {}
            ("frequency" | "enabled", _) if own.contains(&name.as_str()) => {
                return Err(c.error(&at, format!("{name} has the wrong type")));
            }
            _ => params.push(param(c, &at, entry, name, value)?),
        }
    }
    // In the order the probe declares its fields, whatever the file's order.
    params.sort_by_key(|p: &ProbeParam| probe.params.iter().position(|d| d.name == p.name));
    if dialect == Dialect::Original && !entry.fields.contains_key("enabled") {
        return Ok(None);
    }
    let item = ProbeItem {
        probe: probe.name.to_owned(),
        params,
        frequency_s,
    };
    // What is left to check is what the agent checks too: a required field that is missing.
    probe.check(&item).map_err(|e| c.error(&path, e))?;
    Ok(Some(PlannedItem::Probe(item)))
}

/// One declared field of the probe, by its kind.
fn param(
    c: &Checker<'_>,
    at: &JsonPath,
    entry: &ProbeEntry,
    name: &str,
    value: &Value,
) -> Result<ProbeParam, TaskError> {
    let Some(def) = entry.probe.param(name) else {
        let mut known: Vec<String> = entry
            .probe
            .params
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect();
        known.sort();
        return Err(c.error(
            at,
            format!(
                "unknown field `{name}` of {}, expected one of {}",
                entry.key,
                known.join(", ")
            ),
        ));
    };
    let value = match (&def.kind, value) {
        (ParamKind::Host, Value::String(text)) => ParamValue::Text(c.host(at, text, name)?),
        (ParamKind::Address, Value::String(text)) => {
            text.parse::<std::net::IpAddr>()
                .map_err(|_| c.error(at, format!("{name} {text:?} is not an IP address")))?;
            ParamValue::Text(text.clone())
        }
        (ParamKind::Integer { min, max, .. }, Value::Number(n)) => {
            ParamValue::Integer(c.whole(at, n, name, "", (*min, *max))?)
        }
        (kind, _) => {
            let wanted = match kind {
                ParamKind::Host => "a host name or IP address",
                ParamKind::Address => "an IP address",
                ParamKind::Integer { .. } => "a whole number",
            };
            return Err(c.error(at, format!("{name} must be {wanted} ({})", def.doc)));
        }
    };
    Ok(ProbeParam {
        name: name.to_owned(),
        value,
    })
}
