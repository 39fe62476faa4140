//! Fuzzes the Azure trace CSV parser (`loadgen::trace::parse_trace`): the three files
//! (invocations, durations, memory) split at NUL bytes, the first byte choosing the selection.
//!
//! Small limits so a hostile input costs little; the parser must return (never panic), and
//! whatever it accepts must respect the limits and the selection.
#![no_main]

use hearth::loadgen::trace::{Limits, Selection, parse_trace};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let inv = parts.next().unwrap_or_default();
    let dur = parts.next().unwrap_or_default();
    let mem = parts.next().unwrap_or_default();
    let lim = Limits {
        max_file_bytes: 1 << 16,
        max_line_bytes: 4096,
        max_columns: 256,
        max_rows: 256,
        max_field_bytes: 64,
        max_count: 1000,
        max_total: 10_000,
    };
    let selection = Selection {
        functions: (sel & 0x0f != 0).then_some(usize::from(sel & 0x0f)),
        minutes: (sel >> 4 != 0).then_some(usize::from(sel >> 4)),
    };
    let Ok(trace) = parse_trace(inv, dur, mem, &lim, selection) else {
        return;
    };
    assert!(trace.functions.len() <= selection.functions.unwrap_or(usize::MAX));
    let mut total = 0u64;
    for f in &trace.functions {
        assert_eq!(f.counts.len(), selection.minutes.unwrap_or(trace.minutes_in_file));
        total += f.counts.iter().map(|&c| u64::from(c)).sum::<u64>();
        if let Some(p) = f.durations {
            assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
        }
    }
    assert!(total <= lim.max_total);
});
