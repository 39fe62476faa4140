//! Function URLs: Create/Get/Update/DeleteFunctionUrlConfig, ListFunctionUrlConfigs. The URL is
//! `<public base>/fn/<name>[:<alias>]/`, where the router gives the base (the `public_url`
//! config key, else its bound address); it is built on every answer, so a changed base shows
//! at once. The router serves it (`src/router/url.rs`).

use super::resource_action::Page;
use super::resources::{constraint, decode, encode, page, parse_json, required};
use super::{Control, Reply};
use crate::api::ApiError;
use crate::api::types::{Cors, FunctionUrlConfig, FunctionUrlConfigRequest};
use crate::store::Edit;
use crate::store::resources::kind::URL;
use http::StatusCode;

const AUTH_TYPES: &[&str] = &["NONE", "AWS_IAM"];
const INVOKE_MODES: &[&str] = &["BUFFERED", "RESPONSE_STREAM"];

/// A validated Create/UpdateFunctionUrlConfig body: `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UrlInput {
    pub auth_type: Option<String>,
    pub cors: Option<Cors>,
    pub invoke_mode: Option<String>,
}

fn one_of(v: &str, field: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if !allowed.contains(&v) {
        return Err(constraint(
            v,
            field,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

fn cors(c: &Cors) -> Result<(), ApiError> {
    if let Some(age) = c.max_age
        && !(0..=86400).contains(&age)
    {
        return Err(constraint(
            age,
            "cors.maxAge",
            "Member must have value between 0 and 86400",
        ));
    }
    let lists = [
        ("cors.allowHeaders", &c.allow_headers, 1024),
        ("cors.allowMethods", &c.allow_methods, 6),
        ("cors.allowOrigins", &c.allow_origins, 253),
        ("cors.exposeHeaders", &c.expose_headers, 1024),
    ];
    for (field, list, max_len) in lists {
        let list = list.as_deref().unwrap_or_default();
        if list.len() > 100 {
            return Err(constraint(
                list.len(),
                field,
                "Member must have length less than or equal to 100",
            ));
        }
        if let Some(bad) = list.iter().find(|s| s.is_empty() || s.len() > max_len) {
            return Err(constraint(
                bad,
                field,
                &format!("Member must have length from 1 to {max_len}"),
            ));
        }
    }
    Ok(())
}

fn parse_url(body: &[u8]) -> Result<UrlInput, ApiError> {
    let req: FunctionUrlConfigRequest = parse_json(body)?;
    if let Some(a) = &req.auth_type {
        one_of(a, "authType", AUTH_TYPES)?;
    }
    if let Some(m) = &req.invoke_mode {
        one_of(m, "invokeMode", INVOKE_MODES)?;
    }
    if let Some(c) = &req.cors {
        cors(c)?;
    }
    Ok(UrlInput {
        auth_type: req.auth_type,
        cors: req.cors,
        invoke_mode: req.invoke_mode,
    })
}

/// Parses and validates a CreateFunctionUrlConfig body (pure): `AuthType` is required.
pub fn parse_create_url(body: &[u8]) -> Result<UrlInput, ApiError> {
    let input = parse_url(body)?;
    required(input.auth_type.as_ref(), "authType")?;
    Ok(input)
}

/// Parses and validates an UpdateFunctionUrlConfig body (pure).
pub fn parse_update_url(body: &[u8]) -> Result<UrlInput, ApiError> {
    parse_url(body)
}

/// The store key of a URL: `$LATEST` for the unqualified function (a URL qualifier cannot be
/// `$LATEST`, and the key sorts first), else an alias name (not a version).
fn url_qualifier(q: Option<&str>) -> Result<&str, ApiError> {
    match q {
        None => Ok("$LATEST"),
        Some(q) if super::aliases::is_alias_name(q) => Ok(q),
        Some(q) => Err(constraint(
            q,
            "qualifier",
            "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)",
        )),
    }
}

/// `base_url` when it is `http(s)://` and a plain host.
fn checked_base(base_url: &str) -> Result<&str, ApiError> {
    let host = base_url
        .strip_prefix("http://")
        .or_else(|| base_url.strip_prefix("https://"))
        .unwrap_or("");
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if !ok {
        return Err(ApiError::invalid_parameter(
            "The public base URL is not a valid http(s) URL.",
        ));
    }
    Ok(base_url)
}

/// `2024-01-01T00:00:00.000000Z`.
fn now_iso() -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}

/// `{base}/fn/{name}[:{alias}]/`, the name and alias taken from the config's function ARN.
fn function_url(base_url: &str, function_arn: &str) -> Result<String, ApiError> {
    let shown = function_arn
        .split_once(":function:")
        .map(|(_, s)| s)
        .unwrap_or(function_arn);
    Ok(format!("{}/fn/{shown}/", checked_base(base_url)?))
}

/// The config as answered: `FunctionUrl` built from the current base.
fn shown(mut c: FunctionUrlConfig, base_url: &str) -> Result<FunctionUrlConfig, ApiError> {
    c.function_url = function_url(base_url, &c.function_arn)?;
    Ok(c)
}

fn without_last_modified(c: &FunctionUrlConfig) -> Result<serde_json::Value, ApiError> {
    let mut v = serde_json::to_value(c).map_err(|e| ApiError::service(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("LastModifiedTime");
    }
    Ok(v)
}

impl Control {
    fn url_not_found(&self) -> ApiError {
        ApiError::not_found("The resource you requested does not exist.")
    }

    /// The function's URL configuration (for the router, later).
    pub fn url_config(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<FunctionUrlConfig>, ApiError> {
        self.resource(name, URL, url_qualifier(qualifier)?)
    }

    pub(super) fn create_url(
        &self,
        name: &str,
        qualifier: Option<String>,
        body: &[u8],
        base_url: &str,
    ) -> Result<Reply, ApiError> {
        let key = url_qualifier(qualifier.as_deref())?;
        let input = parse_create_url(body)?;
        let now = now_iso();
        let function_arn = self.arn(name, qualifier.as_deref());
        let config = FunctionUrlConfig {
            function_url: function_url(base_url, &function_arn)?,
            function_arn,
            auth_type: input.auth_type.unwrap_or_default(),
            cors: input.cors,
            creation_time: now.clone(),
            last_modified_time: now,
            invoke_mode: input.invoke_mode.unwrap_or_else(|| "BUFFERED".into()),
        };
        let json = encode(&config)?;
        self.edit(name, URL, key, &mut |current, view| {
            if qualifier.is_some() && !view.aliases.iter().any(|a| a == key) {
                return Err(self.function_not_found(name, Some(key)));
            }
            if current.is_some() {
                return Err(ApiError::conflict(format!(
                    "Failed to create function url config for [functionArn = {}]. Error message: FunctionUrlConfig exists for this Lambda function",
                    config.function_arn
                )));
            }
            Ok(Edit::Put(json.clone()))
        })?;
        Reply::json(StatusCode::CREATED, without_last_modified(&config)?)
    }

    pub(super) fn get_url(
        &self,
        name: &str,
        qualifier: Option<&str>,
        base_url: &str,
    ) -> Result<Reply, ApiError> {
        match self.url_config(name, qualifier)? {
            Some(c) => Reply::json(StatusCode::OK, shown(c, base_url)?),
            None => {
                self.require_function(name)?;
                Err(self.url_not_found())
            }
        }
    }

    pub(super) fn update_url(
        &self,
        name: &str,
        qualifier: Option<&str>,
        body: &[u8],
        base_url: &str,
    ) -> Result<Reply, ApiError> {
        let key = url_qualifier(qualifier)?;
        let input = parse_update_url(body)?;
        let mut updated = None;
        self.edit(name, URL, key, &mut |current, _| {
            let mut c: FunctionUrlConfig = decode(current.ok_or_else(|| self.url_not_found())?)?;
            if let Some(a) = &input.auth_type {
                c.auth_type = a.clone();
            }
            if let Some(cors) = &input.cors {
                c.cors = Some(cors.clone());
            }
            if let Some(m) = &input.invoke_mode {
                c.invoke_mode = m.clone();
            }
            c.last_modified_time = now_iso();
            let json = encode(&c)?;
            updated = Some(c);
            Ok(Edit::Put(json))
        })?;
        let updated = updated.map(|c| shown(c, base_url)).transpose()?;
        Reply::json(StatusCode::OK, updated)
    }

    pub(super) fn delete_url(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let key = url_qualifier(qualifier)?;
        self.delete_existing(name, URL, key, self.url_not_found())
    }

    pub(super) fn list_urls(
        &self,
        name: &str,
        p: &Page,
        base_url: &str,
    ) -> Result<Reply, ApiError> {
        self.require_function(name)?;
        let all = self.resources_of::<FunctionUrlConfig>(name, URL)?;
        let all = all
            .into_iter()
            .map(|(k, c)| Ok((k, shown(c, base_url)?)))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let (items, next) = page(all, p, 50)?;
        let mut body = serde_json::json!({ "FunctionUrlConfigs": items });
        if let Some(m) = next {
            body["NextMarker"] = m.into();
        }
        Reply::json(StatusCode::OK, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let ok =
            parse_create_url(br#"{"AuthType":"NONE","Cors":{"AllowOrigins":["*"],"MaxAge":60}}"#)
                .unwrap();
        assert_eq!(ok.cors.unwrap().max_age, Some(60));
        for (b, needle) in [
            (r#"{}"#, "authType"),
            (r#"{"AuthType":"BASIC"}"#, "authType"),
            (r#"{"AuthType":"NONE","InvokeMode":"FAST"}"#, "invokeMode"),
            (r#"{"AuthType":"NONE","Cors":{"MaxAge":86401}}"#, "maxAge"),
            (
                r#"{"AuthType":"NONE","Cors":{"AllowMethods":["DELETEX"]}}"#,
                "allowMethods",
            ),
            (
                r#"{"AuthType":"NONE","Cors":{"AllowCredentials":"yes"}}"#,
                "AllowCredentials",
            ),
            (r#"{"AuthType":"NONE","Cors":[]}"#, "Cors"),
        ] {
            let e = parse_create_url(b.as_bytes()).unwrap_err();
            assert_eq!(e.status, 400, "{b}");
            assert!(e.message.contains(needle), "{b}: {}", e.message);
        }
        assert!(parse_update_url(b"{}").is_ok());
    }

    #[test]
    fn hosts() {
        assert!(checked_base("http://127.0.0.1:8080").is_ok());
        assert!(checked_base("http://[::1]:80").is_ok());
        assert!(checked_base("http://evil/\"x").is_err());
        assert!(checked_base("http://").is_err());
        assert!(checked_base("https://fn.example.com").is_ok());
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:f:live";
        assert_eq!(
            function_url("http://h:1", arn).unwrap(),
            "http://h:1/fn/f:live/"
        );
        assert!(url_qualifier(Some("1")).is_err());
        assert!(url_qualifier(Some("$LATEST")).is_err());
        assert_eq!(url_qualifier(Some("live")).unwrap(), "live");
    }
}
