//! Timer triggers as a hearth management resource, under `/hearth/v1/triggers`:
//! `POST` creates (201), `GET` lists, `GET /{name}` gets, `DELETE /{name}` deletes (204).
//! Each write is one store transaction through [`Control::commit`]; the scheduler
//! (`triggers::scheduler`) reads what is stored on its next pass.

use super::resources::{constraint, decode, encode, parse_json, required};
use super::{Control, Reply, decode_segment, store_err};
use crate::api::ApiError;
use crate::api::names::{merge_qualifier, parse_function_name, valid_qualifier};
use crate::schedule::Schedule;
use crate::store::{Op, StoreError};
use crate::triggers::{
    MAX_INPUT_BYTES, MAX_TRIGGERS, MissedTicks, Trigger, to_ms, trigger_arn, valid_name,
};
use http::{Method, StatusCode};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PREFIX: &str = "/hearth/v1/triggers";

/// A trigger operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerAction {
    Create,
    List,
    Get { name: String },
    Delete { name: String },
}

/// Whether `path` is a trigger path.
pub fn is_trigger_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/hearth/v1/triggers/")
}

impl TriggerAction {
    /// The action of a trigger path (`None` for other paths).
    pub fn parse(method: &Method, path: &str) -> Option<Result<TriggerAction, ApiError>> {
        let rest = path.strip_prefix(PREFIX)?;
        let unknown = || {
            Err(ApiError::unknown_operation(format!(
                "Unknown operation: {method} {path}"
            )))
        };
        Some(match (method, rest.trim_end_matches('/')) {
            (&Method::POST, "") => Ok(TriggerAction::Create),
            (&Method::GET, "") => Ok(TriggerAction::List),
            (m, seg) if seg.starts_with('/') && !seg[1..].contains('/') => {
                let name = match decode_segment(&seg[1..]) {
                    Ok(n) => n,
                    Err(e) => return Some(Err(e)),
                };
                match *m {
                    Method::GET => Ok(TriggerAction::Get { name }),
                    Method::DELETE => Ok(TriggerAction::Delete { name }),
                    _ => unknown(),
                }
            }
            _ => unknown(),
        })
    }
}

/// A CreateTrigger body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateTriggerRequest {
    name: Option<String>,
    function_name: Option<String>,
    qualifier: Option<String>,
    schedule_expression: Option<String>,
    input: Option<String>,
    missed_ticks: Option<String>,
}

/// A validated CreateTrigger body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerInput {
    pub name: String,
    pub function_name: String,
    pub qualifier: Option<String>,
    pub schedule: String,
    pub input: Option<String>,
    pub missed_ticks: MissedTicks,
}

/// Parses and validates a CreateTrigger body (pure; fuzzed).
pub fn parse_create_trigger(body: &[u8], account: &str) -> Result<TriggerInput, ApiError> {
    let req: CreateTriggerRequest = parse_json(body)?;
    let name = required(req.name, "name")?;
    if !valid_name(&name) {
        return Err(constraint(
            &name,
            "name",
            "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]{1,64}",
        ));
    }
    let raw = required(req.function_name, "functionName")?;
    let fref = parse_function_name(&raw, account)?;
    let qualifier = merge_qualifier(fref.qualifier, req.qualifier.as_deref())?;
    if let Some(q) = qualifier.as_deref().filter(|q| !valid_qualifier(q)) {
        return Err(constraint(
            q,
            "qualifier",
            "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
        ));
    }
    let expr = required(req.schedule_expression, "scheduleExpression")?;
    let schedule = Schedule::parse(&expr).map_err(|e| {
        ApiError::invalid_parameter(format!("ScheduleExpression is not valid: {e}"))
    })?;
    if let Some(input) = &req.input {
        check_input(input)?;
    }
    let missed_ticks = match req.missed_ticks.as_deref() {
        None => MissedTicks::default(),
        Some(m) => MissedTicks::parse(m).ok_or_else(|| {
            constraint(
                m,
                "missedTicks",
                "Member must satisfy enum value set: [FIRE_ONCE, SKIP]",
            )
        })?,
    };
    Ok(TriggerInput {
        name,
        function_name: fref.name,
        qualifier,
        schedule: schedule.expression().to_owned(),
        input: req.input,
        missed_ticks,
    })
}

/// The constant input: at most [`MAX_INPUT_BYTES`] of valid JSON.
fn check_input(input: &str) -> Result<(), ApiError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(constraint(
            input.len(),
            "input",
            &format!("Member must have length less than or equal to {MAX_INPUT_BYTES}"),
        ));
    }
    serde_json::from_str::<serde_json::Value>(input)
        .map(|_| ())
        .map_err(|e| ApiError::invalid_parameter(format!("Input is not valid JSON: {e}")))
}

impl Control {
    /// Serves one trigger action.
    pub(super) async fn handle_trigger(
        &self,
        action: TriggerAction,
        body: &[u8],
    ) -> Result<Reply, ApiError> {
        match action {
            TriggerAction::Create => self.create_trigger(body).await,
            TriggerAction::List => {
                let list = self.stored_triggers()?;
                Reply::json(StatusCode::OK, serde_json::json!({ "Triggers": list }))
            }
            TriggerAction::Get { name } => {
                let t = self.stored_triggers()?.into_iter().find(|t| t.name == name);
                Reply::json(StatusCode::OK, t.ok_or_else(|| trigger_not_found(&name))?)
            }
            TriggerAction::Delete { name } => self.delete_trigger(&name).await,
        }
    }

    fn stored_triggers(&self) -> Result<Vec<Trigger>, ApiError> {
        let rows = self.store.triggers(&self.account).map_err(store_err)?;
        rows.iter().map(|r| decode(&r.json)).collect()
    }

    async fn create_trigger(&self, body: &[u8]) -> Result<Reply, ApiError> {
        let input = parse_create_trigger(body, &self.account)?;
        self.lookup(&input.function_name, input.qualifier.as_deref())?;
        let count = self.store.triggers(&self.account).map_err(store_err)?.len();
        if count >= MAX_TRIGGERS {
            return Err(ApiError::invalid_parameter(format!(
                "The account has {count} triggers; the limit is {MAX_TRIGGERS}."
            )));
        }
        let now = OffsetDateTime::now_utc();
        let trigger = Trigger {
            trigger_arn: trigger_arn(&self.region, &self.account, &input.name),
            trigger_id: uuid::Uuid::new_v4().to_string(),
            name: input.name,
            function_name: input.function_name,
            qualifier: input.qualifier,
            schedule_expression: input.schedule,
            input: input.input,
            missed_ticks: input.missed_ticks,
            creation_time: now.format(&Rfc3339).unwrap_or_default(),
            created_ms: to_ms(now),
        };
        let op = Op::PutTrigger {
            name: trigger.name.clone(),
            id: trigger.trigger_id.clone(),
            json: Some(encode(&trigger)?),
        };
        match self.commit(&self.account, vec![op]).await {
            Ok(_) => Reply::json(StatusCode::CREATED, &trigger),
            Err(StoreError::Conflict) => Err(ApiError::conflict(format!(
                "Trigger already exists: {}",
                trigger.name
            ))),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn delete_trigger(&self, name: &str) -> Result<Reply, ApiError> {
        let op = Op::PutTrigger {
            name: name.to_owned(),
            id: String::new(),
            json: None,
        };
        match self.commit(&self.account, vec![op]).await {
            Ok(_) => Ok(Reply::empty(StatusCode::NO_CONTENT)),
            Err(StoreError::NotFound) => Err(trigger_not_found(name)),
            Err(e) => Err(store_err(e)),
        }
    }
}

fn trigger_not_found(name: &str) -> ApiError {
    let shown: String = name.chars().take(64).collect();
    ApiError::not_found(format!("Trigger not found: {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    const A: &str = "000000000000";

    fn err(body: &str) -> String {
        parse_create_trigger(body.as_bytes(), A)
            .unwrap_err()
            .message
    }

    #[test]
    fn routes() {
        let p = |m: &Method, path: &str| TriggerAction::parse(m, path);
        assert_eq!(p(&Method::POST, PREFIX), Some(Ok(TriggerAction::Create)));
        assert_eq!(
            p(&Method::GET, "/hearth/v1/triggers/"),
            Some(Ok(TriggerAction::List))
        );
        assert_eq!(
            p(&Method::DELETE, "/hearth/v1/triggers/a.b"),
            Some(Ok(TriggerAction::Delete { name: "a.b".into() }))
        );
        assert_eq!(
            p(&Method::GET, "/hearth/v1/triggers/x%2Fy"),
            Some(Ok(TriggerAction::Get { name: "x/y".into() }))
        );
        assert!(matches!(
            p(&Method::PUT, "/hearth/v1/triggers/x"),
            Some(Err(_))
        ));
        assert!(matches!(
            p(&Method::GET, "/hearth/v1/triggers/x/y"),
            Some(Err(_))
        ));
        assert!(matches!(
            p(&Method::GET, "/hearth/v1/triggersx"),
            Some(Err(_))
        ));
        assert_eq!(p(&Method::GET, "/hearth/v1/functions"), None);
        assert!(is_trigger_path("/hearth/v1/triggers"));
        assert!(!is_trigger_path("/hearth/v1/triggersx"));
    }

    #[test]
    fn parses_a_full_body() {
        let t = parse_create_trigger(
            br#"{"Name":"nightly","FunctionName":"f:live","ScheduleExpression":"cron(0 3 * * ? *)","Input":"{\"a\":1}","MissedTicks":"SKIP"}"#,
            A,
        )
        .unwrap();
        assert_eq!(t.function_name, "f");
        assert_eq!(t.qualifier.as_deref(), Some("live"));
        assert_eq!(t.missed_ticks, MissedTicks::Skip);
        assert_eq!(t.input.as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn hostile_bodies() {
        let ok = r#""FunctionName":"f","ScheduleExpression":"rate(5 minutes)""#;
        assert!(err("[]").contains("must be a JSON object"));
        assert!(err("{").contains("Could not parse request body"));
        assert!(err(r#"{"Name":5}"#).contains("field 'Name'"));
        assert!(err(&format!("{{{ok}}}")).contains("Value null at 'name'"));
        assert!(err(&format!(r#"{{"Name":"a b",{ok}}}"#)).contains("at 'name'"));
        let long = "n".repeat(65);
        assert!(err(&format!(r#"{{"Name":"{long}",{ok}}}"#)).contains("at 'name'"));
        assert!(
            err(r#"{"Name":"n","FunctionName":"f"}"#)
                .contains("Value null at 'scheduleExpression'")
        );
        assert_eq!(
            err(r#"{"Name":"n","FunctionName":"f","ScheduleExpression":"cron(0 12 * * * *)"}"#),
            "ScheduleExpression is not valid: cron day-of-month and day-of-week: one of them \
             must be '?' (both cannot be given)"
        );
        assert!(
            err(&format!(r#"{{"Name":"n",{ok},"Input":"{{nope"}}"#))
                .starts_with("Input is not valid JSON")
        );
        let big = format!("\\\"{}\\\"", "x".repeat(9000));
        assert!(err(&format!(r#"{{"Name":"n",{ok},"Input":"{big}"}}"#)).contains("at 'input'"));
        assert!(
            err(&format!(r#"{{"Name":"n",{ok},"MissedTicks":"ALL"}}"#)).contains("FIRE_ONCE, SKIP")
        );
        assert!(
            !err(r#"{"Name":"n","FunctionName":"f:a:b","ScheduleExpression":"rate(1 day)"}"#)
                .is_empty()
        );
        assert!(err(r#"{"Name":"n","FunctionName":"f","Qualifier":"bad q","ScheduleExpression":"rate(1 day)"}"#).contains("qualifier"));
        let deep = format!(
            r#"{{"Name":"n",{ok},"Input":"{}{}"}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(err(&deep).starts_with("Input is not valid JSON"));
    }
}
