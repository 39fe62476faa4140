//! EventBridge schedule expressions: `rate(value unit)` and `cron(min hour dom month dow year)`.
//!
//! The language is EventBridge's (UTC, six cron fields with a year, `?`, `L`, `W`, `#`,
//! day-of-week 1 = Sunday); no common crate parses it. [`Schedule::parse`] checks an expression
//! with precise errors ([`ScheduleError`] names the field, the token and the reason) and
//! [`Schedule::next_after`] finds the next fire time strictly after an instant, at minute
//! precision, skipping by field (never minute by minute) and giving up past the year 2199.
//!
//! A rate has no calendar: its ticks are `anchor + k * period`. The anchor is the Unix epoch
//! unless [`Schedule::with_anchor`] sets one (a trigger anchors its rate at its creation time).

mod cron;
mod next;
#[cfg(test)]
mod tests;

use std::fmt;
use time::{Duration, OffsetDateTime, UtcOffset};

pub use cron::Cron;

/// Longest accepted expression, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 256;
/// First and last year a schedule can fire in (EventBridge's year field range).
pub const MIN_YEAR: i32 = 1970;
pub const MAX_YEAR: i32 = 2199;
/// Largest rate value (digits beyond this are a typo, not a schedule).
pub const MAX_RATE_VALUE: u64 = 1_000_000;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    expression: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Rate { period_minutes: i64, anchor: i64 },
    Cron(Box<Cron>),
}

/// One of the six cron fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minutes => "minutes",
            Field::Hours => "hours",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
            Field::Year => "year",
        })
    }
}

/// Why a cron token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("empty value")]
    Empty,
    #[error("not a number or a name")]
    NotANumber,
    #[error("value {value} is outside {min}-{max}")]
    OutOfRange { value: u32, min: u32, max: u32 },
    #[error("range start is after its end")]
    ReversedRange,
    #[error("increment must be between 1 and {max}")]
    BadIncrement { max: u32 },
    #[error("'{0}' is not allowed in this field")]
    NotAllowed(char),
    #[error("'{0}' must stand alone in this field (no lists or ranges)")]
    MustStandAlone(&'static str),
    #[error("the week number after '#' must be between 1 and 5")]
    BadNth,
}

/// A schedule expression that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule expression is {len} bytes; the limit is {MAX_EXPRESSION_LEN}")]
    TooLong { len: usize },
    #[error("schedule expression must be rate(value unit) or cron(fields)")]
    UnknownForm,
    #[error("rate expression: {0}")]
    Rate(&'static str),
    #[error(
        "cron expression has {0} fields; it needs 6 (minutes hours day-of-month month day-of-week year)"
    )]
    FieldCount(usize),
    #[error("cron {field} field, '{token}': {reason}")]
    Field {
        field: Field,
        token: String,
        reason: Reason,
    },
    #[error("cron day-of-month and day-of-week: {0}")]
    Days(&'static str),
}

impl Schedule {
    /// Parses an EventBridge schedule expression.
    pub fn parse(expression: &str) -> Result<Schedule, ScheduleError> {
        if expression.len() > MAX_EXPRESSION_LEN {
            return Err(ScheduleError::TooLong {
                len: expression.len(),
            });
        }
        let text = expression.trim();
        let kind = if let Some(inner) = inside(text, "rate(") {
            Kind::Rate {
                period_minutes: parse_rate(inner)?,
                anchor: 0,
            }
        } else if let Some(inner) = inside(text, "cron(") {
            Kind::Cron(Box::new(Cron::parse(inner)?))
        } else {
            return Err(ScheduleError::UnknownForm);
        };
        Ok(Schedule {
            expression: text.to_owned(),
            kind,
        })
    }

    /// The same schedule with its rate ticks counted from `anchor` (truncated to the minute).
    /// No effect on a cron schedule.
    pub fn with_anchor(mut self, anchor: OffsetDateTime) -> Schedule {
        if let Kind::Rate { anchor: a, .. } = &mut self.kind {
            *a = epoch_minute(anchor);
        }
        self
    }

    /// The expression as given (outer whitespace trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The rate period, for a rate schedule.
    pub fn rate_period(&self) -> Option<Duration> {
        match self.kind {
            Kind::Rate { period_minutes, .. } => Some(Duration::minutes(period_minutes)),
            Kind::Cron(_) => None,
        }
    }

    /// The first fire time strictly after `t`, on a whole minute (UTC), or `None` when there is
    /// none up to the end of [`MAX_YEAR`].
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = epoch_minute(t);
        let next = match &self.kind {
            Kind::Rate {
                period_minutes,
                anchor,
            } => {
                let k = (after - anchor).div_euclid(*period_minutes) + 1;
                anchor.checked_add(k.checked_mul(*period_minutes)?)?
            }
            Kind::Cron(cron) => next::after(cron, after)?,
        };
        let at = OffsetDateTime::from_unix_timestamp(next.checked_mul(60)?).ok()?;
        (at.year() >= MIN_YEAR && at.year() <= MAX_YEAR).then_some(at)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

/// Minutes since the Unix epoch, `t` truncated to its minute (in UTC).
fn epoch_minute(t: OffsetDateTime) -> i64 {
    t.to_offset(UtcOffset::UTC).unix_timestamp().div_euclid(60)
}

/// The text between `prefix` and a closing `)` ending `text`.
fn inside<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)?.strip_suffix(')')
}

/// `value unit` → period in minutes. EventBridge wants the singular unit for 1 and the plural
/// otherwise.
fn parse_rate(inner: &str) -> Result<i64, ScheduleError> {
    let mut parts = inner.split_ascii_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ScheduleError::Rate(
            "expected a value and a unit, as in rate(5 minutes)",
        ));
    };
    if value.is_empty() || value.len() > 7 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError::Rate(
            "the value must be a positive whole number",
        ));
    }
    let value: u64 = value
        .parse()
        .map_err(|_| ScheduleError::Rate("the value must be a positive whole number"))?;
    if value == 0 || value > MAX_RATE_VALUE {
        return Err(ScheduleError::Rate(
            "the value must be between 1 and 1000000",
        ));
    }
    let (per, singular) = match unit {
        "minute" => (1, true),
        "minutes" => (1, false),
        "hour" => (60, true),
        "hours" => (60, false),
        "day" => (1440, true),
        "days" => (1440, false),
        _ => {
            return Err(ScheduleError::Rate(
                "the unit must be minute(s), hour(s) or day(s)",
            ));
        }
    };
    if singular != (value == 1) {
        return Err(ScheduleError::Rate(
            "use the singular unit for a value of 1 and the plural otherwise",
        ));
    }
    Ok((value * per) as i64)
}
