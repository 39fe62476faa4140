//! Management requests on a function's resources (aliases, concurrency, URLs, event invoke
//! configs, permissions, tags) as one typed action: `match (method, path)` in one place.
//! [`super::Action::parse`] hands these paths here.

use super::action::{decode_segment, query_param};
use crate::api::ApiError;
use crate::api::names::{FunctionRef, merge_qualifier, parse_function_name};
use http::Method;

/// API-version prefixes of resource operations outside `/2015-03-31/functions`.
const PREFIXES: &[&str] = &[
    "/2017-10-31/functions/",
    "/2019-09-30/functions/",
    "/2021-10-31/functions/",
    "/2019-09-25/functions/",
    "/2017-03-31/tags/",
];

/// Sub-resources of `/2015-03-31/functions/{name}/` handled here.
const FUNCTION_SUBRESOURCES: &[&str] = &["aliases", "policy"];

/// A resource operation with its path and query parameters. `name` is the bare function
/// name; `qualifier` comes from `name:qualifier` or `?Qualifier=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceAction {
    CreateAlias {
        name: String,
    },
    ListAliases {
        name: String,
        function_version: Option<String>,
        page: Page,
    },
    GetAlias {
        name: String,
        alias: String,
    },
    UpdateAlias {
        name: String,
        alias: String,
    },
    DeleteAlias {
        name: String,
        alias: String,
    },
    PutConcurrency {
        name: String,
    },
    GetConcurrency {
        name: String,
    },
    DeleteConcurrency {
        name: String,
    },
    CreateUrl {
        name: String,
        qualifier: Option<String>,
    },
    GetUrl {
        name: String,
        qualifier: Option<String>,
    },
    UpdateUrl {
        name: String,
        qualifier: Option<String>,
    },
    DeleteUrl {
        name: String,
        qualifier: Option<String>,
    },
    ListUrls {
        name: String,
        page: Page,
    },
    PutEventInvoke {
        name: String,
        qualifier: Option<String>,
    },
    UpdateEventInvoke {
        name: String,
        qualifier: Option<String>,
    },
    GetEventInvoke {
        name: String,
        qualifier: Option<String>,
    },
    DeleteEventInvoke {
        name: String,
        qualifier: Option<String>,
    },
    ListEventInvoke {
        name: String,
        page: Page,
    },
    AddPermission {
        name: String,
        qualifier: Option<String>,
    },
    RemovePermission {
        name: String,
        qualifier: Option<String>,
        sid: String,
        revision_id: Option<String>,
    },
    GetPolicy {
        name: String,
        qualifier: Option<String>,
    },
    TagResource {
        name: String,
    },
    UntagResource {
        name: String,
        keys: Vec<String>,
    },
    ListTags {
        name: String,
    },
}

/// `Marker` and `MaxItems` of a list operation (validated by the handler).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub marker: Option<String>,
    pub max_items: Option<String>,
}

impl Page {
    fn from_query(query: &str) -> Page {
        Page {
            marker: query_param(query, "Marker"),
            max_items: query_param(query, "MaxItems"),
        }
    }
}

/// Whether the router should send `path` to the control service as a resource operation.
pub fn is_resource_path(path: &str) -> bool {
    PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Every value of a repeated query parameter (percent-decoded; `+` is a space).
pub fn query_params(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
        .collect()
}

fn unknown(method: &Method, path: &str) -> ApiError {
    ApiError::unknown_operation(format!("Unknown operation: {method} {path}"))
}

/// A function segment: (name, qualifier from the name or `Qualifier`).
fn function(seg: &str, query: &str, account: &str) -> Result<(String, Option<String>), ApiError> {
    let FunctionRef { name, qualifier } = parse_function_name(&decode_segment(seg)?, account)?;
    let param = query_param(query, "Qualifier").filter(|q| !q.is_empty());
    Ok((name, merge_qualifier(qualifier, param.as_deref())?))
}

/// A function segment that must not carry a qualifier.
fn unqualified(seg: &str, account: &str) -> Result<String, ApiError> {
    match function(seg, "", account)? {
        (name, None) => Ok(name),
        _ => Err(ApiError::invalid_parameter(
            "This operation does not take a qualified function name.",
        )),
    }
}

/// An alias name from a path segment (validated by the handler).
fn segment(seg: &str) -> Result<String, ApiError> {
    let s = decode_segment(seg)?;
    if s.is_empty() {
        return Err(ApiError::invalid_parameter("A path segment is empty."));
    }
    Ok(s)
}

/// The function named by a tags path: an unqualified function ARN.
fn tagged_function(seg: &str, account: &str) -> Result<String, ApiError> {
    let arn = decode_segment(seg)?;
    if !arn.starts_with("arn:") {
        return Err(ApiError::invalid_parameter(format!(
            "1 validation error detected: Value '{}' at 'resource' failed to satisfy constraint: \
             Member must be a function ARN",
            arn.chars().take(256).collect::<String>()
        )));
    }
    match parse_function_name(&arn, account)? {
        FunctionRef {
            name,
            qualifier: None,
        } => Ok(name),
        _ => Err(ApiError::invalid_parameter(
            "Tags are supported on functions only, not on versions or aliases.",
        )),
    }
}

impl ResourceAction {
    /// `None` when the path is not a resource operation; otherwise the action or a
    /// Lambda-style error (unknown operation 404, bad name 400).
    pub fn parse(
        method: &Method,
        path: &str,
        query: &str,
        account: &str,
    ) -> Option<Result<ResourceAction, ApiError>> {
        let (api, rest) = path.get(1..)?.split_once('/')?;
        let segs: Vec<&str> = rest.split('/').collect();
        let ours = match (api, segs.as_slice()) {
            ("2015-03-31", ["functions", _, sub, ..]) => FUNCTION_SUBRESOURCES.contains(sub),
            _ => is_resource_path(path),
        };
        ours.then(|| Self::parse_ours(method, path, api, &segs, query, account))
    }

    fn parse_ours(
        method: &Method,
        path: &str,
        api: &str,
        segs: &[&str],
        query: &str,
        account: &str,
    ) -> Result<ResourceAction, ApiError> {
        use ResourceAction as A;
        let q = query;
        let page = || Page::from_query(query);
        match (method.clone(), api, segs) {
            (Method::POST, "2015-03-31", ["functions", f, "aliases"]) => Ok(A::CreateAlias {
                name: unqualified(f, account)?,
            }),
            (Method::GET, "2015-03-31", ["functions", f, "aliases"]) => Ok(A::ListAliases {
                name: unqualified(f, account)?,
                function_version: query_param(q, "FunctionVersion"),
                page: page(),
            }),
            (m, "2015-03-31", ["functions", f, "aliases", a]) => {
                let (name, alias) = (unqualified(f, account)?, segment(a)?);
                match m {
                    Method::GET => Ok(A::GetAlias { name, alias }),
                    Method::PUT => Ok(A::UpdateAlias { name, alias }),
                    Method::DELETE => Ok(A::DeleteAlias { name, alias }),
                    _ => Err(unknown(method, path)),
                }
            }
            (Method::POST, "2015-03-31", ["functions", f, "policy"]) => {
                let (name, qualifier) = function(f, q, account)?;
                Ok(A::AddPermission { name, qualifier })
            }
            (Method::GET, "2015-03-31", ["functions", f, "policy"]) => {
                let (name, qualifier) = function(f, q, account)?;
                Ok(A::GetPolicy { name, qualifier })
            }
            (Method::DELETE, "2015-03-31", ["functions", f, "policy", sid]) => {
                let (name, qualifier) = function(f, q, account)?;
                let revision_id = query_param(q, "RevisionId");
                Ok(A::RemovePermission {
                    name,
                    qualifier,
                    sid: segment(sid)?,
                    revision_id,
                })
            }
            (Method::PUT, "2017-10-31", ["functions", f, "concurrency"]) => Ok(A::PutConcurrency {
                name: unqualified(f, account)?,
            }),
            (Method::DELETE, "2017-10-31", ["functions", f, "concurrency"]) => {
                Ok(A::DeleteConcurrency {
                    name: unqualified(f, account)?,
                })
            }
            (Method::GET, "2019-09-30", ["functions", f, "concurrency"]) => Ok(A::GetConcurrency {
                name: unqualified(f, account)?,
            }),
            (m, "2021-10-31", ["functions", f, "url"]) => {
                let (name, qualifier) = function(f, q, account)?;
                match m {
                    Method::POST => Ok(A::CreateUrl { name, qualifier }),
                    Method::GET => Ok(A::GetUrl { name, qualifier }),
                    Method::PUT => Ok(A::UpdateUrl { name, qualifier }),
                    Method::DELETE => Ok(A::DeleteUrl { name, qualifier }),
                    _ => Err(unknown(method, path)),
                }
            }
            (Method::GET, "2021-10-31", ["functions", f, "urls"]) => Ok(A::ListUrls {
                name: unqualified(f, account)?,
                page: page(),
            }),
            (m, "2019-09-25", ["functions", f, "event-invoke-config"]) => {
                let (name, qualifier) = function(f, q, account)?;
                match m {
                    Method::PUT => Ok(A::PutEventInvoke { name, qualifier }),
                    Method::POST => Ok(A::UpdateEventInvoke { name, qualifier }),
                    Method::GET => Ok(A::GetEventInvoke { name, qualifier }),
                    Method::DELETE => Ok(A::DeleteEventInvoke { name, qualifier }),
                    _ => Err(unknown(method, path)),
                }
            }
            (Method::GET, "2019-09-25", ["functions", f, "event-invoke-config", "list"]) => {
                Ok(A::ListEventInvoke {
                    name: unqualified(f, account)?,
                    page: page(),
                })
            }
            (m, "2017-03-31", ["tags", arn]) => {
                let name = tagged_function(arn, account)?;
                match m {
                    Method::POST => Ok(A::TagResource { name }),
                    Method::GET => Ok(A::ListTags { name }),
                    Method::DELETE => Ok(A::UntagResource {
                        name,
                        keys: query_params(q, "tagKeys"),
                    }),
                    _ => Err(unknown(method, path)),
                }
            }
            _ => Err(unknown(method, path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const A: &str = "000000000000";

    fn p(m: Method, path: &str, q: &str) -> Option<Result<ResourceAction, ApiError>> {
        ResourceAction::parse(&m, path, q, A)
    }

    #[test]
    fn routes() {
        assert_eq!(
            p(Method::POST, "/2015-03-31/functions/f/aliases", "")
                .unwrap()
                .unwrap(),
            ResourceAction::CreateAlias { name: "f".into() }
        );
        assert_eq!(
            p(Method::PUT, "/2015-03-31/functions/f/aliases/live", "")
                .unwrap()
                .unwrap(),
            ResourceAction::UpdateAlias {
                name: "f".into(),
                alias: "live".into()
            }
        );
        assert_eq!(
            p(Method::GET, "/2021-10-31/functions/f%3Alive/url", "")
                .unwrap()
                .unwrap(),
            ResourceAction::GetUrl {
                name: "f".into(),
                qualifier: Some("live".into())
            }
        );
        assert_eq!(
            p(
                Method::DELETE,
                "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af",
                "tagKeys=a&tagKeys=b+c"
            )
            .unwrap()
            .unwrap(),
            ResourceAction::UntagResource {
                name: "f".into(),
                keys: vec!["a".into(), "b c".into()]
            }
        );
        assert_eq!(
            p(
                Method::DELETE,
                "/2015-03-31/functions/f/policy/s1",
                "Qualifier=1&RevisionId=r"
            )
            .unwrap()
            .unwrap(),
            ResourceAction::RemovePermission {
                name: "f".into(),
                qualifier: Some("1".into()),
                sid: "s1".into(),
                revision_id: Some("r".into())
            }
        );
        assert!(p(Method::GET, "/2015-03-31/functions/f", "").is_none());
        assert!(p(Method::GET, "/2015-03-31/functions/f/versions", "").is_none());
    }

    #[test]
    fn hostile_paths() {
        for (m, path) in [
            (Method::PATCH, "/2015-03-31/functions/f/aliases/a"),
            (Method::GET, "/2015-03-31/functions/f/aliases/a/b"),
            (Method::GET, "/2017-10-31/functions/f/concurrency"),
            (
                Method::PUT,
                "/2019-09-30/functions/f/provisioned-concurrency",
            ),
            (Method::GET, "/2017-03-31/tags/"),
            (Method::GET, "/2017-03-31/tags/f"),
            (
                Method::GET,
                "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af%3A1",
            ),
            (Method::GET, "/2021-10-31/functions/%FF/url"),
            (Method::PUT, "/2017-10-31/functions/f:1/concurrency"),
        ] {
            assert!(p(m.clone(), path, "").unwrap().is_err(), "{m} {path}");
        }
        assert!(p(Method::GET, "/", "").is_none());
        assert!(p(Method::GET, "", "").is_none());
    }
}
