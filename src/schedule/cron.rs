//! The six cron fields parsed into sets (minutes, hours, month, year) and the two day fields'
//! special forms (`?`, `L`, `LW`, `nW`, `nL`, `n#k`).

use super::{Field, MAX_YEAR, MIN_YEAR, Reason, ScheduleError};

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A set of values `min..=min+255` of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Set {
    min: u32,
    bits: [u64; 4],
}

impl Set {
    fn empty(min: u32) -> Set {
        Set { min, bits: [0; 4] }
    }

    fn insert(&mut self, v: u32) {
        let i = (v - self.min) as usize;
        self.bits[i / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, v: u32) -> bool {
        let Some(i) = v.checked_sub(self.min).map(|i| i as usize) else {
            return false;
        };
        i < 256 && self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    /// The smallest member `>= v`.
    pub fn next_from(&self, v: u32) -> Option<u32> {
        let mut i = v.saturating_sub(self.min) as usize;
        while i < 256 {
            let word = self.bits[i / 64] >> (i % 64);
            if word != 0 {
                return Some(self.min + (i + word.trailing_zeros() as usize) as u32);
            }
            i = (i / 64 + 1) * 64;
        }
        None
    }
}

/// The day-of-month field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dom {
    /// `?`: the day-of-week field decides.
    Any,
    Days(Set),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday (Monday–Friday) of the month.
    LastWeekday,
    /// `nW`: the weekday nearest to day n, within the month.
    NearestWeekday(u32),
}

/// The day-of-week field; days are 1 = Sunday … 7 = Saturday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dow {
    /// `?`: the day-of-month field decides.
    Any,
    Days(Set),
    /// `nL`: the last such weekday of the month.
    Last(u32),
    /// `n#k`: the k-th such weekday of the month.
    Nth(u32, u32),
}

/// A parsed `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub minutes: Set,
    pub hours: Set,
    pub dom: Dom,
    pub months: Set,
    pub dow: Dow,
    pub years: Set,
}

/// What one numeric field accepts.
struct Spec {
    field: Field,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    step: bool,
}

const MINUTES: Spec = spec(Field::Minutes, 0, 59, &[], true);
const HOURS: Spec = spec(Field::Hours, 0, 23, &[], true);
const DOM: Spec = spec(Field::DayOfMonth, 1, 31, &[], true);
const MONTH: Spec = spec(Field::Month, 1, 12, &MONTHS, true);
const DOW: Spec = spec(Field::DayOfWeek, 1, 7, &DAYS, false);
const YEAR: Spec = spec(Field::Year, MIN_YEAR as u32, MAX_YEAR as u32, &[], true);

const fn spec(
    field: Field,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    step: bool,
) -> Spec {
    Spec {
        field,
        min,
        max,
        names,
        step,
    }
}

fn err(field: Field, token: &str, reason: Reason) -> ScheduleError {
    ScheduleError::Field {
        field,
        token: token.to_owned(),
        reason,
    }
}

impl Cron {
    /// Parses the text inside `cron(...)`.
    pub fn parse(inner: &str) -> Result<Cron, ScheduleError> {
        let fields: Vec<&str> = inner.split_ascii_whitespace().collect();
        let [mi, h, dom, mo, dow, y] = fields[..] else {
            return Err(ScheduleError::FieldCount(fields.len()));
        };
        let cron = Cron {
            minutes: parse_set(&MINUTES, mi)?,
            hours: parse_set(&HOURS, h)?,
            dom: parse_dom(dom)?,
            months: parse_set(&MONTH, mo)?,
            dow: parse_dow(dow)?,
            years: parse_set(&YEAR, y)?,
        };
        match (cron.dom, cron.dow) {
            (Dom::Any, Dow::Any) => Err(ScheduleError::Days(
                "only one of them may be '?'; give the other a value",
            )),
            (Dom::Any, _) | (_, Dow::Any) => Ok(cron),
            _ => Err(ScheduleError::Days(
                "one of them must be '?' (both cannot be given)",
            )),
        }
    }
}

fn parse_dom(text: &str) -> Result<Dom, ScheduleError> {
    let up = text.to_ascii_uppercase();
    match up.as_str() {
        "?" => return Ok(Dom::Any),
        "L" => return Ok(Dom::Last),
        "LW" => return Ok(Dom::LastWeekday),
        _ => {}
    }
    if let Some(day) = up.strip_suffix('W')
        && !day.contains([',', '-', '/', '*', 'L', 'W'])
    {
        return Ok(Dom::NearestWeekday(parse_value(&DOM, day, text)?));
    }
    standalone_check(Field::DayOfMonth, text, &["?", "L", "W"])?;
    Ok(Dom::Days(parse_set(&DOM, text)?))
}

fn parse_dow(text: &str) -> Result<Dow, ScheduleError> {
    let up = text.to_ascii_uppercase();
    match up.as_str() {
        "?" => return Ok(Dow::Any),
        "L" => {
            let mut sat = Set::empty(1);
            sat.insert(7);
            return Ok(Dow::Days(sat));
        }
        _ => {}
    }
    let single = !up.contains([',', '-', '/', '*']);
    if let Some((day, nth)) = up.split_once('#')
        && single
    {
        let day = parse_value(&DOW, day, text)?;
        return match nth.parse::<u32>() {
            Ok(n @ 1..=5) if nth.len() == 1 => Ok(Dow::Nth(day, n)),
            _ => Err(err(Field::DayOfWeek, text, Reason::BadNth)),
        };
    }
    if let Some(day) = up.strip_suffix('L')
        && single
    {
        return Ok(Dow::Last(parse_value(&DOW, day, text)?));
    }
    standalone_check(Field::DayOfWeek, text, &["?", "L", "#"])?;
    Ok(Dow::Days(parse_set(&DOW, text)?))
}

/// A list or range that contains one of the stand-alone forms is refused by name.
fn standalone_check(field: Field, text: &str, forms: &[&'static str]) -> Result<(), ScheduleError> {
    let up = text.to_ascii_uppercase();
    for form in forms {
        // Day and month names contain letters too ("WED", "JUL"): look at what is left
        // once the names are removed.
        let stripped = DAYS.iter().fold(up.clone(), |s, n| s.replace(n, ""));
        if stripped.contains(form) {
            return Err(err(field, text, Reason::MustStandAlone(form)));
        }
    }
    Ok(())
}

/// A comma-separated list of `*`, `v`, `a-b`, each optionally `/step`.
fn parse_set(spec: &Spec, text: &str) -> Result<Set, ScheduleError> {
    let mut set = Set::empty(spec.min);
    for token in text.split(',') {
        add_token(spec, token, &mut set)?;
    }
    Ok(set)
}

fn add_token(spec: &Spec, token: &str, set: &mut Set) -> Result<(), ScheduleError> {
    let (range, step) = match token.split_once('/') {
        Some(_) if !spec.step => return Err(err(spec.field, token, Reason::NotAllowed('/'))),
        Some((range, step)) => (range, Some(parse_step(spec, step, token)?)),
        None => (token, None),
    };
    let (lo, hi) = if range == "*" {
        (spec.min, spec.max)
    } else if let Some((a, b)) = range.split_once('-') {
        let (a, b) = (parse_value(spec, a, token)?, parse_value(spec, b, token)?);
        if a > b {
            return Err(err(spec.field, token, Reason::ReversedRange));
        }
        (a, b)
    } else {
        let v = parse_value(spec, range, token)?;
        // `a/n` runs from a to the end of the field.
        (v, if step.is_some() { spec.max } else { v })
    };
    let step = step.unwrap_or(1);
    let mut v = lo;
    while v <= hi {
        set.insert(v);
        v += step;
    }
    Ok(())
}

fn parse_step(spec: &Spec, step: &str, token: &str) -> Result<u32, ScheduleError> {
    let max = spec.max - spec.min + 1;
    match number(step) {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(err(spec.field, token, Reason::BadIncrement { max })),
    }
}

/// A number or (case-insensitive) name within the field's range.
fn parse_value(spec: &Spec, text: &str, token: &str) -> Result<u32, ScheduleError> {
    if text.is_empty() {
        return Err(err(spec.field, token, Reason::Empty));
    }
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(spec.min + i as u32);
    }
    let Some(v) = number(text) else {
        return Err(err(spec.field, token, not_a_number(text)));
    };
    if v < spec.min || v > spec.max {
        let (min, max) = (spec.min, spec.max);
        return Err(err(
            spec.field,
            token,
            Reason::OutOfRange { value: v, min, max },
        ));
    }
    Ok(v)
}

/// A wildcard used where the field does not take it is named; anything else is just not a
/// number.
fn not_a_number(text: &str) -> Reason {
    match text
        .chars()
        .find(|c| matches!(c, '?' | 'L' | 'l' | 'W' | 'w' | '#' | '*'))
    {
        Some(c) => Reason::NotAllowed(c.to_ascii_uppercase()),
        None => Reason::NotANumber,
    }
}

/// Up to four ASCII digits.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
