//! Service centre time stamps (TS 23.040 9.2.3.11): seven octets of swapped semi-octets,
//! year to second, then the time zone in quarters of an hour with a sign bit.
//!
//! This file owns the octets only; it never reads the clock.

use std::fmt;

use super::PduError;

/// A TP-SCTS, TP-DT or absolute TP-VP value: local time at the sender and its offset from
/// UTC. Field values are reported as sent (each a pair of decimal semi-octets), not
/// checked against the calendar: a report with an odd clock is still a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// The year within the century, 0..=99 (TS 23.040 sends no century).
    pub year: u8,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// The offset from UTC in quarters of an hour, -79..=79.
    pub tz_quarters: i8,
}

impl Timestamp {
    /// Decodes the seven octets; an error if a semi-octet is not a decimal digit.
    pub(crate) fn decode(octets: [u8; 7], field: &'static str) -> Result<Timestamp, PduError> {
        let [year, month, day, hour, minute, second, zone] = octets;
        let value = |octet: u8| swapped_bcd(octet).ok_or(PduError::BadTimestamp { field });
        // The zone's first semi-octet (the low nibble) carries the sign in its bit 3
        // (TS 23.040 9.2.3.11: "bit 3 of the seventh octet").
        let magnitude = swapped_bcd(zone & 0xF7).ok_or(PduError::BadTimestamp { field })? as i8;
        Ok(Timestamp {
            year: value(year)?,
            month: value(month)?,
            day: value(day)?,
            hour: value(hour)?,
            minute: value(minute)?,
            second: value(second)?,
            tz_quarters: if zone & 0x08 != 0 {
                -magnitude
            } else {
                magnitude
            },
        })
    }

    /// Encodes the seven octets. Values above 99 (or a zone beyond ±79 quarters) are
    /// clamped, since a semi-octet pair cannot carry them.
    pub fn encode(&self) -> [u8; 7] {
        let zone = to_swapped_bcd(self.tz_quarters.unsigned_abs().min(79));
        let sign = if self.tz_quarters < 0 { 0x08 } else { 0 };
        [
            to_swapped_bcd(self.year),
            to_swapped_bcd(self.month),
            to_swapped_bcd(self.day),
            to_swapped_bcd(self.hour),
            to_swapped_bcd(self.minute),
            to_swapped_bcd(self.second),
            zone | sign,
        ]
    }

    /// The offset from UTC in minutes.
    pub fn utc_offset_minutes(&self) -> i32 {
        i32::from(self.tz_quarters) * 15
    }

    /// The four-digit year, assuming the 21st century (SMS predates 2000 only on paper
    /// that no modem still sends).
    pub fn full_year(&self) -> u16 {
        2000 + u16::from(self.year)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 form, e.g. `2002-08-26T19:37:41+02:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.utc_offset_minutes();
        let sign = if offset < 0 { '-' } else { '+' };
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            self.full_year(),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            offset.abs() / 60,
            offset.abs() % 60,
        )
    }
}

/// A swapped semi-octet pair: the low nibble is the tens digit.
fn swapped_bcd(octet: u8) -> Option<u8> {
    let (tens, units) = (octet & 0x0F, octet >> 4);
    (tens <= 9 && units <= 9).then_some(tens * 10 + units)
}

fn to_swapped_bcd(value: u8) -> u8 {
    let value = value.min(99);
    ((value % 10) << 4) | (value / 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(hex: &str, want: &str, quarters: i8) {
        let bytes: [u8; 7] = crate::sms::decode_hex(hex).unwrap().try_into().unwrap();
        let ts = Timestamp::decode(bytes, "test").unwrap();
        assert_eq!(ts.to_string(), want, "{hex}");
        assert_eq!(ts.tz_quarters, quarters, "{hex}");
        assert_eq!(ts.encode(), bytes, "encoding {want}");
    }

    #[test]
    fn decodes_time_and_zone() {
        // The published SMS-DELIVER example's SCTS. Its zone octet 08 is, read as the
        // specification says (units digit in the high nibble, sign in bit 3 of the low
        // one), minus zero quarters; some web pages call it "GMT+2", which ignores the
        // semi-octet swap.
        let bytes: [u8; 7] = crate::sms::decode_hex("20806291731408")
            .unwrap()
            .try_into()
            .unwrap();
        let ts = Timestamp::decode(bytes, "test").unwrap();
        assert_eq!(ts.to_string(), "2002-08-26T19:37:41+00:00");
        assert_eq!(ts.tz_quarters, 0);
        // +1 hour = 4 quarters: digits "04", swapped 0x40.
        check("99309251619540", "2099-03-29T15:16:59+01:00", 4);
        // -5 hours = 20 quarters with the sign: tens 2 | 0x8 in the low nibble.
        check("1110101010100A", "2011-01-01T01:01:01-05:00", -20);
        // +5:45 (Nepal) = 23 quarters: digits "23", swapped 0x32.
        check("52117021437032", "2025-11-07T12:34:07+05:45", 23);
    }

    #[test]
    fn non_decimal_semi_octets_are_errors() {
        let bad = crate::sms::decode_hex("2080629173F408")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            Timestamp::decode(bad, "TP-SCTS"),
            Err(PduError::BadTimestamp { field: "TP-SCTS" })
        );
        let bad_zone = crate::sms::decode_hex("208062917314A0")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            Timestamp::decode(bad_zone, "TP-SCTS"),
            Err(PduError::BadTimestamp { field: "TP-SCTS" })
        );
    }
}
