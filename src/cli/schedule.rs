//! `hearth schedule next EXPR`: the next fire times of an EventBridge schedule expression,
//! computed locally (no server), to check an expression before a trigger uses it.

use crate::schedule::Schedule;
use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Most fire times `--count` prints.
pub const MAX_COUNT: usize = 1000;

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print the next fire times (UTC, RFC 3339) of a `rate(...)` or `cron(...)` expression.
    Next {
        /// The expression, e.g. 'cron(0 12 ? * MON-FRI *)'.
        expression: String,
        /// How many fire times to print (1–1000).
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Start after this instant (RFC 3339) instead of now; a rate counts from it too.
        #[arg(long)]
        after: Option<String>,
    },
}

/// Runs a `schedule` subcommand; returns the exit code.
pub fn run(cmd: ScheduleCommand) -> anyhow::Result<i32> {
    let ScheduleCommand::Next {
        expression,
        count,
        after,
    } = cmd;
    anyhow::ensure!(
        (1..=MAX_COUNT).contains(&count),
        "--count must be between 1 and {MAX_COUNT}"
    );
    let after = match after {
        Some(a) => OffsetDateTime::parse(&a, &Rfc3339)
            .map_err(|e| anyhow::anyhow!("--after {a:?}: not an RFC 3339 time: {e}"))?,
        None => OffsetDateTime::now_utc(),
    };
    let schedule = Schedule::parse(&expression)?.with_anchor(after);
    for t in fire_times(&schedule, after).take(count) {
        println!("{}", t.format(&Rfc3339)?);
    }
    Ok(0)
}

/// The fire times of `schedule` after `after`, in order, until the schedule ends.
pub fn fire_times(
    schedule: &Schedule,
    after: OffsetDateTime,
) -> impl Iterator<Item = OffsetDateTime> + '_ {
    std::iter::successors(schedule.next_after(after), |t| schedule.next_after(*t))
}
