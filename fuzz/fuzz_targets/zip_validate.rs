//! Fuzzes zip validation and, for zips that pass, extraction into a temp dir.
//!
//! Limits are small so a zip bomb found by the fuzzer costs little; both calls must return
//! (never panic), and extraction must accept whatever validation accepted.
#![no_main]

use hearth::codestore::{ZipLimits, extract_zip, validate_zip};
use libfuzzer_sys::fuzz_target;

const LIMITS: ZipLimits = ZipLimits { max_zipped: 1 << 20, max_unpacked: 4 << 20, max_entries: 64 };

fuzz_target!(|data: &[u8]| {
    let require_bootstrap = data.first().is_some_and(|b| b & 1 == 1);
    let Ok(summary) = validate_zip(data, &LIMITS, require_bootstrap) else {
        return;
    };
    assert!(summary.entries <= LIMITS.max_entries);
    assert!(summary.unpacked_bytes <= LIMITS.max_unpacked);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dest = tmp.path().join("out");
    let extracted = extract_zip(data, &dest, &LIMITS)
        .unwrap_or_else(|e| panic!("validated zip failed to extract: {e}"));
    assert_eq!(extracted.unpacked_bytes, summary.unpacked_bytes);
    assert_eq!(extracted.entries, summary.entries);
});
