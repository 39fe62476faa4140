//! Parsing destination ARNs and queue names (outside input: event invoke configs and the queue
//! read API). Pure functions, fuzzed by `fuzz/fuzz_targets/events_request.rs`.

use crate::api::ApiError;

/// Longest destination ARN (the event invoke config's limit).
pub const MAX_ARN: usize = 350;
/// Longest queue name (SQS: 80 characters, `.fifo` included).
pub const MAX_QUEUE_NAME: usize = 80;

/// Where a destination sends its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`: an asynchronous invoke.
    Function {
        name: String,
        qualifier: Option<String>,
    },
    /// `arn:aws:sqs:REGION:ACCOUNT:NAME`: the hearth queue topic `NAME`.
    Queue(String),
}

fn invalid(arn: &str) -> ApiError {
    let shown: String = arn.chars().take(MAX_ARN).collect();
    ApiError::invalid_parameter(format!(
        "The destination ARN {shown} is invalid. hearth supports Lambda functions \
         (arn:aws:lambda:REGION:ACCOUNT:function:NAME) and queues (arn:aws:sqs:REGION:ACCOUNT:NAME)."
    ))
}

/// Parses a destination ARN. Region and account are checked for shape only: every function
/// and queue lives in this hearth.
pub fn parse_destination(arn: &str) -> Result<Target, ApiError> {
    if arn.len() > MAX_ARN {
        return Err(invalid(arn));
    }
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let ok_prefix = parts.len() >= 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && region_ok(parts[3])
        && account_ok(parts[4]);
    if !ok_prefix {
        return Err(invalid(arn));
    }
    match (parts[2], parts.len()) {
        ("sqs", 6) => queue_name(parts[5])
            .map(|n| Target::Queue(n.to_string()))
            .map_err(|_| invalid(arn)),
        ("lambda", 7) if parts[5] == "function" => {
            let (name, qualifier) = match parts[6].split_once(':') {
                Some((n, q)) => (n, Some(q)),
                None => (parts[6], None),
            };
            if !function_name_ok(name) || !qualifier.is_none_or(qualifier_ok) {
                return Err(invalid(arn));
            }
            Ok(Target::Function {
                name: name.to_string(),
                qualifier: qualifier.map(str::to_string),
            })
        }
        _ => Err(invalid(arn)),
    }
}

fn region_ok(r: &str) -> bool {
    r.len() <= 32 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn account_ok(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

fn function_name_ok(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn qualifier_ok(q: &str) -> bool {
    q == "$LATEST"
        || ((1..=128).contains(&q.len())
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Checks a user queue name (SQS rules: 1–80 letters, digits, `-`, `_`, optionally ending in
/// `.fifo`). Internal topics (which contain other dots) can never be named this way.
pub fn queue_name(name: &str) -> Result<&str, ApiError> {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    let ok = name.len() <= MAX_QUEUE_NAME
        && !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name)
    } else {
        let shown: String = name.chars().take(MAX_QUEUE_NAME + 1).collect();
        Err(ApiError::invalid_parameter(format!(
            "Invalid queue name {shown:?}: use 1 to 80 letters, digits, '-' or '_' (optionally ending in .fifo)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(
            parse_destination("arn:aws:sqs:us-east-1:000000000000:done").unwrap(),
            Target::Queue("done".into())
        );
        assert_eq!(
            parse_destination("arn:aws:lambda:us-east-1:000000000000:function:f").unwrap(),
            Target::Function {
                name: "f".into(),
                qualifier: None
            }
        );
        assert_eq!(
            parse_destination("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST").unwrap(),
            Target::Function {
                name: "f".into(),
                qualifier: Some("$LATEST".into())
            }
        );
    }

    #[test]
    fn hostile_destinations() {
        let long = format!("arn:aws:sqs:us-east-1:000000000000:{}", "a".repeat(400));
        for bad in [
            "",
            "arn",
            "arn:aws:sqs:us-east-1:000000000000:",
            "arn:aws:sqs:us-east-1:000000000000:invoke.events",
            "arn:aws:sqs:us-east-1:000000000000:a:b",
            "arn:aws:sqs:us-east-1:12:q",
            "arn:aws:sns:us-east-1:000000000000:t",
            "arn:aws:lambda:us-east-1:000000000000:function:",
            "arn:aws:lambda:us-east-1:000000000000:function:f:1:2",
            "arn:aws:lambda:us-east-1:000000000000:layer:f",
            "arn:aws:lambda:us-east-1:000000000000:function:a b",
            "arn:aws:lambda:us-east-1:000000000000:function:f:",
            "arn:aws:sqs:us-east-1:000000000000:q\u{0}",
            &long,
        ] {
            let e = parse_destination(bad).unwrap_err();
            assert_eq!(e.error_type, "InvalidParameterValueException", "{bad:?}");
        }
    }

    #[test]
    fn queue_names() {
        for good in ["q", "a-b_C9", "jobs.fifo", &"x".repeat(80)] {
            assert!(queue_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            ".fifo",
            "a.b",
            "invoke.events",
            "a b",
            "é",
            &"x".repeat(81),
        ] {
            assert!(queue_name(bad).is_err(), "{bad:?}");
        }
    }
}
