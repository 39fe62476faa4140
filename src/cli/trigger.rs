//! `hearth trigger create|list|get|delete`: timer triggers through `/hearth/v1/triggers`.

use super::client::{Client, segment};
use clap::Subcommand;
use http::Method;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// Create a trigger that invokes a function asynchronously on a schedule.
    Create {
        name: String,
        /// The function (NAME, NAME:QUALIFIER or an ARN).
        #[arg(long)]
        function: String,
        #[arg(long)]
        qualifier: Option<String>,
        /// 'rate(5 minutes)' or 'cron(0 12 * * ? *)' (EventBridge syntax, UTC).
        #[arg(long)]
        schedule: String,
        /// Constant JSON sent instead of the scheduled event.
        #[arg(long)]
        input: Option<String>,
        /// What to do with ticks missed while hearth was down: fire-once or skip.
        #[arg(long, default_value = "fire-once")]
        missed: String,
    },
    /// List triggers.
    List,
    /// Show one trigger.
    Get { name: String },
    /// Delete a trigger.
    Delete { name: String },
}

/// Runs a trigger command against the public API; returns the JSON answer (null for none).
pub async fn run(client: &Client, cmd: TriggerCommand) -> anyhow::Result<serde_json::Value> {
    const BASE: &str = "/hearth/v1/triggers";
    match cmd {
        TriggerCommand::Create {
            name,
            function,
            qualifier,
            schedule,
            input,
            missed,
        } => {
            let missed = match missed.as_str() {
                "fire-once" => "FIRE_ONCE",
                "skip" => "SKIP",
                other => anyhow::bail!("--missed {other:?}: expected fire-once or skip"),
            };
            let body = json!({
                "Name": name,
                "FunctionName": function,
                "Qualifier": qualifier,
                "ScheduleExpression": schedule,
                "Input": input,
                "MissedTicks": missed,
            });
            client.json(Method::POST, BASE, Some(body)).await
        }
        TriggerCommand::List => client.json(Method::GET, BASE, None).await,
        TriggerCommand::Get { name } => {
            let path = format!("{BASE}/{}", segment(&name));
            client.json(Method::GET, &path, None).await
        }
        TriggerCommand::Delete { name } => {
            let path = format!("{BASE}/{}", segment(&name));
            client.json(Method::DELETE, &path, None).await
        }
    }
}
