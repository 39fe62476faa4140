//! Function names, qualifiers and ARNs as the Lambda API accepts them.

use super::ApiError;

/// A function reference from a path or body: name plus optional qualifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
}

/// Longest `FunctionName` parameter (a full ARN with qualifier).
pub const MAX_FUNCTION_NAME_PARAM: usize = 140;
/// Longest bare function name.
pub const MAX_NAME: usize = 64;

/// Whether `name` is a valid bare function name (1–64 of letters, digits, `-`, `_`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `q` is a valid qualifier: `$LATEST`, a version number or an alias name.
pub fn valid_qualifier(q: &str) -> bool {
    q == "$LATEST"
        || (!q.is_empty()
            && q.len() <= 128
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Parses a FunctionName: `name`, `name:qualifier`, a full ARN
/// (`arn:aws:lambda:REGION:ACCOUNT:function:name[:qualifier]`) or a partial ARN
/// (`ACCOUNT:function:name[:qualifier]`). `account` is the caller's account: an ARN naming
/// another account does not resolve.
pub fn parse_function_name(raw: &str, account: &str) -> Result<FunctionRef, ApiError> {
    if raw.is_empty() || raw.len() > MAX_FUNCTION_NAME_PARAM {
        return Err(bad_name(raw));
    }
    let parts: Vec<&str> = raw.split(':').collect();
    let (acct, rest) = match parts.as_slice() {
        [
            "arn",
            partition,
            "lambda",
            region,
            acct,
            "function",
            rest @ ..,
        ] => {
            if !partition.starts_with("aws") || region.is_empty() {
                return Err(bad_name(raw));
            }
            (Some(*acct), rest)
        }
        [acct, "function", rest @ ..] => (Some(*acct), rest),
        rest => (None, rest),
    };
    let (name, qualifier) = match rest {
        [name] => (*name, None),
        [name, q] => (*name, Some((*q).to_string())),
        _ => return Err(bad_name(raw)),
    };
    if let Some(a) = acct {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_name(raw));
        }
        if a != account {
            return Err(ApiError::not_found(format!("Function not found: {raw}")));
        }
    }
    if !valid_name(name) || qualifier.as_deref().is_some_and(|q| !valid_qualifier(q)) {
        return Err(bad_name(raw));
    }
    Ok(FunctionRef {
        name: name.to_string(),
        qualifier,
    })
}

fn bad_name(raw: &str) -> ApiError {
    let shown: String = raw.chars().take(MAX_FUNCTION_NAME_PARAM).collect();
    ApiError::invalid_parameter(format!(
        "1 validation error detected: Value '{shown}' at 'functionName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: \
         (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
    ))
}

/// Combines the qualifier found in the name with a `Qualifier` parameter; they must agree.
pub fn merge_qualifier(
    from_name: Option<String>,
    param: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match (from_name, param) {
        (Some(a), Some(b)) if a != b => Err(ApiError::invalid_parameter(
            "The derived qualifier from the function name does not match the specified qualifier.",
        )),
        (Some(a), _) => Ok(Some(a)),
        (None, Some(b)) if !valid_qualifier(b) => Err(ApiError::invalid_parameter(format!(
            "1 validation error detected: Value '{b}' at 'qualifier' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
        ))),
        (None, b) => Ok(b.map(str::to_string)),
    }
}

/// The unqualified ARN of a function.
pub fn function_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    const A: &str = "123456789012";

    fn p(s: &str) -> Result<FunctionRef, ApiError> {
        parse_function_name(s, A)
    }

    #[test]
    fn forms() {
        assert_eq!(
            p("f").unwrap(),
            FunctionRef {
                name: "f".into(),
                qualifier: None
            }
        );
        assert_eq!(p("f:3").unwrap().qualifier.as_deref(), Some("3"));
        assert_eq!(
            p("f:$LATEST").unwrap().qualifier.as_deref(),
            Some("$LATEST")
        );
        let full = p("arn:aws:lambda:us-east-1:123456789012:function:my-fn:7").unwrap();
        assert_eq!(
            (full.name.as_str(), full.qualifier.as_deref()),
            ("my-fn", Some("7"))
        );
        assert_eq!(p("123456789012:function:my_fn").unwrap().name, "my_fn");
    }

    #[test]
    fn hostile() {
        for s in [
            "",
            "a/b",
            "f:",
            ":f",
            "f:1:2",
            "arn:aws:lambda:us-east-1:12:function:f",
            "f.x",
            "f:$NOPE",
            "é",
        ] {
            assert_eq!(p(s).unwrap_err().status, 400, "{s:?}");
        }
        assert_eq!(p(&"x".repeat(141)).unwrap_err().status, 400);
        assert_eq!(
            p("arn:aws:lambda:us-east-1:999999999999:function:f")
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn qualifier_merge() {
        assert_eq!(
            merge_qualifier(Some("1".into()), Some("1"))
                .unwrap()
                .as_deref(),
            Some("1")
        );
        assert!(merge_qualifier(Some("1".into()), Some("2")).is_err());
        assert_eq!(
            merge_qualifier(None, Some("$LATEST")).unwrap().as_deref(),
            Some("$LATEST")
        );
        assert!(merge_qualifier(None, Some("a/b")).is_err());
    }
}
