//! The next fire time of a cron expression: walk year → month → day → hour → minute, each
//! step jumping to the next member of its field's set and resetting the smaller fields, so a
//! search costs at most a few steps per month up to the year 2199.

use super::cron::{Cron, Dom, Dow};
use super::{MAX_YEAR, MIN_YEAR};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A calendar position, UTC, at minute precision.
#[derive(Debug, Clone, Copy)]
struct At {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

/// The first minute (since the Unix epoch) strictly after minute `after` that `cron` matches.
pub fn after(cron: &Cron, after: i64) -> Option<i64> {
    let mut at = start(after.checked_add(1)?)?;
    // Every pass moves `at` forward; each field resets the smaller ones to their start, so a
    // pass either returns or advances at least one day (or a whole month or year).
    loop {
        let year = cron.years.next_from(u32::try_from(at.year).ok()?)?;
        if year as i32 != at.year {
            at = At::new(year as i32, 1, 1);
        }
        let Some(month) = cron.months.next_from(at.month).filter(|m| *m <= 12) else {
            at = At::new(at.year + 1, 1, 1);
            continue;
        };
        if month != at.month {
            at = At::new(at.year, month, 1);
        }
        let days = day_mask(cron, at.year, at.month);
        let Some(day) = next_bit(days, at.day) else {
            at = next_month(at);
            continue;
        };
        if day != at.day {
            at = At::new(at.year, at.month, day);
        }
        let Some(hour) = cron.hours.next_from(at.hour).filter(|h| *h <= 23) else {
            at = At::new(at.year, at.month, at.day + 1);
            continue;
        };
        if hour != at.hour {
            at.hour = hour;
            at.minute = 0;
        }
        let Some(minute) = cron.minutes.next_from(at.minute).filter(|m| *m <= 59) else {
            at.hour += 1;
            at.minute = 0;
            continue;
        };
        at.minute = minute;
        return at.epoch_minute();
    }
}

impl At {
    fn new(year: i32, month: u32, day: u32) -> At {
        At {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
        }
    }

    fn epoch_minute(self) -> Option<i64> {
        let date = Date::from_calendar_date(self.year, month(self.month)?, self.day as u8).ok()?;
        let time = Time::from_hms(self.hour as u8, self.minute as u8, 0).ok()?;
        Some(
            PrimitiveDateTime::new(date, time)
                .assume_utc()
                .unix_timestamp()
                / 60,
        )
    }
}

/// Where the search starts: minute `m`, or 1970-01-01 00:00 if that is earlier.
fn start(m: i64) -> Option<At> {
    let t = OffsetDateTime::from_unix_timestamp(m.checked_mul(60)?).ok()?;
    if t.year() < MIN_YEAR {
        return Some(At::new(MIN_YEAR, 1, 1));
    }
    if t.year() > MAX_YEAR {
        return None;
    }
    Some(At {
        year: t.year(),
        month: u8::from(t.month()) as u32,
        day: u32::from(t.day()),
        hour: u32::from(t.hour()),
        minute: u32::from(t.minute()),
    })
}

fn next_month(at: At) -> At {
    if at.month >= 12 {
        At::new(at.year + 1, 1, 1)
    } else {
        At::new(at.year, at.month + 1, 1)
    }
}

fn month(m: u32) -> Option<Month> {
    Month::try_from(u8::try_from(m).ok()?).ok()
}

/// The smallest set bit `>= from` (bit i = day i).
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask >> from;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

/// The days of `year`-`month` the two day fields select, as a bit mask (bit i = day i).
fn day_mask(cron: &Cron, year: i32, month_no: u32) -> u64 {
    let Some(m) = month(month_no) else {
        return 0;
    };
    let days = time::util::days_in_month(m, year) as u32;
    let Ok(first) = Date::from_calendar_date(year, m, 1) else {
        return 0;
    };
    // 1 = Sunday … 7 = Saturday, EventBridge's numbering.
    let first_dow = u32::from(first.weekday().number_from_sunday());
    let dow = |d: u32| (first_dow + d - 2) % 7 + 1;
    let all =
        |pred: &dyn Fn(u32) -> bool| (1..=days).filter(|d| pred(*d)).fold(0, |m, d| m | 1 << d);
    match (cron.dom, cron.dow) {
        (Dom::Days(set), _) => all(&|d| set.contains(d)),
        (Dom::Last, _) => 1 << days,
        (Dom::LastWeekday, _) => 1 << weekday_near(days, days, dow),
        (Dom::NearestWeekday(n), _) if n > days => 0,
        (Dom::NearestWeekday(n), _) => 1 << weekday_near(n, days, dow),
        (Dom::Any, Dow::Days(set)) => all(&|d| set.contains(dow(d))),
        (Dom::Any, Dow::Last(w)) => 1 << (days - (dow(days) + 7 - w) % 7),
        (Dom::Any, Dow::Nth(w, k)) => {
            let d = 1 + (w + 7 - first_dow) % 7 + 7 * (k - 1);
            if d <= days { 1 << d } else { 0 }
        }
        (Dom::Any, Dow::Any) => all(&|_| true),
    }
}

/// The Monday–Friday day nearest to day `n`, not leaving the month: a Saturday moves back to
/// Friday (or on the 1st forward to Monday the 3rd), a Sunday forward to Monday (or on the
/// last day back to Friday).
fn weekday_near(n: u32, days: u32, dow: impl Fn(u32) -> u32) -> u32 {
    match dow(n) {
        7 if n == 1 => 3,
        7 => n - 1,
        1 if n == days => n - 2,
        1 => n + 1,
        _ => n,
    }
}
