//! The report: one JSON value with stable keys (`--json FILE`), and its human rendering.

use super::engine::Outcome;
use super::stats::ErrorKind;
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

/// Latency percentiles in µs: `p50`, `p90`, `p99`, `p99_9`, `max`, `mean`.
pub fn latency(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"p50": 0, "p90": 0, "p99": 0, "p99_9": 0, "max": 0, "mean": 0.0});
    }
    json!({
        "p50": h.value_at_quantile(0.5),
        "p90": h.value_at_quantile(0.9),
        "p99": h.value_at_quantile(0.99),
        "p99_9": h.value_at_quantile(0.999),
        "max": h.max(),
        "mean": (h.mean() * 10.0).round() / 10.0,
    })
}

/// The keys every mode has.
pub fn base(mode: &str, target: &str, out: &Outcome) -> Map<String, Value> {
    let s = &out.stats;
    let secs = out.measured.as_secs_f64();
    let rate = if secs > 0.0 {
        s.requests as f64 / secs
    } else {
        0.0
    };
    let errors: Map<String, Value> = ErrorKind::ALL
        .iter()
        .filter(|k| s.errors[**k as usize] > 0)
        .map(|k| (k.name().to_string(), s.errors[*k as usize].into()))
        .collect();
    let mut m = Map::new();
    m.insert("mode".into(), mode.into());
    m.insert("target".into(), target.into());
    m.insert("duration_s".into(), round3(secs).into());
    m.insert("requests".into(), s.requests.into());
    m.insert("ok".into(), s.ok.into());
    m.insert("achieved_rate".into(), round3(rate).into());
    m.insert("errors".into(), errors.into());
    m.insert("cold_starts".into(), s.cold_starts.into());
    m.insert("latency_us".into(), latency(&s.latency));
    m
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ms(v: &Value) -> String {
    format!("{:.3} ms", v.as_f64().unwrap_or(0.0) / 1000.0)
}

/// The human form of a report.
pub fn render(r: &Value) -> String {
    let mut out = format!(
        "{} → {}\n  requests     {} ({} ok) in {:.2} s, {:.1} req/s\n",
        r["mode"].as_str().unwrap_or("?"),
        r["target"].as_str().unwrap_or("?"),
        r["requests"],
        r["ok"],
        r["duration_s"].as_f64().unwrap_or(0.0),
        r["achieved_rate"].as_f64().unwrap_or(0.0),
    );
    let l = &r["latency_us"];
    out += &format!(
        "  latency      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}\n",
        ms(&l["p50"]),
        ms(&l["p90"]),
        ms(&l["p99"]),
        ms(&l["p99_9"]),
        ms(&l["max"]),
        ms(&l["mean"])
    );
    let errors = match r["errors"].as_object() {
        Some(e) if !e.is_empty() => e
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".into(),
    };
    out += &format!(
        "  errors       {errors}\n  cold starts  {}\n",
        r["cold_starts"]
    );
    if r.get("functions").is_some() {
        out += &render_trace(r);
    }
    out
}

fn render_trace(r: &Value) -> String {
    let rate = r["cold_start_rate_excl_first"].as_f64().unwrap_or(0.0);
    let memory = match (
        r["warm_memory_mb_s"].as_f64(),
        r["warm_memory_status"].as_str(),
    ) {
        (Some(v), Some("complete")) => format!("{v:.1} MB·s"),
        (Some(v), _) => format!("incomplete (≥ {v:.1} MB·s; idle instances remained)"),
        (None, _) => {
            "unavailable (the agent exports no hearth_agent_idle_memory_mb_seconds_total)".into()
        }
    };
    let d = &r["start_delay_us"];
    format!(
        "  trace        {} functions, {} invocations, compress {}, seed {}\n  \
         cold-start rate (first invocations excluded)  {:.3}%\n  \
         warm memory-time  {memory}\n  \
         start delay  p50 {}  p99 {}  p99.9 {}\n",
        r["functions"],
        r["invocations"],
        r["compress"],
        r["seed"],
        rate * 100.0,
        ms(&d["p50"]),
        ms(&d["p99"]),
        ms(&d["p99_9"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::stats::Stats;
    use std::time::{Duration, Instant};

    #[test]
    fn keys_and_rendering() {
        let mut stats = Stats::default();
        for us in 1..=1000u64 {
            stats.latency.record(us).unwrap();
        }
        stats.requests = 1002;
        stats.ok = 1000;
        stats.errors[ErrorKind::Timeout as usize] = 2;
        stats.last_done = Some(Instant::now());
        let out = Outcome {
            stats,
            measured: Duration::from_secs(2),
        };
        let r = Value::Object(base("open-loop", "http://x/", &out));
        assert_eq!(r["achieved_rate"], 501.0);
        assert_eq!(r["errors"], json!({"timeout": 2}));
        assert_eq!(r["latency_us"]["p50"], 500);
        assert_eq!(r["latency_us"]["max"], 1000);
        for k in ["p90", "p99", "p99_9", "mean"] {
            assert!(r["latency_us"][k].is_number(), "{k}");
        }
        let text = render(&r);
        assert!(text.contains("p50 0.500 ms"), "{text}");
        assert!(text.contains("timeout 2"), "{text}");
    }
}
