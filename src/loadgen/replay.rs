//! Trace replay (stub while trace.rs is written).
pub fn run(_a: crate::cli::loadgen::TraceArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
