//! Tags: TagResource, UntagResource, ListTags (on function ARNs), and the `Tags` of
//! CreateFunction and GetFunction.

use super::resources::{constraint, decode, encode, parse_json, required};
use super::{Control, Reply};
use crate::api::ApiError;
use crate::api::types::TagResourceRequest;
use crate::store::Edit;
use crate::store::resources::kind::TAGS;
use http::StatusCode;
use std::collections::BTreeMap;

/// Most tags on one function.
pub const MAX_TAGS: usize = 50;

/// Checks tag keys and values (AWS's limits; `aws:` is reserved).
pub fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(constraint(
                k,
                "tags",
                "Member must have key length from 1 to 128",
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::invalid_parameter(format!(
                "Tag key {k} is reserved: keys may not start with aws:"
            )));
        }
        if v.chars().count() > 256 {
            return Err(constraint(
                k,
                "tags",
                "Member must have value length at most 256",
            ));
        }
    }
    too_many(tags.len())
}

fn too_many(n: usize) -> Result<(), ApiError> {
    if n > MAX_TAGS {
        return Err(ApiError::invalid_parameter(format!(
            "A function can have at most {MAX_TAGS} tags; this request would leave {n}."
        )));
    }
    Ok(())
}

/// Parses and validates a TagResource body (pure).
pub fn parse_tag_resource(body: &[u8]) -> Result<BTreeMap<String, String>, ApiError> {
    let req: TagResourceRequest = parse_json(body)?;
    let tags = required(req.tags, "tags")?;
    validate_tags(&tags)?;
    Ok(tags)
}

/// Validates UntagResource's `tagKeys` (pure).
pub fn parse_untag_keys(keys: &[String]) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Err(constraint("[]", "tagKeys", "Member must not be empty"));
    }
    match keys
        .iter()
        .find(|k| k.is_empty() || k.chars().count() > 128)
    {
        Some(k) => Err(constraint(
            k,
            "tagKeys",
            "Member must have length from 1 to 128",
        )),
        None => Ok(()),
    }
}

impl Control {
    /// The function's tags (empty when it has none).
    pub fn function_tags(&self, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
        Ok(self.resource(name, TAGS, "")?.unwrap_or_default())
    }

    /// Merges `tags` into the function's tags.
    pub(super) fn add_tags(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        self.edit(name, TAGS, "", &mut |current, _| {
            let mut all: BTreeMap<String, String> =
                current.map(decode).transpose()?.unwrap_or_default();
            all.extend(tags.clone());
            too_many(all.len())?;
            Ok(Edit::Put(encode(&all)?))
        })
    }

    pub(super) fn tag_resource(&self, name: &str, body: &[u8]) -> Result<Reply, ApiError> {
        let tags = parse_tag_resource(body)?;
        self.add_tags(name, &tags)?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }

    pub(super) fn untag_resource(&self, name: &str, keys: &[String]) -> Result<Reply, ApiError> {
        parse_untag_keys(keys)?;
        self.edit(name, TAGS, "", &mut |current, _| {
            let mut all: BTreeMap<String, String> =
                current.map(decode).transpose()?.unwrap_or_default();
            all.retain(|k, _| !keys.contains(k));
            Ok(if all.is_empty() {
                Edit::Delete
            } else {
                Edit::Put(encode(&all)?)
            })
        })?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }

    pub(super) fn list_tags(&self, name: &str) -> Result<Reply, ApiError> {
        self.require_function(name)?;
        Reply::json(
            StatusCode::OK,
            serde_json::json!({ "Tags": self.function_tags(name)? }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(
            parse_tag_resource(br#"{"Tags":{"team":"a"}}"#)
                .unwrap()
                .len(),
            1
        );
        for (b, needle) in [
            (r#"{}"#, "tags"),
            (r#"{"Tags":{"aws:x":"1"}}"#, "reserved"),
            (r#"{"Tags":{"":"1"}}"#, "tags"),
            (r#"{"Tags":{"k":1}}"#, "Tags.k"),
            (r#"{"Tags":["k"]}"#, "Tags"),
        ] {
            let e = parse_tag_resource(b.as_bytes()).unwrap_err();
            assert_eq!(e.status, 400, "{b}");
            assert!(e.message.contains(needle), "{b}: {}", e.message);
        }
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate_tags(&many).is_err());
        assert!(parse_untag_keys(&[]).is_err());
        assert!(parse_untag_keys(&["a".into()]).is_ok());
    }
}
