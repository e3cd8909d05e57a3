//! The operator's verbs against a running server's HTTP API: `agents`, `tasks` and `alerts`
//! (list, ack, silence, silences, expire).

use crate::cli::{
    AgentsArgs, AgentsCommand, AlertsArgs, AlertsCommand, ApiArgs, TasksArgs, TasksCommand,
};
use crate::options::client_token;
use anyhow::Context;
use std::io::Write;

/// Runs one operator verb against the HTTP API, printing to standard output.
fn act<F>(
    api: &ApiArgs,
    verb: impl FnOnce(String, Option<String>, nms::act::Output) -> F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = Result<Vec<u8>, nms::act::ActError>>,
{
    let token = client_token(&api.token)?;
    let output = nms::act::Output::chosen(api.json, false);
    let text = smol::block_on(verb(api.server.clone(), token, output))?;
    std::io::stdout()
        .lock()
        .write_all(&text)
        .context("cannot write the output")
}

/// Who the operator is, for acknowledgements and silences: `--by`, else `$USER`.
fn operator(by: Option<String>) -> anyhow::Result<String> {
    match by
        .or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
    {
        Some(by) => Ok(by),
        None => anyhow::bail!("say who you are with --by NAME ($USER is not set)"),
    }
}

pub fn agents(args: AgentsArgs) -> anyhow::Result<()> {
    match args.command {
        AgentsCommand::List(api) => act(&api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::agents(&server, token.as_deref(), output, &mut out).await?;
            Ok(out)
        }),
        AgentsCommand::Forget(forget) => act(&forget.api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::forget(&server, token.as_deref(), &forget.name, output, &mut out).await?;
            Ok(out)
        }),
    }
}

pub fn tasks(args: TasksArgs) -> anyhow::Result<()> {
    match args.command {
        TasksCommand::List(api) => act(&api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::tasks(&server, token.as_deref(), output, &mut out).await?;
            Ok(out)
        }),
        TasksCommand::Remove(remove) => act(&remove.api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::remove_task(&server, token.as_deref(), &remove.task_id, output, &mut out)
                .await?;
            Ok(out)
        }),
    }
}

pub fn alerts(args: AlertsArgs) -> anyhow::Result<()> {
    match args.command {
        AlertsCommand::List(list) => act(&list.api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::alerts(
                &server,
                token.as_deref(),
                list.firing,
                list.agent.as_deref(),
                list.limit.max(1),
                output,
                &mut out,
            )
            .await?;
            Ok(out)
        }),
        AlertsCommand::Ack(ack) => {
            let by = operator(ack.by.clone())?;
            act(&ack.api, |server, token, output| async move {
                let mut out = Vec::new();
                nms::act::acknowledge(
                    &server,
                    token.as_deref(),
                    &ack.alert_id,
                    &by,
                    &ack.comment,
                    output,
                    &mut out,
                )
                .await?;
                Ok(out)
            })
        }
        AlertsCommand::Silence(silence) => {
            if silence.agent.is_none() && silence.task.is_none() && silence.kind.is_none() {
                anyhow::bail!("say what to silence: --agent, --task and/or --kind");
            }
            let by = operator(silence.by.clone())?;
            let mut request = serde_json::json!({
                "comment": silence.comment,
                "created_by": by,
            });
            for (key, value) in [
                ("agent", &silence.agent),
                ("task", &silence.task),
                ("kind", &silence.kind),
                ("starts", &silence.from),
                ("ends", &silence.until),
                ("duration", &silence.duration),
            ] {
                if let Some(v) = value {
                    request[key] = serde_json::Value::from(v.as_str());
                }
            }
            act(&silence.api, |server, token, output| async move {
                let mut out = Vec::new();
                nms::act::silence(&server, token.as_deref(), &request, output, &mut out).await?;
                Ok(out)
            })
        }
        AlertsCommand::Silences(api) => act(&api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::silences(&server, token.as_deref(), output, &mut out).await?;
            Ok(out)
        }),
        AlertsCommand::Expire(expire) => act(&expire.api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::expire(&server, token.as_deref(), &expire.id, output, &mut out).await?;
            Ok(out)
        }),
    }
}
