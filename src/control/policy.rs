//! Resource-based policy: AddPermission, RemovePermission, GetPolicy. Statements are stored as
//! IAM JSON; hearth has no IAM yet, so they are recorded, not enforced.

use super::resources::{constraint, decode, encode, parse_json, required, revision_id};
use super::{Control, Reply};
use crate::api::ApiError;
use crate::api::types::{AddPermissionRequest, StoredPolicy};
use crate::store::Edit;
use crate::store::resources::kind::POLICY;
use http::StatusCode;
use serde_json::{Value, json};

/// A validated AddPermission body; `statement` is built once the resource ARN is known.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewPermission {
    pub statement_id: String,
    pub action: String,
    pub principal: String,
    pub revision_id: Option<String>,
    /// `(operator, key, value)` conditions.
    pub conditions: Vec<(&'static str, &'static str, String)>,
}

fn pattern(v: &str, field: &str, ok: bool, rule: &str) -> Result<(), ApiError> {
    if !ok {
        return Err(constraint(
            v,
            field,
            &format!("Member must satisfy regular expression pattern: {rule}"),
        ));
    }
    Ok(())
}

fn action_ok(a: &str) -> bool {
    a == "*"
        || a.strip_prefix("lambda:").is_some_and(|rest| {
            rest == "*" || (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphabetic()))
        })
}

/// Parses and validates an AddPermission body (pure).
pub fn parse_add_permission(body: &[u8]) -> Result<NewPermission, ApiError> {
    let req: AddPermissionRequest = parse_json(body)?;
    let sid = required(req.statement_id, "statementId")?;
    let sid_ok = (1..=100).contains(&sid.len())
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    pattern(&sid, "statementId", sid_ok, "([a-zA-Z0-9-_.]+)")?;
    let action = required(req.action, "action")?;
    pattern(
        &action,
        "action",
        action_ok(&action),
        "(lambda:[*]|lambda:[a-zA-Z]+|[*])",
    )?;
    let principal = required(req.principal, "principal")?;
    let principal_ok = !principal.is_empty() && !principal.chars().any(char::is_whitespace);
    pattern(&principal, "principal", principal_ok, "[^\\s]+")?;
    let mut conditions = vec![];
    if let Some(arn) = req.source_arn {
        pattern(
            &arn,
            "sourceArn",
            arn.starts_with("arn:"),
            "arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:(.*)",
        )?;
        conditions.push(("ArnLike", "AWS:SourceArn", arn));
    }
    if let Some(acct) = req.source_account {
        let ok = acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit());
        pattern(&acct, "sourceAccount", ok, "\\d{12}")?;
        conditions.push(("StringEquals", "AWS:SourceAccount", acct));
    }
    if let Some(org) = req.principal_org_id {
        let ok = (12..=34).contains(&org.len()) && org.starts_with("o-");
        pattern(&org, "principalOrgID", ok, "^o-[a-z0-9]{10,32}$")?;
        conditions.push(("StringEquals", "aws:PrincipalOrgID", org));
    }
    if let Some(token) = req.event_source_token {
        pattern(
            &token,
            "eventSourceToken",
            (1..=256).contains(&token.len()),
            "[a-zA-Z0-9._\\-]+",
        )?;
        conditions.push(("StringEquals", "lambda:EventSourceToken", token));
    }
    if let Some(auth) = req.function_url_auth_type {
        if auth != "NONE" && auth != "AWS_IAM" {
            return Err(constraint(
                &auth,
                "functionUrlAuthType",
                "Member must satisfy enum value set: [NONE, AWS_IAM]",
            ));
        }
        conditions.push(("StringEquals", "lambda:FunctionUrlAuthType", auth));
    }
    Ok(NewPermission {
        statement_id: sid,
        action,
        principal,
        revision_id: req.revision_id,
        conditions,
    })
}

/// The IAM principal element: a service, everyone, an account, or an ARN.
fn principal(p: &str) -> Value {
    if p == "*" {
        json!("*")
    } else if p.ends_with(".amazonaws.com") || p.ends_with(".amazonaws.com.cn") {
        json!({ "Service": p })
    } else if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        json!({ "AWS": format!("arn:aws:iam::{p}:root") })
    } else {
        json!({ "AWS": p })
    }
}

/// The IAM statement of a permission on `resource`.
pub fn statement(p: &NewPermission, resource: &str) -> Value {
    let mut s = json!({
        "Sid": p.statement_id,
        "Effect": "Allow",
        "Principal": principal(&p.principal),
        "Action": p.action,
        "Resource": resource,
    });
    if !p.conditions.is_empty() {
        let mut cond = serde_json::Map::new();
        for (op, key, value) in &p.conditions {
            let entry = cond.entry(*op).or_insert_with(|| json!({}));
            entry[*key] = json!(value);
        }
        s["Condition"] = Value::Object(cond);
    }
    s
}

fn stale_revision() -> ApiError {
    ApiError::precondition_failed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id",
    )
}

impl Control {
    fn policy_not_found(&self) -> ApiError {
        ApiError::not_found("The resource you requested does not exist.")
    }

    pub(super) fn add_permission(
        &self,
        name: &str,
        qualifier: Option<&str>,
        body: &[u8],
    ) -> Result<Reply, ApiError> {
        let p = parse_add_permission(body)?;
        let stmt = statement(&p, &self.arn(name, qualifier));
        self.edit(name, POLICY, qualifier.unwrap_or(""), &mut |current, view| {
            if let Some(q) = qualifier
                && !view.has_qualifier(q)
            {
                return Err(self.function_not_found(name, Some(q)));
            }
            let mut policy: StoredPolicy = current.map(decode).transpose()?.unwrap_or_default();
            if current.is_some() && p.revision_id.as_ref().is_some_and(|r| *r != policy.revision_id) {
                return Err(stale_revision());
            }
            if policy.statement.iter().any(|s| s["Sid"] == p.statement_id.as_str()) {
                return Err(ApiError::conflict(
                    "The statement id (sid) provided already exists. Please provide a new statement id, or remove the existing statement.",
                ));
            }
            policy.statement.push(stmt.clone());
            policy.revision_id = revision_id();
            Ok(Edit::Put(encode(&policy)?))
        })?;
        Reply::json(
            StatusCode::CREATED,
            json!({ "Statement": stmt.to_string() }),
        )
    }

    pub(super) fn remove_permission(
        &self,
        name: &str,
        qualifier: Option<&str>,
        sid: &str,
        expected: Option<&str>,
    ) -> Result<Reply, ApiError> {
        self.edit(name, POLICY, qualifier.unwrap_or(""), &mut |current, _| {
            let mut policy: StoredPolicy = decode(current.ok_or_else(|| self.policy_not_found())?)?;
            if expected.is_some_and(|r| r != policy.revision_id) {
                return Err(stale_revision());
            }
            let before = policy.statement.len();
            policy.statement.retain(|s| s["Sid"] != sid);
            if policy.statement.len() == before {
                return Err(ApiError::not_found(format!(
                    "Statement {sid} is not found in resource policy."
                )));
            }
            if policy.statement.is_empty() {
                return Ok(Edit::Delete);
            }
            policy.revision_id = revision_id();
            Ok(Edit::Put(encode(&policy)?))
        })?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }

    pub(super) fn get_policy(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let Some(policy) = self.resource::<StoredPolicy>(name, POLICY, qualifier.unwrap_or(""))?
        else {
            self.require_function(name)?;
            return Err(self.policy_not_found());
        };
        let document =
            json!({ "Version": "2012-10-17", "Id": "default", "Statement": policy.statement });
        Reply::json(
            StatusCode::OK,
            json!({ "Policy": document.to_string(), "RevisionId": policy.revision_id }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let p = parse_add_permission(
            br#"{"StatementId":"s3","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com","SourceArn":"arn:aws:s3:::b","SourceAccount":"123456789012"}"#,
        )
        .unwrap();
        let s = statement(&p, "arn:aws:lambda:us-east-1:000000000000:function:f");
        assert_eq!(s["Principal"]["Service"], "s3.amazonaws.com");
        assert_eq!(s["Condition"]["ArnLike"]["AWS:SourceArn"], "arn:aws:s3:::b");
        assert_eq!(
            s["Condition"]["StringEquals"]["AWS:SourceAccount"],
            "123456789012"
        );
        let url = parse_add_permission(
            br#"{"StatementId":"u","Action":"lambda:InvokeFunctionUrl","Principal":"*","FunctionUrlAuthType":"NONE"}"#,
        )
        .unwrap();
        assert_eq!(
            statement(&url, "r")["Condition"]["StringEquals"]["lambda:FunctionUrlAuthType"],
            "NONE"
        );
    }

    #[test]
    fn hostile_bodies() {
        for (b, needle) in [
            (
                r#"{"Action":"lambda:InvokeFunction","Principal":"*"}"#,
                "statementId",
            ),
            (
                r#"{"StatementId":"a b","Action":"lambda:InvokeFunction","Principal":"*"}"#,
                "statementId",
            ),
            (
                r#"{"StatementId":"a","Action":"s3:GetObject","Principal":"*"}"#,
                "action",
            ),
            (
                r#"{"StatementId":"a","Action":"lambda:InvokeFunction"}"#,
                "principal",
            ),
            (
                r#"{"StatementId":"a","Action":"lambda:*","Principal":"*","SourceAccount":"12"}"#,
                "sourceAccount",
            ),
            (
                r#"{"StatementId":"a","Action":"*","Principal":"*","FunctionUrlAuthType":"X"}"#,
                "functionUrlAuthType",
            ),
            (
                r#"{"StatementId":["a"],"Action":"*","Principal":"*"}"#,
                "StatementId",
            ),
        ] {
            let e = parse_add_permission(b.as_bytes()).unwrap_err();
            assert_eq!(e.status, 400, "{b}");
            assert!(e.message.contains(needle), "{b}: {}", e.message);
        }
    }
}
