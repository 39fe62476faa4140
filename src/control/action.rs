//! Management requests as one typed action: `match (method, path)` in one place.

use super::resource_action::{ResourceAction, is_resource_path};
use crate::api::ApiError;
use crate::api::names::{FunctionRef, merge_qualifier, parse_function_name};
use http::Method;

/// A management operation with its path and query parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    List {
        marker: Option<String>,
        max_items: Option<String>,
    },
    Get {
        name: String,
        qualifier: Option<String>,
    },
    GetConfiguration {
        name: String,
        qualifier: Option<String>,
    },
    UpdateCode {
        name: String,
    },
    UpdateConfiguration {
        name: String,
    },
    Delete {
        name: String,
        qualifier: Option<String>,
    },
    Publish {
        name: String,
    },
    ListVersions {
        name: String,
    },
    /// Aliases, concurrency, URLs, event invoke configs, permissions, tags.
    Resource(ResourceAction),
    PutProvisioned {
        name: String,
        qualifier: Option<String>,
    },
    GetProvisioned {
        name: String,
        qualifier: Option<String>,
    },
    DeleteProvisioned {
        name: String,
        qualifier: Option<String>,
    },
    ListProvisioned {
        name: String,
    },
    /// Timer triggers (`/hearth/v1/triggers`).
    Trigger(super::TriggerAction),
}

/// Whether a path belongs to the management API (the router forwards these to control).
pub fn is_management_path(path: &str) -> bool {
    path.starts_with("/2015-03-31/functions")
        || is_resource_path(path)
        || super::triggers::is_trigger_path(path)
}

/// Decodes a percent-encoded path segment.
pub fn decode_segment(seg: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::invalid_parameter("function name is not valid UTF-8"))
}

/// The value of a query parameter (percent-decoded; `+` is a space).
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

impl Action {
    /// `/2019-09-30/functions/{name}/provisioned-concurrency[?Qualifier=|?List=ALL]`.
    fn parse_provisioned(
        method: &Method,
        path: &str,
        query: &str,
        account: &str,
    ) -> Option<Result<Action, ApiError>> {
        let f = path
            .strip_prefix("/2019-09-30/functions/")?
            .strip_suffix("/provisioned-concurrency")?;
        Some((|| {
            let FunctionRef { name, qualifier } =
                parse_function_name(&decode_segment(f)?, account)?;
            let qualifier = merge_qualifier(qualifier, query_param(query, "Qualifier").as_deref())?;
            Ok(match *method {
                Method::GET if query_param(query, "List").is_some() => {
                    Action::ListProvisioned { name }
                }
                Method::GET => Action::GetProvisioned { name, qualifier },
                Method::PUT => Action::PutProvisioned { name, qualifier },
                Method::DELETE => Action::DeleteProvisioned { name, qualifier },
                _ => {
                    return Err(ApiError::unknown_operation(format!(
                        "Unknown operation: {method} {path}"
                    )));
                }
            })
        })())
    }

    /// Maps method, path and query to an action; unknown paths are a Lambda-style 404.
    pub fn parse(
        method: &Method,
        path: &str,
        query: &str,
        account: &str,
    ) -> Result<Action, ApiError> {
        if let Some(a) = Self::parse_provisioned(method, path, query, account) {
            return a;
        }
        if let Some(t) = super::TriggerAction::parse(method, path) {
            return t.map(Action::Trigger);
        }
        if let Some(r) = ResourceAction::parse(method, path, query, account) {
            return r.map(Action::Resource);
        }
        let rest = path.strip_prefix("/2015-03-31/functions").unwrap_or("");
        if !rest.is_empty() && !rest.starts_with('/') {
            return Err(ApiError::unknown_operation(format!(
                "Unknown operation: {method} {path}"
            )));
        }
        let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let fref = |seg: &str, q: Option<String>| -> Result<(String, Option<String>), ApiError> {
            let FunctionRef { name, qualifier } =
                parse_function_name(&decode_segment(seg)?, account)?;
            Ok((name, merge_qualifier(qualifier, q.as_deref())?))
        };
        let unqualified = |seg: &str| -> Result<String, ApiError> {
            let (name, q) = fref(seg, None)?;
            match q {
                None => Ok(name),
                Some(_) => Err(ApiError::invalid_parameter(
                    "This operation does not take a qualified function name.",
                )),
            }
        };
        let qual = query_param(query, "Qualifier");
        let m = method.clone();
        match (m, segs.as_slice()) {
            (Method::POST, [""]) => Ok(Action::Create),
            (Method::GET, [""]) => Ok(Action::List {
                marker: query_param(query, "Marker"),
                max_items: query_param(query, "MaxItems"),
            }),
            (Method::GET, [f]) => {
                fref(f, qual).map(|(name, qualifier)| Action::Get { name, qualifier })
            }
            (Method::DELETE, [f]) => {
                fref(f, qual).map(|(name, qualifier)| Action::Delete { name, qualifier })
            }
            (Method::GET, [f, "configuration"]) => {
                fref(f, qual).map(|(name, qualifier)| Action::GetConfiguration { name, qualifier })
            }
            (Method::PUT, [f, "configuration"]) => {
                unqualified(f).map(|name| Action::UpdateConfiguration { name })
            }
            (Method::PUT, [f, "code"]) => unqualified(f).map(|name| Action::UpdateCode { name }),
            (Method::POST, [f, "versions"]) => unqualified(f).map(|name| Action::Publish { name }),
            (Method::GET, [f, "versions"]) => {
                unqualified(f).map(|name| Action::ListVersions { name })
            }
            (method, _) => Err(ApiError::unknown_operation(format!(
                "Unknown operation: {method} {path}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const A: &str = "000000000000";

    #[test]
    fn routes() {
        assert_eq!(
            Action::parse(&Method::POST, "/2015-03-31/functions", "", A).unwrap(),
            Action::Create
        );
        assert!(matches!(
            Action::parse(&Method::GET, "/2015-03-31/functions/", "MaxItems=2", A).unwrap(),
            Action::List { .. }
        ));
        assert_eq!(
            Action::parse(&Method::GET, "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af", "Qualifier=1", A).unwrap(),
            Action::Get { name: "f".into(), qualifier: Some("1".into()) }
        );
        assert_eq!(
            Action::parse(&Method::PUT, "/2015-03-31/functions/f/code", "", A).unwrap(),
            Action::UpdateCode { name: "f".into() }
        );
    }

    #[test]
    fn hostile_paths() {
        for p in [
            "/2015-03-31/functions/f/x",
            "/2015-03-31/functions/f/code/extra",
            "/2015-03-31/functionsX",
        ] {
            assert!(Action::parse(&Method::GET, p, "", A).is_err(), "{p}");
        }
        assert_eq!(
            Action::parse(&Method::GET, "/2015-03-31/functions/%FF", "", A)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            Action::parse(&Method::PUT, "/2015-03-31/functions/f:1/code", "", A)
                .unwrap_err()
                .status,
            400
        );
    }
}
