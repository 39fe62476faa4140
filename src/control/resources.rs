//! Dispatch of resource actions, and what their handlers share: body parsing that names the
//! offending field, paging, and edits through the store's resource transactions.

use super::resource_action::{Page, ResourceAction};
use super::{Control, Reply, store_err};
use crate::api::ApiError;
use crate::api::names::function_arn;
use crate::store::Edit;
use crate::store::{EditError, EditFn};
use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;

/// Parses a JSON request body (empty is `{}`); unknown fields are ignored, and a value of the
/// wrong type is a 400 that names its field.
pub fn parse_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid_content(
            "Could not parse request body into json: the body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid_content(format!("Could not parse request body into json: {inner}"))
        } else {
            ApiError::invalid_content(format!(
                "Could not parse request body into json: field '{field}': {inner}"
            ))
        }
    })?;
    de.end().map_err(|e| {
        ApiError::invalid_content(format!("Could not parse request body into json: {e}"))
    })?;
    Ok(value)
}

/// A field that must be present.
pub fn required<T>(v: Option<T>, field: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: \
             Member must not be null"
        ))
    })
}

/// A `1 validation error detected` 400.
pub fn constraint(value: impl std::fmt::Display, field: &str, rule: &str) -> ApiError {
    let shown: String = value.to_string().chars().take(256).collect();
    ApiError::invalid_parameter(format!(
        "1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: {rule}"
    ))
}

/// One page of `items` (sorted by key): those after `Marker`, at most `MaxItems` (1..=`limit`,
/// default `limit`), and the marker of the next page.
pub fn page<T>(
    items: Vec<(String, T)>,
    page: &Page,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = match page.max_items.as_deref().map(str::parse::<usize>) {
        None => limit,
        Some(Ok(n)) if (1..=limit).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::invalid_parameter(format!(
                "MaxItems must be an integer from 1 to {limit}."
            )));
        }
    };
    let marker = page.marker.as_deref().filter(|m| !m.is_empty());
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(k, _)| marker.is_none_or(|m| k.as_str() > m))
        .collect();
    let next = (rest.len() > max).then(|| {
        rest.truncate(max);
        rest[max - 1].0.clone()
    });
    Ok((rest.into_iter().map(|(_, v)| v).collect(), next))
}

/// A new RevisionId.
pub fn revision_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Decodes a stored resource document.
pub fn decode<T: DeserializeOwned>(json: &str) -> Result<T, ApiError> {
    serde_json::from_str(json).map_err(|e| ApiError::service(format!("stored resource: {e}")))
}

/// Encodes a resource document for the store.
pub fn encode(v: &impl serde::Serialize) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::service(e.to_string()))
}

impl Control {
    /// Serves one resource action. `base_url` is the public base URL (for `FunctionUrl`).
    pub(super) fn handle_resource(
        &self,
        action: ResourceAction,
        body: Bytes,
        base_url: &str,
    ) -> Result<Reply, ApiError> {
        use ResourceAction as A;
        let q = |q: &Option<String>| q.clone();
        match action {
            A::CreateAlias { name } => self.create_alias(&name, &body),
            A::ListAliases {
                name,
                function_version,
                page,
            } => self.list_aliases(&name, function_version.as_deref(), &page),
            A::GetAlias { name, alias } => self.get_alias(&name, &alias),
            A::UpdateAlias { name, alias } => self.update_alias(&name, &alias, &body),
            A::DeleteAlias { name, alias } => self.delete_alias(&name, &alias),
            A::PutConcurrency { name } => self.put_concurrency(&name, &body),
            A::GetConcurrency { name } => self.get_concurrency(&name),
            A::DeleteConcurrency { name } => self.delete_concurrency(&name),
            A::CreateUrl { name, qualifier } => {
                self.create_url(&name, q(&qualifier), &body, base_url)
            }
            A::GetUrl { name, qualifier } => self.get_url(&name, qualifier.as_deref(), base_url),
            A::UpdateUrl { name, qualifier } => {
                self.update_url(&name, qualifier.as_deref(), &body, base_url)
            }
            A::DeleteUrl { name, qualifier } => self.delete_url(&name, qualifier.as_deref()),
            A::ListUrls { name, page } => self.list_urls(&name, &page, base_url),
            A::PutEventInvoke { name, qualifier } => {
                self.put_event_invoke(&name, qualifier.as_deref(), &body, true)
            }
            A::UpdateEventInvoke { name, qualifier } => {
                self.put_event_invoke(&name, qualifier.as_deref(), &body, false)
            }
            A::GetEventInvoke { name, qualifier } => {
                self.get_event_invoke(&name, qualifier.as_deref())
            }
            A::DeleteEventInvoke { name, qualifier } => {
                self.delete_event_invoke(&name, qualifier.as_deref())
            }
            A::ListEventInvoke { name, page } => self.list_event_invoke(&name, &page),
            A::AddPermission { name, qualifier } => {
                self.add_permission(&name, qualifier.as_deref(), &body)
            }
            A::RemovePermission {
                name,
                qualifier,
                sid,
                revision_id,
            } => self.remove_permission(&name, qualifier.as_deref(), &sid, revision_id.as_deref()),
            A::GetPolicy { name, qualifier } => self.get_policy(&name, qualifier.as_deref()),
            A::TagResource { name } => self.tag_resource(&name, &body),
            A::UntagResource { name, keys } => self.untag_resource(&name, &keys),
            A::ListTags { name } => self.list_tags(&name),
        }
    }

    pub(super) fn arn(&self, name: &str, qualifier: Option<&str>) -> String {
        let arn = function_arn(&self.region, &self.account, name);
        match qualifier {
            Some(q) => format!("{arn}:{q}"),
            None => arn,
        }
    }

    pub(super) fn function_not_found(&self, name: &str, qualifier: Option<&str>) -> ApiError {
        ApiError::not_found(format!("Function not found: {}", self.arn(name, qualifier)))
    }

    /// 404 unless the function exists.
    pub(super) fn require_function(&self, name: &str) -> Result<(), ApiError> {
        self.lookup(name, None).map(|_| ())
    }

    /// A stored resource document of the function (`None` when absent).
    pub(super) fn resource<T: DeserializeOwned>(
        &self,
        name: &str,
        kind: &str,
        key: &str,
    ) -> Result<Option<T>, ApiError> {
        self.store
            .resource(&self.account, name, kind, key)
            .map_err(store_err)?
            .map(|j| decode(&j))
            .transpose()
    }

    /// Every stored document of one kind, by key.
    pub(super) fn resources_of<T: DeserializeOwned>(
        &self,
        name: &str,
        kind: &str,
    ) -> Result<Vec<(String, T)>, ApiError> {
        self.store
            .resources(&self.account, name, kind)
            .map_err(store_err)?
            .into_iter()
            .map(|(k, j)| decode(&j).map(|v| (k, v)))
            .collect()
    }

    /// Deletes an existing resource; `missing` is the answer when there is none.
    pub(super) fn delete_existing(
        &self,
        name: &str,
        kind: &str,
        key: &str,
        missing: ApiError,
    ) -> Result<Reply, ApiError> {
        self.edit(name, kind, key, &mut |current, _| match current {
            Some(_) => Ok(Edit::Delete),
            None => Err(missing.clone()),
        })?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }

    /// One page of every document of `kind`, as `{field: [...], NextMarker}` (at most 50 a page).
    pub(super) fn list_page<T: DeserializeOwned + serde::Serialize>(
        &self,
        name: &str,
        kind: &str,
        field: &str,
        p: &Page,
    ) -> Result<Reply, ApiError> {
        self.require_function(name)?;
        let all = self.resources_of::<T>(name, kind)?;
        let (items, next) = page(all, p, 50)?;
        let mut body = serde_json::json!({ field: items });
        if let Some(m) = next {
            body["NextMarker"] = m.into();
        }
        Reply::json(StatusCode::OK, body)
    }

    /// Edits one resource in a store transaction and publishes the change-feed revision.
    pub(super) fn edit(
        &self,
        name: &str,
        kind: &str,
        key: &str,
        f: &mut EditFn<'_>,
    ) -> Result<(), ApiError> {
        match self.store.edit_resource(&self.account, name, kind, key, f) {
            Ok(rev) => {
                self.committed(rev);
                Ok(())
            }
            Err(EditError::FunctionNotFound) => Err(self.function_not_found(name, None)),
            Err(EditError::Rejected(e)) => Err(e),
            Err(EditError::Store(e)) => Err(store_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::PutFunctionConcurrencyRequest;

    #[test]
    fn bodies_name_the_wrong_field() {
        let e =
            parse_json::<PutFunctionConcurrencyRequest>(br#"{"ReservedConcurrentExecutions":"x"}"#)
                .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("ReservedConcurrentExecutions"),
            "{}",
            e.message
        );
        assert!(parse_json::<PutFunctionConcurrencyRequest>(b"{} x").is_err());
        assert!(parse_json::<PutFunctionConcurrencyRequest>(b"[1]").is_err());
        let ok = parse_json::<PutFunctionConcurrencyRequest>(
            br#"{"Unknown": [1], "ReservedConcurrentExecutions": 3}"#,
        )
        .unwrap();
        assert_eq!(ok.reserved_concurrent_executions, Some(3));
        assert!(parse_json::<PutFunctionConcurrencyRequest>(b"  ").is_ok());
    }

    #[test]
    fn paging() {
        let items: Vec<(String, u32)> = (1..=5).map(|i| (format!("k{i}"), i)).collect();
        let p = |m: Option<&str>, n: Option<&str>| Page {
            marker: m.map(str::to_string),
            max_items: n.map(str::to_string),
        };
        assert_eq!(
            page(items.clone(), &p(None, Some("2")), 50).unwrap(),
            (vec![1, 2], Some("k2".into()))
        );
        assert_eq!(
            page(items.clone(), &p(Some("k2"), Some("3")), 50).unwrap(),
            (vec![3, 4, 5], None)
        );
        assert!(page(items.clone(), &p(None, Some("0")), 50).is_err());
        assert!(page(items, &p(None, Some("x")), 50).is_err());
        let keyed = vec![("$LATEST".to_string(), 0), ("live".to_string(), 1)];
        assert_eq!(
            page(keyed.clone(), &p(None, None), 50).unwrap(),
            (vec![0, 1], None)
        );
        assert_eq!(
            page(keyed.clone(), &p(None, Some("1")), 50).unwrap(),
            (vec![0], Some("$LATEST".into()))
        );
        assert_eq!(
            page(keyed, &p(Some("$LATEST"), None), 50).unwrap(),
            (vec![1], None)
        );
    }
}
