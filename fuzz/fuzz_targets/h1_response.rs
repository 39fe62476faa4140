//! The loadgen's HTTP/1.1 response parser on untrusted server output: never panics, never
//! consumes more than it was given, and agrees with itself however the bytes are split.
#![no_main]

use hearth::loadgen::h1::{BUF, parse_all};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let head = flags & 1 != 0;
    let step = usize::from(flags >> 1).max(1);
    let whole = parse_all(input, input.len().max(1).min(BUF), head);
    let split = parse_all(input, step, head);
    if let Ok((_, _, n)) = whole {
        assert!(n <= input.len());
    }
    // Splitting changes nothing but where a too-large head is noticed.
    if let (Ok(a), Ok(b)) = (&whole, &split) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
});
