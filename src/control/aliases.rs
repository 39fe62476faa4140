//! Aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases, and the lookup the
//! resolve phase uses to route `name:alias` invokes.

use super::resource_action::Page;
use super::resources::{constraint, decode, encode, page, parse_json, required, revision_id};
use super::{Control, Reply, validate};
use crate::api::ApiError;
use crate::api::types::{
    AliasConfiguration, AliasRoutingConfiguration, CreateAliasRequest, UpdateAliasRequest,
};
use crate::store::resources::kind::ALIAS;
use crate::store::{Edit, FunctionView};
use http::StatusCode;
use std::collections::BTreeMap;

const LATEST: &str = "$LATEST";

/// A validated CreateAlias body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlias {
    pub name: String,
    pub function_version: String,
    pub description: String,
    pub weights: BTreeMap<String, f64>,
}

/// A validated UpdateAlias body: `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AliasUpdate {
    pub function_version: Option<String>,
    pub description: Option<String>,
    /// An empty map removes the routing configuration.
    pub weights: Option<BTreeMap<String, f64>>,
    pub revision_id: Option<String>,
}

/// Whether `q` names an alias rather than `$LATEST` or a version number.
pub fn is_alias_name(q: &str) -> bool {
    q != LATEST && !q.bytes().all(|b| b.is_ascii_digit())
}

fn alias_name(name: &str) -> Result<(), ApiError> {
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() || name.len() > 128 || !chars_ok || !is_alias_name(name) {
        return Err(constraint(
            name,
            "name",
            "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+) and have length from 1 to 128",
        ));
    }
    Ok(())
}

fn version_name(v: &str, field: &str) -> Result<(), ApiError> {
    let number = !v.is_empty() && v.len() <= 1024 && v.bytes().all(|b| b.is_ascii_digit());
    if v != LATEST && !number {
        return Err(constraint(
            v,
            field,
            "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)",
        ));
    }
    Ok(())
}

fn weights(routing: Option<AliasRoutingConfiguration>) -> Result<BTreeMap<String, f64>, ApiError> {
    let w = routing.unwrap_or_default().additional_version_weights;
    for (version, weight) in &w {
        version_name(version, "routingConfig.additionalVersionWeights")?;
        if !(0.0..=1.0).contains(weight) {
            return Err(constraint(
                weight,
                "routingConfig.additionalVersionWeights",
                "Member must have value between 0.0 and 1.0",
            ));
        }
    }
    if w.len() > 1 {
        return Err(ApiError::invalid_parameter(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    Ok(w)
}

/// The rules that tie the primary version to the routing configuration.
fn check_routing(primary: &str, weights: &BTreeMap<String, f64>) -> Result<(), ApiError> {
    if weights.is_empty() {
        return Ok(());
    }
    if primary == LATEST || weights.contains_key(LATEST) {
        return Err(ApiError::invalid_parameter(
            "$LATEST is not supported for an alias pointing to more than 1 version",
        ));
    }
    if weights.contains_key(primary) {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid function version {primary}. Function version {primary} is already included in routing configuration."
        )));
    }
    Ok(())
}

fn description(d: Option<&str>) -> Result<String, ApiError> {
    validate::description(d)
}

/// Parses and validates a CreateAlias body (pure: nothing is looked up).
pub fn parse_create_alias(body: &[u8]) -> Result<NewAlias, ApiError> {
    let req: CreateAliasRequest = parse_json(body)?;
    let name = required(req.name, "name")?;
    alias_name(&name)?;
    let function_version = required(req.function_version, "functionVersion")?;
    version_name(&function_version, "functionVersion")?;
    let weights = weights(req.routing_config)?;
    check_routing(&function_version, &weights)?;
    Ok(NewAlias {
        name,
        function_version,
        description: description(req.description.as_deref())?,
        weights,
    })
}

/// Parses and validates an UpdateAlias body (pure).
pub fn parse_update_alias(body: &[u8]) -> Result<AliasUpdate, ApiError> {
    let req: UpdateAliasRequest = parse_json(body)?;
    if let Some(v) = &req.function_version {
        version_name(v, "functionVersion")?;
    }
    let description = match req.description.as_deref() {
        Some(d) => Some(description(Some(d))?),
        None => None,
    };
    let weights = match req.routing_config {
        Some(r) => Some(weights(Some(r))?),
        None => None,
    };
    Ok(AliasUpdate {
        function_version: req.function_version,
        description,
        weights,
        revision_id: req.revision_id,
    })
}

impl Control {
    fn alias_arn(&self, name: &str, alias: &str) -> String {
        self.arn(name, Some(alias))
    }

    fn alias_not_found(&self, name: &str, alias: &str) -> ApiError {
        ApiError::not_found(format!("Alias not found: {}", self.alias_arn(name, alias)))
    }

    /// 404 unless every version the alias routes to exists (inside the edit's transaction).
    fn alias_versions_exist(
        &self,
        name: &str,
        a: &AliasConfiguration,
        view: &FunctionView,
    ) -> Result<(), ApiError> {
        let extra = a
            .routing_config
            .iter()
            .flat_map(|r| r.additional_version_weights.keys());
        for v in std::iter::once(&a.function_version).chain(extra) {
            if v != LATEST && !view.versions.contains(v) {
                return Err(self.function_not_found(name, Some(v)));
            }
        }
        Ok(())
    }

    pub(super) fn create_alias(&self, name: &str, body: &[u8]) -> Result<Reply, ApiError> {
        let new = parse_create_alias(body)?;
        let alias = AliasConfiguration {
            alias_arn: self.alias_arn(name, &new.name),
            name: new.name.clone(),
            function_version: new.function_version,
            description: new.description,
            routing_config: (!new.weights.is_empty()).then_some(AliasRoutingConfiguration {
                additional_version_weights: new.weights,
            }),
            revision_id: revision_id(),
        };
        let json = encode(&alias)?;
        self.edit(name, ALIAS, &new.name, &mut |current, view| {
            if current.is_some() {
                return Err(ApiError::conflict(format!(
                    "Alias already exists: {}",
                    alias.alias_arn
                )));
            }
            self.alias_versions_exist(name, &alias, view)?;
            Ok(Edit::Put(json.clone()))
        })?;
        Reply::json(StatusCode::CREATED, &alias)
    }

    /// The stored alias, or 404 (the function's or the alias's).
    pub fn alias(&self, name: &str, alias: &str) -> Result<AliasConfiguration, ApiError> {
        match self.resource::<AliasConfiguration>(name, ALIAS, alias)? {
            Some(a) => Ok(a),
            None => {
                self.require_function(name)?;
                Err(self.alias_not_found(name, alias))
            }
        }
    }

    pub(super) fn get_alias(&self, name: &str, alias: &str) -> Result<Reply, ApiError> {
        Reply::json(StatusCode::OK, self.alias(name, alias)?)
    }

    pub(super) fn update_alias(
        &self,
        name: &str,
        alias: &str,
        body: &[u8],
    ) -> Result<Reply, ApiError> {
        let upd = parse_update_alias(body)?;
        let mut updated = None;
        self.edit(name, ALIAS, alias, &mut |current, view| {
            let mut a: AliasConfiguration = decode(current.ok_or_else(|| self.alias_not_found(name, alias))?)?;
            if upd.revision_id.as_ref().is_some_and(|r| *r != a.revision_id) {
                return Err(ApiError::precondition_failed(
                    "The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve the latest Revision Id",
                ));
            }
            if let Some(v) = &upd.function_version {
                a.function_version = v.clone();
            }
            if let Some(d) = &upd.description {
                a.description = d.clone();
            }
            if let Some(w) = &upd.weights {
                a.routing_config = (!w.is_empty()).then(|| AliasRoutingConfiguration {
                    additional_version_weights: w.clone(),
                });
            }
            let weights = a.routing_config.clone().unwrap_or_default().additional_version_weights;
            check_routing(&a.function_version, &weights)?;
            self.alias_versions_exist(name, &a, view)?;
            a.revision_id = revision_id();
            let json = encode(&a)?;
            updated = Some(a);
            Ok(Edit::Put(json))
        })?;
        Reply::json(StatusCode::OK, updated)
    }

    pub(super) fn delete_alias(&self, name: &str, alias: &str) -> Result<Reply, ApiError> {
        self.delete_existing(name, ALIAS, alias, self.alias_not_found(name, alias))
    }

    pub(super) fn list_aliases(
        &self,
        name: &str,
        version: Option<&str>,
        p: &Page,
    ) -> Result<Reply, ApiError> {
        self.require_function(name)?;
        let all = self.resources_of::<AliasConfiguration>(name, ALIAS)?;
        let matching = all
            .into_iter()
            .filter(|(_, a)| version.is_none_or(|v| a.function_version == v))
            .collect();
        let (aliases, next) = page(matching, p, 10_000)?;
        let mut body = serde_json::json!({ "Aliases": aliases });
        if let Some(m) = next {
            body["NextMarker"] = m.into();
        }
        Reply::json(StatusCode::OK, body)
    }

    /// The 409 for deleting a version that aliases route to.
    pub(super) fn version_in_use(&self, name: &str, version: &str) -> ApiError {
        let using: Vec<String> = self
            .resources_of::<AliasConfiguration>(name, ALIAS)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, a)| {
                a.function_version == version
                    || a.routing_config
                        .as_ref()
                        .is_some_and(|r| r.additional_version_weights.contains_key(version))
            })
            .map(|(k, _)| k)
            .collect();
        ApiError::conflict(format!(
            "Unable to delete version because the following aliases reference it: [{}]",
            using.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies() {
        let ok = parse_create_alias(
            br#"{"Name":"live","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":0.1}},"X":1}"#,
        )
        .unwrap();
        assert_eq!(ok.weights.get("2"), Some(&0.1));
        for (body, needle) in [
            (r#"{"Name":"123","FunctionVersion":"1"}"#, "name"),
            (r#"{"Name":"$LATEST","FunctionVersion":"1"}"#, "name"),
            (r#"{"Name":"a/b","FunctionVersion":"1"}"#, "name"),
            (r#"{"FunctionVersion":"1"}"#, "name"),
            (r#"{"Name":"a"}"#, "functionVersion"),
            (r#"{"Name":"a","FunctionVersion":"x"}"#, "functionVersion"),
            (r#"{"Name":"a","FunctionVersion":1}"#, "FunctionVersion"),
            (
                r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":1.5}}}"#,
                "0.0 and 1.0",
            ),
            (
                r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":-0.1}}}"#,
                "0.0 and 1.0",
            ),
            (
                r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":0.1,"3":0.1}}}"#,
                "greater than 1",
            ),
            (
                r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"1":0.1}}}"#,
                "already included",
            ),
            (
                r#"{"Name":"a","FunctionVersion":"$LATEST","RoutingConfig":{"AdditionalVersionWeights":{"1":0.1}}}"#,
                "$LATEST",
            ),
            (
                r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":"x"}}}"#,
                "AdditionalVersionWeights",
            ),
            (
                r#"{"Name":"a","FunctionVersion":"1","Description":7}"#,
                "Description",
            ),
        ] {
            let e = parse_create_alias(body.as_bytes()).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
            assert!(e.message.contains(needle), "{body}: {}", e.message);
        }
    }

    #[test]
    fn alias_names() {
        assert!(is_alias_name("live") && is_alias_name("v1"));
        assert!(!is_alias_name("12") && !is_alias_name("$LATEST"));
    }
}
