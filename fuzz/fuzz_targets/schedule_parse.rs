//! Fuzzes the EventBridge schedule expression parser (`schedule::Schedule::parse`) and the
//! fire-time search: whatever parses must give fire times strictly after the asked instant, on
//! a whole minute, within 1970–2199, and a chain of them must increase.
#![no_main]

use hearth::schedule::Schedule;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(schedule) = Schedule::parse(text) else {
        return;
    };
    for start in [0i64, 1_795_000_000, 7_258_000_000] {
        let mut t = OffsetDateTime::from_unix_timestamp(start).unwrap();
        for _ in 0..4 {
            let Some(next) = schedule.next_after(t) else {
                break;
            };
            assert!(next > t, "{text}: {next} after {t}");
            assert_eq!(next.second(), 0);
            assert!((1970..=2199).contains(&next.year()));
            t = next;
        }
    }
});
