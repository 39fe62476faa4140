//! Asynchronous invocation settings: Put/Get/Update/Delete/ListFunctionEventInvokeConfigs.
//! Put replaces the configuration; Update (POST) changes only the fields it names.

use super::resource_action::Page;
use super::resources::{constraint, decode, encode};
use super::{Control, Reply};
use crate::api::ApiError;
use crate::api::types::{
    Destination, DestinationConfig, EventInvokeConfigRequest, FunctionEventInvokeConfig,
};
use crate::store::Edit;
use crate::store::resources::kind::EVENT_INVOKE;
use http::StatusCode;

/// A validated event invoke config body: `None` is "not given".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventInvokeInput {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_in_seconds: Option<u32>,
    pub on_success: Option<Destination>,
    pub on_failure: Option<Destination>,
}

fn range(v: Option<i64>, field: &str, lo: i64, hi: i64) -> Result<Option<u32>, ApiError> {
    match v {
        Some(n) if !(lo..=hi).contains(&n) => Err(constraint(
            n,
            field,
            &format!("Member must have value between {lo} and {hi}"),
        )),
        other => Ok(other.map(|n| n as u32)),
    }
}

fn destination(d: Option<Destination>, field: &str) -> Result<Option<Destination>, ApiError> {
    if let Some(arn) = d.as_ref().and_then(|d| d.destination.as_deref())
        && (!arn.starts_with("arn:") || arn.len() > 350)
    {
        return Err(constraint(
            arn,
            field,
            "Member must satisfy regular expression pattern: ^$|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}(-gov)?-[a-z]+-\\d{1})?:(\\d{12})?:(.*) and have length at most 350",
        ));
    }
    if let Some(arn) = d.as_ref().and_then(|d| d.destination.as_deref()) {
        // Only destinations hearth can deliver to (functions and queues).
        crate::events::arn::parse_destination(arn)?;
    }
    Ok(d)
}

/// Parses and validates a Put/UpdateFunctionEventInvokeConfig body (pure).
pub fn parse_event_invoke_config(body: &[u8]) -> Result<EventInvokeInput, ApiError> {
    let req: EventInvokeConfigRequest = super::resources::parse_json(body)?;
    let dc = req.destination_config.unwrap_or_default();
    Ok(EventInvokeInput {
        maximum_retry_attempts: range(req.maximum_retry_attempts, "maximumRetryAttempts", 0, 2)?,
        maximum_event_age_in_seconds: range(
            req.maximum_event_age_in_seconds,
            "maximumEventAgeInSeconds",
            60,
            21600,
        )?,
        on_success: destination(dc.on_success, "destinationConfig.onSuccess.destination")?,
        on_failure: destination(dc.on_failure, "destinationConfig.onFailure.destination")?,
    })
}

fn epoch_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Control {
    fn event_invoke_not_found(&self, name: &str, key: &str) -> ApiError {
        ApiError::not_found(format!(
            "The function {} doesn't have an EventInvokeConfig",
            self.arn(name, Some(key))
        ))
    }

    /// The event invoke configuration of `name` at `qualifier` (`$LATEST` when none), for the
    /// asynchronous invocation engine.
    pub fn event_invoke_config(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<FunctionEventInvokeConfig>, ApiError> {
        self.resource(name, EVENT_INVOKE, qualifier.unwrap_or("$LATEST"))
    }

    /// Put (`replace`) or Update: stores the new configuration and returns it.
    pub(super) fn put_event_invoke(
        &self,
        name: &str,
        qualifier: Option<&str>,
        body: &[u8],
        replace: bool,
    ) -> Result<Reply, ApiError> {
        let input = parse_event_invoke_config(body)?;
        let key = qualifier.unwrap_or("$LATEST");
        let mut stored = None;
        self.edit(name, EVENT_INVOKE, key, &mut |current, view| {
            if !view.has_qualifier(key) {
                return Err(self.function_not_found(name, Some(key)));
            }
            let mut c = match current {
                Some(j) if !replace => decode(j)?,
                _ => FunctionEventInvokeConfig {
                    last_modified: 0,
                    function_arn: self.arn(name, Some(key)),
                    maximum_retry_attempts: None,
                    maximum_event_age_in_seconds: None,
                    destination_config: DestinationConfig::default(),
                },
            };
            c.maximum_retry_attempts = input.maximum_retry_attempts.or(c.maximum_retry_attempts);
            c.maximum_event_age_in_seconds = input
                .maximum_event_age_in_seconds
                .or(c.maximum_event_age_in_seconds);
            if let Some(d) = &input.on_success {
                c.destination_config.on_success = d.clone();
            }
            if let Some(d) = &input.on_failure {
                c.destination_config.on_failure = d.clone();
            }
            c.last_modified = epoch_now();
            let json = encode(&c)?;
            stored = Some(c);
            Ok(Edit::Put(json))
        })?;
        Reply::json(StatusCode::OK, stored)
    }

    pub(super) fn get_event_invoke(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Reply, ApiError> {
        match self.event_invoke_config(name, qualifier)? {
            Some(c) => Reply::json(StatusCode::OK, c),
            None => {
                self.require_function(name)?;
                Err(self.event_invoke_not_found(name, qualifier.unwrap_or("$LATEST")))
            }
        }
    }

    pub(super) fn delete_event_invoke(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let key = qualifier.unwrap_or("$LATEST");
        self.delete_existing(
            name,
            EVENT_INVOKE,
            key,
            self.event_invoke_not_found(name, key),
        )
    }

    pub(super) fn list_event_invoke(&self, name: &str, p: &Page) -> Result<Reply, ApiError> {
        self.list_page::<FunctionEventInvokeConfig>(
            name,
            EVENT_INVOKE,
            "FunctionEventInvokeConfigs",
            p,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let ok = parse_event_invoke_config(
            br#"{"MaximumRetryAttempts":0,"MaximumEventAgeInSeconds":60,"DestinationConfig":{"OnFailure":{"Destination":"arn:aws:sqs:us-east-1:000000000000:q"}}}"#,
        )
        .unwrap();
        assert_eq!(ok.maximum_retry_attempts, Some(0));
        assert!(ok.on_success.is_none() && ok.on_failure.is_some());
        for (b, needle) in [
            (r#"{"MaximumRetryAttempts":3}"#, "maximumRetryAttempts"),
            (r#"{"MaximumRetryAttempts":-1}"#, "maximumRetryAttempts"),
            (
                r#"{"MaximumEventAgeInSeconds":59}"#,
                "maximumEventAgeInSeconds",
            ),
            (
                r#"{"MaximumEventAgeInSeconds":21601}"#,
                "maximumEventAgeInSeconds",
            ),
            (r#"{"MaximumRetryAttempts":"2"}"#, "MaximumRetryAttempts"),
            (
                r#"{"DestinationConfig":{"OnSuccess":{"Destination":"sqs"}}}"#,
                "onSuccess",
            ),
            (
                r#"{"DestinationConfig":{"OnSuccess":"x"}}"#,
                "DestinationConfig.OnSuccess",
            ),
        ] {
            let e = parse_event_invoke_config(b.as_bytes()).unwrap_err();
            assert_eq!(e.status, 400, "{b}");
            assert!(e.message.contains(needle), "{b}: {}", e.message);
        }
    }
}
