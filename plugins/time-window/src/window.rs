//! The weekly window of `time-window` and whether an instant is inside it: plain Rust,
//! tested on the host.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Minutes in a day: `24:00`, the end of a range that runs to midnight.
const DAY_MINUTES: u32 = 24 * 60;

const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// One range of hours, in minutes since midnight, local time. `start > end` is an
/// overnight range, which belongs to the day it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First minute inside, `0..1440`.
    pub start: u32,
    /// First minute after, `1..=1440`; never equal to `start`.
    pub end: u32,
}

impl Range {
    /// Whether minute `minute` of weekday `day` (0 = Monday) is inside this range of one
    /// of `days`.
    fn contains(self, days: &[bool; 7], day: usize, minute: u32) -> bool {
        if self.start < self.end {
            days[day] && (self.start..self.end).contains(&minute)
        } else {
            (days[day] && minute >= self.start) || (days[(day + 6) % 7] && minute < self.end)
        }
    }
}

/// A weekly window in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Open days, Monday first.
    pub days: [bool; 7],
    /// Open hours of each open day.
    pub ranges: Vec<Range>,
    /// The zone of both.
    pub tz: Tz,
    /// The window as the params said it, for messages.
    text: String,
}

/// Whether an instant is inside the window, and a message saying so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Inside.
    pub open: bool,
    /// What was seen: the local time, the window, and when closed, when it next opens.
    pub message: String,
}

impl Window {
    /// From the params `weekdays`, `hours` and `timezone`.
    pub fn parse(weekdays: &str, hours: &str, timezone: &str) -> Result<Window, String> {
        let days = parse_weekdays(weekdays)?;
        let ranges = parse_hours(hours)?;
        let timezone = timezone.trim();
        let tz: Tz = timezone.parse().map_err(|_| {
            format!(
                "param `timezone`: unknown time zone {timezone:?} (an IANA name such as `Europe/Paris`, or `UTC`)"
            )
        })?;
        Ok(Window {
            days,
            ranges,
            tz,
            text: format!("{} {} ({tz})", weekdays.trim(), hours.trim()),
        })
    }

    /// Whether local time `at` (in [`Window::tz`]) is inside.
    pub fn contains<T: TimeZone>(&self, at: &DateTime<T>) -> bool {
        let local = at.with_timezone(&self.tz);
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = local.hour() * 60 + local.minute();
        self.ranges
            .iter()
            .any(|range| range.contains(&self.days, day, minute))
    }

    /// When the window next opens after `now` (within a week), if it is closed now.
    pub fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let today = now.with_timezone(&self.tz).date_naive();
        (0..=7)
            .filter_map(|offset| today.checked_add_signed(Duration::days(offset)))
            .filter(|date| self.days[date.weekday().num_days_from_monday() as usize])
            .flat_map(|date| {
                self.ranges
                    .iter()
                    .filter_map(move |r| self.at(date, r.start))
            })
            .filter(|opening| *opening > now)
            .min()
    }

    /// Minute `minute` of local `date`; a time a DST change skips moves to the next hour.
    fn at(&self, date: NaiveDate, minute: u32) -> Option<DateTime<Tz>> {
        let naive = date.and_hms_opt(minute / 60, minute % 60, 0)?;
        self.tz.from_local_datetime(&naive).earliest().or_else(|| {
            self.tz
                .from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
    }

    /// Whether `now` is inside, with a message naming the local time and the window.
    pub fn judge(&self, now: DateTime<Utc>) -> Verdict {
        let local = now.with_timezone(&self.tz);
        let seen = local.format("%a %Y-%m-%d %H:%M %Z");
        if self.contains(&now) {
            return Verdict {
                open: true,
                message: format!("{seen} is inside the window {}", self.text),
            };
        }
        let next = match self.next_opening(now) {
            Some(at) => format!("; it opens {}", at.format("%a %Y-%m-%d %H:%M %Z")),
            None => String::new(),
        };
        Verdict {
            open: false,
            message: format!("{seen} is outside the window {}{next}", self.text),
        }
    }
}

/// `Mon-Fri`, `Mon,Wed`, `Sat-Mon` (wrapping), `Monday`, case-insensitive; open days,
/// Monday first.
pub fn parse_weekdays(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let mut d = from;
                loop {
                    days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(part)?] = true,
        }
    }
    if days.iter().any(|open| *open) {
        Ok(days)
    } else {
        Err(format!(
            "param `weekdays`: {text:?} names no day (as in `Mon-Fri` or `Mon,Wed`)"
        ))
    }
}

/// A day's English name or its first three letters; 0 = Monday.
fn day(name: &str) -> Result<usize, String> {
    let lower = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|full| lower.len() >= 3 && full.starts_with(&lower))
        .ok_or_else(|| {
            format!("param `weekdays`: {name:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
        })
}

/// `09:00-17:00`, `09:00-12:00,13:00-17:00`, `22:00-06:00` (overnight), `00:00-24:00`.
pub fn parse_hours(text: &str) -> Result<Vec<Range>, String> {
    let ranges = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let invalid = |why: &str| format!("param `hours`: {part:?} {why}");
            let (start, end) = part
                .split_once('-')
                .ok_or_else(|| invalid("is not a range (as in `09:00-17:00`)"))?;
            let start = minute_of_day(start).ok_or_else(|| invalid("has an invalid start"))?;
            let end = minute_of_day(end).ok_or_else(|| invalid("has an invalid end"))?;
            if start == DAY_MINUTES {
                return Err(invalid("starts at 24:00"));
            }
            if start == end || (start == 0 && end == 0) {
                return Err(invalid("is empty (the whole day is `00:00-24:00`)"));
            }
            Ok(Range {
                start,
                end: if end == 0 { DAY_MINUTES } else { end },
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ranges.is_empty() {
        return Err(format!(
            "param `hours`: {text:?} names no range (as in `09:00-17:00`)"
        ));
    }
    Ok(ranges)
}

/// `HH:MM` (or `H:MM`) as minutes since midnight; `24:00` is the end of the day.
fn minute_of_day(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .with_timezone(&Utc)
    }

    fn window(weekdays: &str, hours: &str, tz: &str) -> Window {
        Window::parse(weekdays, hours, tz).expect("valid window")
    }

    #[test]
    fn weekdays_parse_as_ranges_and_lists() {
        let open = |text: &str| {
            let days = parse_weekdays(text).expect(text);
            (0..7).filter(|d| days[*d]).collect::<Vec<_>>()
        };
        assert_eq!(open("Mon-Fri"), [0, 1, 2, 3, 4]);
        assert_eq!(open("mon,WED"), [0, 2]);
        assert_eq!(open("Sat-Mon"), [0, 5, 6]);
        assert_eq!(open("Sunday"), [6]);
        assert_eq!(open("Tue-Tue"), [1]);
        assert_eq!(open("Mon-Sun"), [0, 1, 2, 3, 4, 5, 6]);
        for bad in ["", "Mo", "Funday", "Mon-", "Mon-Fri-Sat", " , "] {
            assert!(parse_weekdays(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hours_parse_as_minutes() {
        let r = |start, end| Range { start, end };
        assert_eq!(parse_hours("09:00-17:00"), Ok(vec![r(540, 1020)]));
        assert_eq!(
            parse_hours("9:00-12:00, 13:30-17:00"),
            Ok(vec![r(540, 720), r(810, 1020)])
        );
        assert_eq!(parse_hours("22:00-06:00"), Ok(vec![r(1320, 360)]));
        assert_eq!(parse_hours("00:00-24:00"), Ok(vec![r(0, 1440)]));
        assert_eq!(parse_hours("18:00-00:00"), Ok(vec![r(1080, 1440)]));
        for bad in [
            "",
            "9-17",
            "09:00",
            "25:00-26:00",
            "09:60-10:00",
            "10:00-10:00",
            "24:00-01:00",
            "00:00-00:00",
            "09:0-10:00",
            "x",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert!(Window::parse("Mon", "09:00-10:00", "Europe/Paris").is_ok());
        assert!(Window::parse("Mon", "09:00-10:00", " UTC ").is_ok());
        let err = Window::parse("Mon", "09:00-10:00", "Mars/Olympus").expect_err("no such zone");
        assert!(err.contains("timezone"), "{err}");
    }

    #[test]
    fn office_hours_in_paris() {
        let w = window("Mon-Fri", "09:00-17:00", "Europe/Paris");
        // 2025-01-08 is a Wednesday; Paris is UTC+1 in winter, UTC+2 in summer.
        let table = [
            ("2025-01-08T07:59:00Z", false), // 08:59 local
            ("2025-01-08T08:00:00Z", true),  // 09:00 local
            ("2025-01-08T15:59:00Z", true),  // 16:59 local
            ("2025-01-08T16:00:00Z", false), // 17:00 local: the end is outside
            ("2025-01-11T10:00:00Z", false), // Saturday
            ("2025-07-09T07:30:00Z", true),  // 09:30 local in summer time
            ("2025-07-09T15:30:00Z", false), // 17:30 local in summer time
        ];
        for (at, open) in table {
            assert_eq!(w.contains(&utc(at)), open, "{at}");
            assert_eq!(w.judge(utc(at)).open, open, "{at}");
        }
    }

    #[test]
    fn the_weekday_is_the_local_one() {
        // Sunday 23:30 UTC is Monday 08:30 in Tokyo.
        let tokyo = window("Mon", "08:00-09:00", "Asia/Tokyo");
        assert!(tokyo.contains(&utc("2025-01-12T23:30:00Z")));
        assert!(!window("Mon", "08:00-09:00", "UTC").contains(&utc("2025-01-12T23:30:00Z")));
    }

    #[test]
    fn overnight_ranges_belong_to_the_day_they_start() {
        let w = window("Fri", "22:00-06:00", "UTC");
        let table = [
            ("2025-01-10T21:59:00Z", false), // Friday before
            ("2025-01-10T22:00:00Z", true),  // Friday night
            ("2025-01-11T03:00:00Z", true),  // Saturday morning, Friday's range
            ("2025-01-11T06:00:00Z", false),
            ("2025-01-11T23:00:00Z", false), // Saturday night: not an open day
            ("2025-01-10T03:00:00Z", false), // Friday morning is Thursday's range
        ];
        for (at, open) in table {
            assert_eq!(w.contains(&utc(at)), open, "{at}");
        }
    }

    #[test]
    fn messages_say_the_local_time_and_the_next_opening() {
        let w = window("Mon-Fri", "09:00-17:00", "Europe/Paris");
        let inside = w.judge(utc("2025-01-08T09:15:00Z"));
        assert_eq!(
            inside.message,
            "Wed 2025-01-08 10:15 CET is inside the window Mon-Fri 09:00-17:00 (Europe/Paris)"
        );
        let outside = w.judge(utc("2025-01-11T10:00:00Z"));
        assert_eq!(
            outside.message,
            "Sat 2025-01-11 11:00 CET is outside the window Mon-Fri 09:00-17:00 (Europe/Paris); it opens Mon 2025-01-13 09:00 CET"
        );
        // Later the same day.
        let early = w.judge(utc("2025-01-08T06:00:00Z"));
        assert!(
            early.message.ends_with("it opens Wed 2025-01-08 09:00 CET"),
            "{}",
            early.message
        );
    }

    #[test]
    fn a_skipped_local_time_opens_an_hour_later() {
        // 2025-03-30 02:00 does not exist in Paris (clocks go from 02:00 to 03:00).
        let w = window("Sun", "02:30-04:00", "Europe/Paris");
        let next = w.next_opening(utc("2025-03-29T12:00:00Z")).expect("opens");
        assert_eq!(next.with_timezone(&Utc), utc("2025-03-30T01:30:00Z"));
    }
}
