//! Fuzzes the asynchronous invocation inputs from outside: destination ARNs (event invoke
//! configs), queue names and the queue read request (`GET /hearth/v1/queues/{name}/messages`),
//! and destination record building from arbitrary event fields, payload and result.
//!
//! Every input must give `Ok` or a 4xx Lambda error; nothing may panic; an accepted queue name
//! is a valid queue topic and never an internal (dotted) topic.
#![no_main]

use hearth::events::arn::{Target, parse_destination, queue_name};
use hearth::events::read::{parse_read, read_path};
use hearth::events::record::{Condition, build};
use hearth::events::{AsyncEvent, Delivered};
use libfuzzer_sys::fuzz_target;

fn check_topic(t: &str) {
    assert!(hearth::queue::check_topic(t).is_ok(), "{t:?}");
    assert!(!t.trim_end_matches(".fifo").contains('.'), "{t:?}");
}

fuzz_target!(|data: &[u8]| {
    let f: Vec<&[u8]> = data.splitn(3, |b| *b == 0xFF).collect();
    let get = |i: usize| String::from_utf8_lossy(f.get(i).copied().unwrap_or_default()).into_owned();
    let (a, b, c) = (get(0), get(1), get(2));
    match parse_destination(&a) {
        Ok(Target::Queue(q)) => check_topic(&q),
        Ok(Target::Function { name, .. }) => assert!(!name.is_empty()),
        Err(e) => assert!(e.status.is_client_error(), "{e}"),
    }
    if let Ok(q) = queue_name(&a) {
        check_topic(q);
    }
    let path = format!("/hearth/v1/queues/{a}/messages");
    if let Some(seg) = read_path(&path) {
        match parse_read(seg, &b) {
            Ok(r) => {
                check_topic(&r.topic);
                assert!(r.max <= hearth::events::read::MAX_READ);
            }
            Err(e) => assert!(e.status.is_client_error(), "{e}"),
        }
    }
    {
        let ev = AsyncEvent {
            request_id: c.clone(),
            function_name: a.clone(),
            qualifier: Some(b.clone()),
            payload_b64: c.clone(),
            accepted_ms: data.len() as u64,
            trace_id: None,
            source: None,
        };
        let d = Delivered {
            body: bytes::Bytes::from(b.clone().into_bytes()),
            function_error: Some("Unhandled"),
            executed_version: "$LATEST".into(),
        };
        let r = build(&ev, a.as_bytes(), "arn", Condition::RetriesExhausted, 1, Some(&d), u64::MAX);
        assert_eq!(r["version"], "1.0");
    }
});
