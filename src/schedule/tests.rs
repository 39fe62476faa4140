use super::*;
use time::macros::datetime;

fn next(expr: &str, after: OffsetDateTime) -> Option<OffsetDateTime> {
    Schedule::parse(expr).unwrap().next_after(after)
}

/// The first `n` fire times after `after`.
fn series(expr: &str, after: OffsetDateTime, n: usize) -> Vec<OffsetDateTime> {
    let s = Schedule::parse(expr).unwrap();
    let mut out = Vec::new();
    let mut t = after;
    while out.len() < n {
        t = s.next_after(t).unwrap();
        out.push(t);
    }
    out
}

fn error(expr: &str) -> String {
    Schedule::parse(expr).unwrap_err().to_string()
}

#[test]
fn rate_counts_from_the_epoch_by_default() {
    let t = datetime!(2026-11-27 12:03:30 UTC);
    assert_eq!(
        next("rate(5 minutes)", t),
        Some(datetime!(2026-11-27 12:05 UTC))
    );
    assert_eq!(
        next("rate(1 minute)", t),
        Some(datetime!(2026-11-27 12:04 UTC))
    );
    assert_eq!(
        next("rate(1 hour)", t),
        Some(datetime!(2026-11-27 13:00 UTC))
    );
    assert_eq!(
        next("rate(1 day)", t),
        Some(datetime!(2026-11-28 00:00 UTC))
    );
}

#[test]
fn rate_counts_from_its_anchor_and_is_strictly_after() {
    let s = Schedule::parse("rate(5 minutes)")
        .unwrap()
        .with_anchor(datetime!(2026-11-27 12:01:42 UTC));
    let at = datetime!(2026-11-27 12:06 UTC);
    assert_eq!(s.next_after(datetime!(2026-11-27 12:01:50 UTC)), Some(at));
    assert_eq!(s.next_after(at), Some(datetime!(2026-11-27 12:11 UTC)));
    // Before the anchor the ticks continue backwards on the same grid.
    assert_eq!(
        s.next_after(datetime!(2026-11-27 11:50 UTC)),
        Some(datetime!(2026-11-27 11:51 UTC))
    );
    assert_eq!(s.rate_period(), Some(Duration::minutes(5)));
}

#[test]
fn rate_stops_after_2199() {
    assert_eq!(next("rate(1 day)", datetime!(2199-12-31 00:00 UTC)), None);
    assert_eq!(
        next("rate(1 day)", datetime!(2199-12-30 00:00 UTC)),
        Some(datetime!(2199-12-31 00:00 UTC))
    );
}

#[test]
fn rate_errors() {
    let unit = "rate expression: use the singular unit for a value of 1 and the plural otherwise";
    assert_eq!(error("rate(1 minutes)"), unit);
    assert_eq!(error("rate(5 hour)"), unit);
    assert_eq!(
        error("rate(0 minutes)"),
        "rate expression: the value must be between 1 and 1000000"
    );
    for bad in [
        "rate(-1 minutes)",
        "rate(+5 minutes)",
        "rate(1.5 hours)",
        "rate(x days)",
    ] {
        assert_eq!(
            error(bad),
            "rate expression: the value must be a positive whole number",
            "{bad}"
        );
    }
    assert_eq!(
        error("rate(5 weeks)"),
        "rate expression: the unit must be minute(s), hour(s) or day(s)"
    );
    assert_eq!(
        error("rate(5)"),
        "rate expression: expected a value and a unit, as in rate(5 minutes)"
    );
    assert_eq!(
        error("rate(5 minutes now)"),
        "rate expression: expected a value and a unit, as in rate(5 minutes)"
    );
    assert!(Schedule::parse("rate(99999999999999999999 days)").is_err());
    assert!(Schedule::parse("rate(1000000 days)").is_ok());
    assert!(Schedule::parse("  rate(5   minutes)  ").is_ok());
}

#[test]
fn unknown_forms_and_length() {
    for bad in [
        "",
        "at(2026-01-01T00:00:00)",
        "cron 0 12 * * ? *",
        "rate(5 minutes",
        "RATE(5 minutes)",
    ] {
        assert_eq!(
            Schedule::parse(bad),
            Err(ScheduleError::UnknownForm),
            "{bad:?}"
        );
    }
    let long = format!("cron(0 12 * * ? *{})", " ".repeat(300));
    assert_eq!(
        error(&long),
        format!(
            "schedule expression is {} bytes; the limit is 256",
            long.len()
        )
    );
}

#[test]
fn cron_every_day_at_noon() {
    let t = datetime!(2026-11-27 12:00 UTC);
    assert_eq!(
        series("cron(0 12 * * ? *)", t, 2),
        [
            datetime!(2026-11-28 12:00 UTC),
            datetime!(2026-11-29 12:00 UTC)
        ]
    );
    assert_eq!(
        next("cron(15 12 * * ? *)", datetime!(2026-11-27 12:14:59 UTC)),
        Some(datetime!(2026-11-27 12:15 UTC))
    );
}

#[test]
fn cron_steps() {
    let t = datetime!(2026-11-27 12:07 UTC);
    assert_eq!(
        series("cron(0/15 * * * ? *)", t, 4),
        [
            datetime!(2026-11-27 12:15 UTC),
            datetime!(2026-11-27 12:30 UTC),
            datetime!(2026-11-27 12:45 UTC),
            datetime!(2026-11-27 13:00 UTC),
        ]
    );
    assert_eq!(
        series("cron(*/20 * * * ? *)", t, 2),
        [
            datetime!(2026-11-27 12:20 UTC),
            datetime!(2026-11-27 12:40 UTC)
        ]
    );
    assert_eq!(
        series("cron(1/10 * * * ? *)", t, 2),
        [
            datetime!(2026-11-27 12:11 UTC),
            datetime!(2026-11-27 12:21 UTC)
        ]
    );
    assert_eq!(
        series("cron(1-10/3 9 * * ? *)", t, 4),
        [
            datetime!(2026-11-28 09:01 UTC),
            datetime!(2026-11-28 09:04 UTC),
            datetime!(2026-11-28 09:07 UTC),
            datetime!(2026-11-28 09:10 UTC),
        ]
    );
    assert_eq!(
        series("cron(0 0 1 1/5 ? 2027/3)", t, 4),
        [
            datetime!(2027-01-01 00:00 UTC),
            datetime!(2027-06-01 00:00 UTC),
            datetime!(2027-11-01 00:00 UTC),
            datetime!(2030-01-01 00:00 UTC),
        ]
    );
}

#[test]
fn cron_weekdays_lists_and_names() {
    // 2026-11-27 is a Friday.
    let t = datetime!(2026-11-27 18:00 UTC);
    assert_eq!(
        series("cron(0 18 ? * MON-FRI *)", t, 2),
        [
            datetime!(2026-11-30 18:00 UTC),
            datetime!(2026-12-01 18:00 UTC)
        ]
    );
    // 1 = Sunday, 7 = Saturday.
    assert_eq!(
        series("cron(0 0 ? * 1,7 *)", t, 3),
        [
            datetime!(2026-11-28 00:00 UTC),
            datetime!(2026-11-29 00:00 UTC),
            datetime!(2026-12-05 00:00 UTC),
        ]
    );
    assert_eq!(
        series("cron(30 6 ? * sun *)", t, 1),
        [datetime!(2026-11-29 06:30 UTC)]
    );
    assert_eq!(
        series("cron(0 8 1 jan,Jul ? *)", t, 2),
        [
            datetime!(2027-01-01 08:00 UTC),
            datetime!(2027-07-01 08:00 UTC)
        ]
    );
    assert_eq!(
        series("cron(0 8 1 FEB-APR ? *)", t, 3),
        [
            datetime!(2027-02-01 08:00 UTC),
            datetime!(2027-03-01 08:00 UTC),
            datetime!(2027-04-01 08:00 UTC),
        ]
    );
    assert_eq!(
        series("cron(0 10,14 * * ? *)", t, 2),
        [
            datetime!(2026-11-28 10:00 UTC),
            datetime!(2026-11-28 14:00 UTC)
        ]
    );
}

#[test]
fn leap_years() {
    let t = datetime!(2026-01-01 00:00 UTC);
    assert_eq!(
        series("cron(0 0 29 2 ? *)", t, 3),
        [
            datetime!(2028-02-29 00:00 UTC),
            datetime!(2032-02-29 00:00 UTC),
            datetime!(2036-02-29 00:00 UTC),
        ]
    );
    // 2100 is not a leap year.
    assert_eq!(
        next("cron(0 0 29 FEB ? *)", datetime!(2096-03-01 00:00 UTC)),
        Some(datetime!(2104-02-29 00:00 UTC))
    );
    assert_eq!(
        series("cron(0 0 L 2 ? *)", t, 3),
        [
            datetime!(2026-02-28 00:00 UTC),
            datetime!(2027-02-28 00:00 UTC),
            datetime!(2028-02-29 00:00 UTC),
        ]
    );
}

#[test]
fn day_31_only_in_long_months() {
    assert_eq!(
        series("cron(0 0 31 * ? *)", datetime!(2026-02-01 00:00 UTC), 4),
        [
            datetime!(2026-03-31 00:00 UTC),
            datetime!(2026-05-31 00:00 UTC),
            datetime!(2026-07-31 00:00 UTC),
            datetime!(2026-08-31 00:00 UTC),
        ]
    );
    assert_eq!(
        series("cron(0 0 L * ? *)", datetime!(2026-01-31 00:00 UTC), 3),
        [
            datetime!(2026-02-28 00:00 UTC),
            datetime!(2026-03-31 00:00 UTC),
            datetime!(2026-04-30 00:00 UTC),
        ]
    );
}

#[test]
fn last_weekday_when_the_month_ends_on_a_weekend() {
    // January 2026 ends on a Saturday, February on a Saturday, May on a Sunday; March 31 is a
    // Tuesday.
    assert_eq!(
        series("cron(0 9 LW * ? 2026)", datetime!(2026-01-01 00:00 UTC), 5),
        [
            datetime!(2026-01-30 09:00 UTC),
            datetime!(2026-02-27 09:00 UTC),
            datetime!(2026-03-31 09:00 UTC),
            datetime!(2026-04-30 09:00 UTC),
            datetime!(2026-05-29 09:00 UTC),
        ]
    );
}

#[test]
fn nearest_weekday() {
    // 2026-08-01 is a Saturday: 1W is Monday the 3rd (never July 31).
    assert_eq!(
        next("cron(0 0 1W 8 ? *)", datetime!(2026-07-01 00:00 UTC)),
        Some(datetime!(2026-08-03 00:00 UTC))
    );
    // 2026-03-01 is a Sunday: Monday the 2nd.
    assert_eq!(
        next("cron(0 0 1W 3 ? *)", datetime!(2026-01-01 00:00 UTC)),
        Some(datetime!(2026-03-02 00:00 UTC))
    );
    // 2026-01-31 is a Saturday: Friday the 30th. 2026-05-31 is a Sunday: Friday the 29th.
    assert_eq!(
        next("cron(0 0 31W 1 ? *)", datetime!(2025-12-01 00:00 UTC)),
        Some(datetime!(2026-01-30 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 31W 5 ? *)", datetime!(2026-01-01 00:00 UTC)),
        Some(datetime!(2026-05-29 00:00 UTC))
    );
    // 2026-11-15 is a Sunday: Monday the 16th. A weekday stays.
    assert_eq!(
        next("cron(0 0 15W * ? *)", datetime!(2026-11-01 00:00 UTC)),
        Some(datetime!(2026-11-16 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 27W * ? *)", datetime!(2026-11-01 00:00 UTC)),
        Some(datetime!(2026-11-27 00:00 UTC))
    );
    // A day past the month's end does not fire in that month.
    assert_eq!(
        next("cron(0 0 30W * ? *)", datetime!(2026-02-01 00:00 UTC)),
        Some(datetime!(2026-03-30 00:00 UTC))
    );
}

#[test]
fn nth_weekday_of_the_month() {
    // November 2026 starts on a Sunday: its second Tuesday is the 10th.
    assert_eq!(
        next("cron(0 0 ? * 3#2 *)", datetime!(2026-11-01 00:00 UTC)),
        Some(datetime!(2026-11-10 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 ? * TUE#1 *)", datetime!(2026-11-01 00:00 UTC)),
        Some(datetime!(2026-11-03 00:00 UTC))
    );
    // A fifth Tuesday exists only in some months: March, June, September, December 2026.
    assert_eq!(
        series("cron(0 0 ? * 3#5 *)", datetime!(2026-01-01 00:00 UTC), 4),
        [
            datetime!(2026-03-31 00:00 UTC),
            datetime!(2026-06-30 00:00 UTC),
            datetime!(2026-09-29 00:00 UTC),
            datetime!(2026-12-29 00:00 UTC),
        ]
    );
}

#[test]
fn last_day_of_week() {
    // `L` alone is the last day of the week: Saturday.
    assert_eq!(
        next("cron(0 0 ? * L *)", datetime!(2026-11-27 00:00 UTC)),
        Some(datetime!(2026-11-28 00:00 UTC))
    );
    // `6L`: the last Friday of the month.
    assert_eq!(
        series("cron(0 0 ? * 6L *)", datetime!(2026-11-01 00:00 UTC), 2),
        [
            datetime!(2026-11-27 00:00 UTC),
            datetime!(2026-12-25 00:00 UTC)
        ]
    );
    assert_eq!(
        next("cron(0 0 ? * FRIL *)", datetime!(2026-11-01 00:00 UTC)),
        Some(datetime!(2026-11-27 00:00 UTC))
    );
}

#[test]
fn years_and_the_2199_bound() {
    assert_eq!(
        next("cron(0 0 * * ? 2030)", datetime!(2026-01-01 00:00 UTC)),
        Some(datetime!(2030-01-01 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 * * ? 2030)", datetime!(2031-01-01 00:00 UTC)),
        None
    );
    assert_eq!(
        next("cron(0 0 1 1 ? 2199)", datetime!(2199-01-01 00:00 UTC)),
        None
    );
    assert_eq!(
        next("cron(* * * * ? *)", datetime!(2199-12-31 23:59 UTC)),
        None
    );
    assert_eq!(
        next("cron(* * * * ? *)", datetime!(1960-05-01 00:00 UTC)),
        Some(datetime!(1970-01-01 00:00 UTC))
    );
    assert_eq!(
        next("cron(0 0 1 1 ? 1970-1975)", datetime!(1972-06-01 00:00 UTC)),
        Some(datetime!(1973-01-01 00:00 UTC))
    );
}

#[test]
fn never_matching_expressions_end_quickly() {
    let start = std::time::Instant::now();
    assert_eq!(
        next("cron(0 0 30 FEB ? *)", datetime!(1970-01-01 00:00 UTC)),
        None
    );
    assert_eq!(
        next("cron(0 0 31 4,6,9,11 ? *)", datetime!(1970-01-01 00:00 UTC)),
        None
    );
    // Not a timing assertion of the product: a guard that the search skips by field.
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn offsets_are_normalised_to_utc() {
    let t = datetime!(2026-11-27 14:30 +02:00);
    assert_eq!(
        next("cron(0 12 * * ? *)", t),
        Some(datetime!(2026-11-28 12:00 UTC))
    );
}

#[test]
fn days_fields_must_have_exactly_one_question_mark() {
    assert_eq!(
        error("cron(0 12 * * * *)"),
        "cron day-of-month and day-of-week: one of them must be '?' (both cannot be given)"
    );
    assert_eq!(
        error("cron(0 12 1 * MON *)"),
        "cron day-of-month and day-of-week: one of them must be '?' (both cannot be given)"
    );
    assert_eq!(
        error("cron(0 12 ? * ? *)"),
        "cron day-of-month and day-of-week: only one of them may be '?'; give the other a value"
    );
    assert!(Schedule::parse("cron(0 12 ? * * *)").is_ok());
}

#[test]
fn field_errors_name_field_token_and_reason() {
    let cases = [
        (
            "cron(0 12 * * ?)",
            "cron expression has 5 fields; it needs 6 (minutes hours day-of-month month day-of-week year)",
        ),
        (
            "cron(0 12 * * ? * *)",
            "cron expression has 7 fields; it needs 6 (minutes hours day-of-month month day-of-week year)",
        ),
        (
            "cron(60 12 * * ? *)",
            "cron minutes field, '60': value 60 is outside 0-59",
        ),
        (
            "cron(0 24 * * ? *)",
            "cron hours field, '24': value 24 is outside 0-23",
        ),
        (
            "cron(0 1,24 * * ? *)",
            "cron hours field, '24': value 24 is outside 0-23",
        ),
        (
            "cron(0 12 0 * ? *)",
            "cron day-of-month field, '0': value 0 is outside 1-31",
        ),
        (
            "cron(0 12 32W * ? *)",
            "cron day-of-month field, '32W': value 32 is outside 1-31",
        ),
        (
            "cron(0 12 * 13 ? *)",
            "cron month field, '13': value 13 is outside 1-12",
        ),
        (
            "cron(0 12 * FOO ? *)",
            "cron month field, 'FOO': not a number or a name",
        ),
        (
            "cron(0 12 ? * 8 *)",
            "cron day-of-week field, '8': value 8 is outside 1-7",
        ),
        (
            "cron(0 12 ? * 0 *)",
            "cron day-of-week field, '0': value 0 is outside 1-7",
        ),
        (
            "cron(0 12 * * ? 1969)",
            "cron year field, '1969': value 1969 is outside 1970-2199",
        ),
        (
            "cron(0 12 * * ? 2200)",
            "cron year field, '2200': value 2200 is outside 1970-2199",
        ),
        (
            "cron(30-10 12 * * ? *)",
            "cron minutes field, '30-10': range start is after its end",
        ),
        (
            "cron(0 FRI-MON ? * * *)",
            "cron hours field, 'FRI-MON': not a number or a name",
        ),
        (
            "cron(0 12 ? * FRI-MON *)",
            "cron day-of-week field, 'FRI-MON': range start is after its end",
        ),
        (
            "cron(0/0 12 * * ? *)",
            "cron minutes field, '0/0': increment must be between 1 and 60",
        ),
        (
            "cron(0/61 12 * * ? *)",
            "cron minutes field, '0/61': increment must be between 1 and 60",
        ),
        (
            "cron(0/x 12 * * ? *)",
            "cron minutes field, '0/x': increment must be between 1 and 60",
        ),
        (
            "cron(0 12 ? * 1/2 *)",
            "cron day-of-week field, '1/2': '/' is not allowed in this field",
        ),
        (
            "cron(L 12 * * ? *)",
            "cron minutes field, 'L': 'L' is not allowed in this field",
        ),
        (
            "cron(0 ? * * ? *)",
            "cron hours field, '?': '?' is not allowed in this field",
        ),
        (
            "cron(0 12 * * ? 2026#1)",
            "cron year field, '2026#1': '#' is not allowed in this field",
        ),
        (
            "cron(0 12 L,1 * ? *)",
            "cron day-of-month field, 'L,1': 'L' must stand alone in this field (no lists or ranges)",
        ),
        (
            "cron(0 12 1-5W * ? *)",
            "cron day-of-month field, '1-5W': 'W' must stand alone in this field (no lists or ranges)",
        ),
        (
            "cron(0 12 ?,1 * ? *)",
            "cron day-of-month field, '?,1': '?' must stand alone in this field (no lists or ranges)",
        ),
        (
            "cron(0 12 ? * 3#1,6#3 *)",
            "cron day-of-week field, '3#1,6#3': '#' must stand alone in this field (no lists or ranges)",
        ),
        (
            "cron(0 12 ? * 3#6 *)",
            "cron day-of-week field, '3#6': the week number after '#' must be between 1 and 5",
        ),
        (
            "cron(0 12 ? * 3#0 *)",
            "cron day-of-week field, '3#0': the week number after '#' must be between 1 and 5",
        ),
        (
            "cron(0 12 ? * 3# *)",
            "cron day-of-week field, '3#': the week number after '#' must be between 1 and 5",
        ),
        (
            "cron(0 12 ? * #2 *)",
            "cron day-of-week field, '#2': empty value",
        ),
        (
            "cron(0 12 ? * 9L *)",
            "cron day-of-week field, '9L': value 9 is outside 1-7",
        ),
        (
            "cron(0 12 ? * MON,,FRI *)",
            "cron day-of-week field, '': empty value",
        ),
        (
            "cron(0 12 * * W *)",
            "cron day-of-week field, 'W': 'W' is not allowed in this field",
        ),
        ("cron(0 12 * * ? -1)", "cron year field, '-1': empty value"),
        (
            "cron(99999 12 * * ? *)",
            "cron minutes field, '99999': not a number or a name",
        ),
        (
            "cron(0 12 * * ? é)",
            "cron year field, 'é': not a number or a name",
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(error(expr), want, "{expr}");
    }
}

#[test]
fn errors_are_typed() {
    assert_eq!(
        Schedule::parse("cron(0 12 * 13 ? *)"),
        Err(ScheduleError::Field {
            field: Field::Month,
            token: "13".into(),
            reason: Reason::OutOfRange {
                value: 13,
                min: 1,
                max: 12
            },
        })
    );
    assert_eq!(
        Schedule::parse("cron(0 12 * *)"),
        Err(ScheduleError::FieldCount(4))
    );
}

#[test]
fn the_expression_is_kept_for_display() {
    let s = Schedule::parse(" cron(0 12 * * ? *) ").unwrap();
    assert_eq!(s.to_string(), "cron(0 12 * * ? *)");
    assert_eq!(s.rate_period(), None);
}

/// A slow, obviously correct matcher for expressions with plain fields only, to cross-check
/// the field-skipping search over a few months of minutes.
#[test]
fn search_agrees_with_a_minute_by_minute_scan() {
    let exprs = [
        (
            "cron(*/7 3-5,22 * * ? *)",
            [0, 7, 14, 21, 28, 35, 42, 49, 56].as_slice(),
            [3, 4, 5, 22].as_slice(),
        ),
        ("cron(13 0/6 * * ? *)", &[13], &[0, 6, 12, 18]),
    ];
    for (expr, minutes, hours) in exprs {
        let s = Schedule::parse(expr).unwrap();
        let mut t = datetime!(2026-12-30 00:00 UTC);
        let mut fired = s.next_after(t - Duration::minutes(1)).unwrap();
        for _ in 0..(60 * 24 * 5) {
            if minutes.contains(&t.minute()) && hours.contains(&t.hour()) {
                assert_eq!(fired, t, "{expr}");
                fired = s.next_after(t).unwrap();
            }
            t += Duration::minutes(1);
        }
    }
}
