//! Validation of what the driver captures at the door: the printed name, the capture time and the
//! GPS fix. Pure: takes values and "now", returns the cleaned value or the reason for refusal.

use chrono::{DateTime, Datelike, Duration, Utc};
use geo_types::Point;

use crate::error::{Error, Result};

/// A GPS fix as the phone reported it. `point` is (x = longitude, y = latitude), WGS 84.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpsFix {
    pub point: Point<f64>,
    /// Radius of 68 % confidence, metres.
    pub accuracy_m: f64,
    /// When the phone took the fix (may be earlier than the capture).
    pub fix_at: DateTime<Utc>,
}

impl GpsFix {
    pub fn new(lat: f64, lon: f64, accuracy_m: f64, fix_at: DateTime<Utc>) -> Self {
        Self {
            point: Point::new(lon, lat),
            accuracy_m,
            fix_at,
        }
    }
    pub fn lat(&self) -> f64 {
        self.point.y()
    }
    pub fn lon(&self) -> f64 {
        self.point.x()
    }
}

/// A fix older than this at capture is kept but flagged stale.
pub const STALE_FIX_AFTER: Duration = Duration::minutes(30);
/// Tolerated clock disagreement between the GPS fix, the capture and the device clock.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);
/// Longest printed name accepted.
pub const MAX_NAME_CHARS: usize = 80;
/// How far a GPS fix time may be after the capture time: the device clock may run slow while
/// GNSS time is right. Accepted, and the skew recorded; beyond this the fix is not this capture's.
pub const MAX_FIX_AHEAD: Duration = Duration::minutes(10);
/// A phone's worst useful fix; anything coarser is not a location.
pub const MAX_ACCURACY_M: f64 = 10_000.0;

/// A fix that passed validation, with its staleness decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckedFix {
    pub fix: GpsFix,
    pub stale: bool,
    /// How far the fix time was after the capture time, in ms (0 when the fix came first).
    pub ahead_ms: i64,
}

/// The printed name as it will be sent: trimmed, inner runs of whitespace collapsed.
pub fn check_name(name: &str) -> Result<String> {
    let cleaned = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if cleaned.is_empty() {
        return Err(Error::invalid(
            "signed_by",
            "is empty; type the name the consignee printed",
        ));
    }
    if cleaned.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            "signed_by",
            format!("is longer than {MAX_NAME_CHARS} characters; shorten it"),
        ));
    }
    if cleaned.chars().any(char::is_control) {
        return Err(Error::invalid(
            "signed_by",
            "contains control characters; type the name again",
        ));
    }
    // A direction override makes the name display as something other than what is stored and
    // sent (a POD is evidence); emoji sequences (ZWJ, variation selectors) stay welcome.
    if cleaned.chars().any(is_bidi_control) {
        return Err(Error::invalid(
            "signed_by",
            "contains text-direction control characters; type the name again",
        ));
    }
    if cleaned.chars().all(|c| is_invisible(c) || c == ' ') {
        return Err(Error::invalid(
            "signed_by",
            "has no visible characters; type the name the consignee printed",
        ));
    }
    Ok(cleaned)
}

/// Unicode's explicit bidirectional formatting characters (embeddings, overrides, isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing on their own: zero-width spaces and joiners, marks, the BOM,
/// soft hyphen, variation selectors.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    ) || is_bidi_control(c)
}

/// An instant the app passes must be one the store can hold and read back.
fn check_year(field: &'static str, t: DateTime<Utc>, what: &str) -> Result<()> {
    if crate::domain::year_in_range(t.year()) {
        return Ok(());
    }
    let (first, last) = (
        crate::domain::INSTANT_YEARS.start(),
        crate::domain::INSTANT_YEARS.end(),
    );
    Err(Error::invalid(
        field,
        format!("is outside the years {first}..={last}; pass the time {what}"),
    ))
}

/// The capture time comes from the device clock; a time in the future is a bug in the caller.
pub fn check_captured_at(captured_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    check_year("captured_at", captured_at, "the capture was made")?;
    if captured_at > now + CLOCK_SKEW {
        return Err(Error::invalid(
            "captured_at",
            "is in the future; pass the time the capture was made",
        ));
    }
    Ok(())
}

pub fn check_fix(fix: GpsFix, captured_at: DateTime<Utc>) -> Result<CheckedFix> {
    let (lat, lon, acc) = (fix.lat(), fix.lon(), fix.accuracy_m);
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(Error::invalid(
            "gps.lat",
            "must be a number between -90 and 90",
        ));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(Error::invalid(
            "gps.lon",
            "must be a number between -180 and 180",
        ));
    }
    if !acc.is_finite() || !(0.0..=MAX_ACCURACY_M).contains(&acc) {
        return Err(Error::invalid(
            "gps.accuracy_m",
            format!("must be between 0 and {MAX_ACCURACY_M} metres"),
        ));
    }
    check_year("gps.fix_at", fix.fix_at, "the phone took the fix")?;
    let ahead = fix.fix_at.signed_duration_since(captured_at);
    if ahead > MAX_FIX_AHEAD {
        return Err(Error::invalid(
            "gps.fix_at",
            "is more than 10 minutes after the capture; pass the time the phone took the fix",
        ));
    }
    Ok(CheckedFix {
        fix,
        stale: -ahead > STALE_FIX_AFTER,
        ahead_ms: ahead.num_milliseconds().max(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap()
    }

    fn refused_field(r: Result<impl std::fmt::Debug>) -> &'static str {
        match r {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn names_are_cleaned_or_refused() {
        assert_eq!(check_name("  Jo   Patel ").unwrap(), "Jo Patel");
        assert_eq!(refused_field(check_name("   ")), "signed_by");
        assert_eq!(refused_field(check_name(&"x".repeat(81))), "signed_by");
        assert_eq!(refused_field(check_name("Jo\u{7}Patel")), "signed_by");
        assert!(check_name(&"é".repeat(80)).is_ok());
        assert_eq!(refused_field(check_name("\u{202E}letaP oJ")), "signed_by");
        assert_eq!(refused_field(check_name("\u{200B} \u{FEFF}")), "signed_by");
        assert_eq!(check_name("Jo 👩‍👩‍👧 Patel").unwrap(), "Jo 👩‍👩‍👧 Patel");
        assert_eq!(check_name("❤️ Jo").unwrap(), "❤️ Jo");
    }

    #[test]
    fn times_the_store_cannot_hold_are_refused() {
        let y1999 = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            refused_field(check_captured_at(y1999, now())),
            "captured_at"
        );
        let old_fix = GpsFix::new(52.48, -1.89, 8.0, Utc.timestamp_opt(0, 0).unwrap());
        assert_eq!(refused_field(check_fix(old_fix, now())), "gps.fix_at");
    }

    #[test]
    fn fixes_are_validated_and_staleness_flagged() {
        let ok = GpsFix::new(52.48, -1.89, 8.0, now() - Duration::minutes(2));
        assert!(!check_fix(ok, now()).unwrap().stale);
        let old = GpsFix::new(52.48, -1.89, 8.0, now() - Duration::minutes(31));
        assert!(check_fix(old, now()).unwrap().stale);
        for (fix, field) in [
            (GpsFix::new(f64::NAN, 0.0, 5.0, now()), "gps.lat"),
            (GpsFix::new(91.0, 0.0, 5.0, now()), "gps.lat"),
            (GpsFix::new(0.0, 180.5, 5.0, now()), "gps.lon"),
            (GpsFix::new(0.0, f64::INFINITY, 5.0, now()), "gps.lon"),
            (GpsFix::new(0.0, 0.0, -1.0, now()), "gps.accuracy_m"),
            (GpsFix::new(0.0, 0.0, f64::NAN, now()), "gps.accuracy_m"),
            (
                GpsFix::new(0.0, 0.0, 5.0, now() + Duration::minutes(11)),
                "gps.fix_at",
            ),
        ] {
            assert_eq!(refused_field(check_fix(fix, now())), field);
        }
    }

    #[test]
    fn a_fix_a_few_minutes_after_the_capture_is_accepted_with_its_skew() {
        let slow_clock = GpsFix::new(52.48, -1.89, 8.0, now() + Duration::minutes(7));
        let checked = check_fix(slow_clock, now()).unwrap();
        assert_eq!(checked.ahead_ms, 7 * 60 * 1000);
        assert!(!checked.stale);
        let edge = GpsFix::new(52.48, -1.89, 8.0, now() + Duration::minutes(10));
        assert!(check_fix(edge, now()).is_ok());
        let before = GpsFix::new(52.48, -1.89, 8.0, now() - Duration::minutes(1));
        assert_eq!(check_fix(before, now()).unwrap().ahead_ms, 0);
    }

    #[test]
    fn capture_times_in_the_future_are_refused() {
        assert!(check_captured_at(now(), now()).is_ok());
        assert!(check_captured_at(now() + Duration::minutes(4), now()).is_ok());
        assert_eq!(
            refused_field(check_captured_at(now() + Duration::hours(1), now())),
            "captured_at"
        );
    }
}
