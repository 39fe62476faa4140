//! hello-rs: a sample hearth function for the `provided` runtime, built with `lambda_runtime`.
//!
//! Event `{"name": "Ann"}` gives `{"message": "hello Ann", "request_id": …, "function_name": …}`.
//! Event `{"fail": true}` gives a function error of type `HelloError`.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};

/// The fields this function looks at; anything else in the event is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    name: Option<String>,
    fail: bool,
}

/// The error this function reports; the runtime API gets `errorType: "HelloError"`.
#[derive(Debug)]
struct HelloError(String);

impl From<HelloError> for Diagnostic {
    fn from(e: HelloError) -> Diagnostic {
        Diagnostic {
            error_type: "HelloError".into(),
            error_message: e.0,
        }
    }
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, HelloError> {
    let (payload, context) = event.into_parts();
    println!("hello-rs got request {}", context.request_id);
    // Events that are not objects (a string, a list, null) are treated as empty requests.
    let request: Request = serde_json::from_value(payload).unwrap_or_default();
    if request.fail {
        return Err(HelloError("asked to fail".into()));
    }
    let name = request.name.as_deref().unwrap_or("world");
    Ok(json!({
        "message": format!("hello {name}"),
        "request_id": context.request_id,
        "function_name": context.env_config.function_name,
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(handle)).await
}
