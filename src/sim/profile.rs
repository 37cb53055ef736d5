//! Modem profiles for the simulator: what each simulated modem calls itself, what it says
//! when it boots, and the small ways in which real modems of that family differ.
//!
//! Pure data: no I/O, no clock. The model (`model.rs`) asks a profile how to answer; the
//! profile never keeps state.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The family of modem the simulator pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// A plain 3GPP modem: TS 27.007 / 27.005 commands only, no vendor notifications, no
    /// boot messages, no ICCID command.
    Generic,
    /// A SIMCom SIM800-like 2G module (on a UART): `RDY`, `Call Ready`, `SMS Ready` at boot,
    /// `AT+CCID`, no `AT+CEREG`.
    Sim800,
    /// A Quectel EC25-like LTE module (USB): `RDY` and `+QIND` at boot, `AT+QCCID`, message
    /// indices from 0, `AT+CMEE=1` by default; it re-enumerates on USB when reset.
    Ec25,
    /// A Huawei E3372 LTE stick in stick (non-HiLink) mode: `^RSSI`, `^BOOT`, `^MODE`
    /// notifications at any time, also inside answers; `AT^ICCID?`; indices from 0; it
    /// re-enumerates on USB when reset.
    E3372,
    /// A SIMCom SIM7080G-like LTE-M/NB-IoT module: no circuit-switched domain, so `+CREG`
    /// stays `0,0` while `+CGREG`/`+CEREG` say registered and SMS work
    /// (botletics/SIM7000-LTE-Shield issues 50, 103, 150; vshymanskyy/TinyGSM issue 705
    /// and PR 467).
    Sim7080,
    /// A SIMCom SIM7600-like LTE module: bare `SMS DONE` and `PB DONE` lines at boot
    /// (Xinyuan-LilyGO/T-SIM7600X PR 41; espressif/esp-protocols issue 789).
    Sim7600,
    /// A SIMCom SIM7670G-like LTE Cat-1 module: the `AT+CMGS` prompt framed as CR LF `>`
    /// CR LF (gammu issue 1176, fixed by PR 1177).
    Sim7670,
    /// A u-blox LARA-L6-like LTE module (LARA-L6004D in the source): the prompt is a bare `>`, with no line ending
    /// before it and no space after it (RIOT-OS PR 20016).
    Lara,
}

/// The error for an unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown modem profile {0:?} (expected one of: generic, sim800, ec25, e3372, sim7080, sim7600, sim7670, lara)"
)]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "generic" => Ok(Profile::Generic),
            "sim800" => Ok(Profile::Sim800),
            "ec25" => Ok(Profile::Ec25),
            "e3372" => Ok(Profile::E3372),
            "sim7080" => Ok(Profile::Sim7080),
            "sim7600" => Ok(Profile::Sim7600),
            "sim7670" => Ok(Profile::Sim7670),
            "lara" => Ok(Profile::Lara),
            _ => Err(UnknownProfile(s.to_string())),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a profile answers `AT+CCID`-like requests for the SIM's ICCID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IccidCommand {
    /// No ICCID command: TS 27.007 defines none, so a plain modem answers `ERROR`.
    None,
    /// SIM800: `AT+CCID` answers the bare digits on a line of their own.
    Ccid,
    /// EC25: `AT+QCCID` answers `+QCCID: <iccid>`.
    Qccid,
    /// Huawei: `AT^ICCID?` answers `^ICCID: <iccid>`.
    HuaweiIccid,
}

impl Profile {
    /// All profiles, in a stable order (for tests and help texts).
    pub const ALL: [Profile; 8] = [
        Profile::Generic,
        Profile::Sim800,
        Profile::Ec25,
        Profile::E3372,
        Profile::Sim7080,
        Profile::Sim7600,
        Profile::Sim7670,
        Profile::Lara,
    ];

    /// The profile's name as accepted by `FromStr`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::Sim800 => "sim800",
            Profile::Ec25 => "ec25",
            Profile::E3372 => "e3372",
            Profile::Sim7080 => "sim7080",
            Profile::Sim7600 => "sim7600",
            Profile::Sim7670 => "sim7670",
            Profile::Lara => "lara",
        }
    }

    /// A realistic time between the PDU's Ctrl-Z and the `+CMGS` answer: a 2G module
    /// waits longer for the network than an LTE one.
    pub fn default_send_latency(self) -> Duration {
        match self {
            Profile::Sim800 => Duration::from_millis(3000),
            Profile::E3372 | Profile::Sim7080 => Duration::from_millis(2000),
            Profile::Generic
            | Profile::Ec25
            | Profile::Sim7600
            | Profile::Sim7670
            | Profile::Lara => Duration::from_millis(1500),
        }
    }

    /// A realistic boot time, during which the modem hears nothing.
    pub fn default_boot_time(self) -> Duration {
        match self {
            Profile::Generic => Duration::from_millis(500),
            Profile::Sim800 => Duration::from_millis(2000),
            Profile::Ec25 => Duration::from_millis(5000),
            Profile::E3372 => Duration::from_millis(4000),
            Profile::Sim7080 | Profile::Sim7600 | Profile::Sim7670 | Profile::Lara => {
                Duration::from_millis(5000)
            }
        }
    }

    /// Whether a reset (`AT+CFUN=1,1`) makes the device vanish from USB and come back,
    /// as USB modules and sticks do; a UART module such as the SIM800 keeps its port.
    pub fn reenumerates_on_reset(self) -> bool {
        matches!(
            self,
            Profile::Ec25 | Profile::E3372 | Profile::Sim7600 | Profile::Sim7670 | Profile::Lara
        )
    }

    pub(crate) fn manufacturer(self) -> &'static str {
        match self {
            Profile::Generic => "smsbridge",
            Profile::Sim800 => "SIMCOM_Ltd",
            Profile::Ec25 => "Quectel",
            Profile::E3372 => "huawei",
            Profile::Sim7080 | Profile::Sim7600 | Profile::Sim7670 => "SIMCOM INCORPORATED",
            Profile::Lara => "u-blox",
        }
    }

    pub(crate) fn model(self) -> &'static str {
        match self {
            Profile::Generic => "SIMULATED-3GPP",
            Profile::Sim800 => "SIMCOM_SIM800L",
            Profile::Ec25 => "EC25",
            Profile::E3372 => "E3372",
            Profile::Sim7080 => "SIM7080",
            Profile::Sim7600 => "SIMCOM_SIM7600G-H",
            Profile::Sim7670 => "A7670G-LABE",
            Profile::Lara => "LARA-L6004D",
        }
    }

    pub(crate) fn revision(self) -> &'static str {
        match self {
            Profile::Generic => "1.0.0",
            // SIM800 answers AT+CGMR with a "Revision:" prefix on the same line.
            Profile::Sim800 => "Revision:1418B04SIM800L24",
            Profile::Ec25 => "EC25EFAR06A06M4G",
            Profile::E3372 => "22.328.62.00.1217",
            Profile::Sim7080 => "1951B16SIM7080",
            Profile::Sim7600 => "LE20B04SIM7600G22",
            Profile::Sim7670 => "A011B07A7670M7_F",
            Profile::Lara => "03.15",
        }
    }

    /// The IMEI (15 digits, valid Luhn check digit).
    pub(crate) fn imei(self) -> &'static str {
        match self {
            Profile::Generic => "352099001761481",
            Profile::Sim800 => "869067031234569",
            Profile::Ec25 => "861673039876547",
            Profile::E3372 => "867445021357909",
            Profile::Sim7080 => "860000000000017",
            Profile::Sim7600 => "860000000000025",
            Profile::Sim7670 => "860000000000033",
            Profile::Lara => "860000000000041",
        }
    }

    /// The IMSI, in the test network MCC 001 / MNC 01 so it can never be mistaken for a
    /// real subscriber.
    pub(crate) fn imsi(self) -> &'static str {
        match self {
            Profile::Generic => "001010000000001",
            Profile::Sim800 => "001010000000002",
            Profile::Ec25 => "001010000000003",
            Profile::E3372 => "001010000000004",
            Profile::Sim7080 => "001010000000005",
            Profile::Sim7600 => "001010000000006",
            Profile::Sim7670 => "001010000000007",
            Profile::Lara => "001010000000008",
        }
    }

    /// The ICCID (20 digits, valid Luhn check digit).
    pub(crate) fn iccid(self) -> &'static str {
        match self {
            Profile::Generic => "89001010123456789015",
            Profile::Sim800 => "89001010123456789023",
            Profile::Ec25 => "89001010123456789031",
            Profile::E3372 => "89001010123456789049",
            Profile::Sim7080 => "89001010123456789056",
            Profile::Sim7600 => "89001010123456789064",
            Profile::Sim7670 => "89001010123456789072",
            Profile::Lara => "89001010123456789080",
        }
    }

    pub(crate) fn iccid_command(self) -> IccidCommand {
        match self {
            Profile::Generic | Profile::Lara => IccidCommand::None,
            Profile::Sim800 | Profile::Sim7080 | Profile::Sim7600 | Profile::Sim7670 => {
                IccidCommand::Ccid
            }
            Profile::Ec25 => IccidCommand::Qccid,
            Profile::E3372 => IccidCommand::HuaweiIccid,
        }
    }

    /// The lines `ATI` answers.
    pub(crate) fn ati(self) -> Vec<String> {
        match self {
            Profile::Generic => vec!["smsbridge simulated 3GPP modem".to_string()],
            Profile::Sim800 => vec!["SIM800 R14.18".to_string()],
            Profile::Sim7080 | Profile::Sim7600 | Profile::Sim7670 | Profile::Lara => vec![
                format!("Manufacturer: {}", self.manufacturer()),
                format!("Model: {}", self.model()),
                format!("Revision: {}", self.revision()),
            ],
            Profile::Ec25 => vec![
                "Quectel".to_string(),
                "EC25".to_string(),
                format!("Revision: {}", self.revision()),
            ],
            Profile::E3372 => vec![
                "Manufacturer: huawei".to_string(),
                "Model: E3372".to_string(),
                format!("Revision: {}", self.revision()),
                format!("IMEI: {}", self.imei()),
                "+GCAP: +CGSM,+DS,+ES".to_string(),
            ],
        }
    }

    /// The first storage index. Qualcomm-based modules (EC25, like the SIM7600 whose
    /// manual says indices "start with zero") and Huawei sticks number SMS storage from 0;
    /// SIMCom's SIM800 and most others from 1. TS 27.005 leaves it to the implementation.
    pub(crate) fn index_base(self) -> usize {
        match self {
            Profile::Ec25 | Profile::E3372 | Profile::Sim7600 => 0,
            Profile::Generic
            | Profile::Sim800
            | Profile::Sim7080
            | Profile::Sim7670
            | Profile::Lara => 1,
        }
    }

    /// `AT+CMEE` after power-up: Quectel ships with numeric errors enabled (EC25 AT
    /// manual, AT+CMEE default 1), the others with plain `ERROR` (TS 27.007 default 0).
    pub(crate) fn default_cmee(self) -> u8 {
        match self {
            Profile::Ec25 => 1,
            Profile::Generic
            | Profile::Sim800
            | Profile::E3372
            | Profile::Sim7080
            | Profile::Sim7600
            | Profile::Sim7670
            | Profile::Lara => 0,
        }
    }

    /// The SIM800 is a 2G-only module and has no EPS registration command.
    pub(crate) fn supports_cereg(self) -> bool {
        !matches!(self, Profile::Sim800)
    }

    /// The access technology in `+COPS?` (TS 27.007 7.3: 7 = E-UTRAN); the SIM800 omits it.
    pub(crate) fn cops_act(self) -> Option<u8> {
        match self {
            Profile::Sim800 => None,
            Profile::Generic
            | Profile::Sim7080
            | Profile::Ec25
            | Profile::E3372
            | Profile::Sim7600
            | Profile::Sim7670
            | Profile::Lara => Some(7),
        }
    }

    /// A 2G cell identity is 16 bits, an LTE one 28 bits.
    pub(crate) fn cell_id(self) -> &'static str {
        match self {
            Profile::Sim800 => "0C3D",
            _ => "01C3D4E5",
        }
    }

    /// What the modem says once booted, before anything about the SIM.
    pub(crate) fn boot_lines(self, boot_count: u64) -> Vec<String> {
        match self {
            Profile::Generic => vec![],
            Profile::Sim800 => vec!["RDY".to_string(), "+CFUN: 1".to_string()],
            Profile::Ec25 => vec!["RDY".to_string()],
            Profile::E3372 => vec![format!("^BOOT:{},0,0,0,72", 20_392_483 + boot_count)],
            Profile::Sim7080 | Profile::Sim7600 | Profile::Sim7670 => vec!["RDY".to_string()],
            Profile::Lara => vec![],
        }
    }

    /// What the modem says when the SIM becomes ready (at boot, or after the PIN).
    pub(crate) fn sim_ready_lines(self) -> Vec<String> {
        match self {
            Profile::Generic => vec![],
            Profile::Sim800 => vec![
                "+CPIN: READY".to_string(),
                "Call Ready".to_string(),
                "SMS Ready".to_string(),
            ],
            Profile::Ec25 => vec![
                "+CPIN: READY".to_string(),
                "+QIND: SMS DONE".to_string(),
                "+QIND: PB DONE".to_string(),
            ],
            Profile::E3372 => vec!["^SIMST:1".to_string()],
            Profile::Sim7080 => vec!["+CPIN: READY".to_string(), "SMS Ready".to_string()],
            // Bare, as SIM7600 firmware prints them (T-SIM7600X PR 41, esp-protocols 789).
            Profile::Sim7600 => vec![
                "+CPIN: READY".to_string(),
                "SMS DONE".to_string(),
                "PB DONE".to_string(),
            ],
            Profile::Sim7670 => vec!["+CPIN: READY".to_string(), "SMS DONE".to_string()],
            Profile::Lara => vec![],
        }
    }

    /// What the modem says at boot when the SIM wants its PIN.
    pub(crate) fn sim_locked_lines(self) -> Vec<String> {
        match self {
            Profile::Generic | Profile::E3372 | Profile::Lara => vec![],
            Profile::Sim800
            | Profile::Ec25
            | Profile::Sim7080
            | Profile::Sim7600
            | Profile::Sim7670 => vec!["+CPIN: SIM PIN".to_string()],
        }
    }

    /// A notification of the kind this family sends on its own, used for the
    /// "notification inside an answer" fault: Huawei's `^RSSI` (no space after the colon,
    /// as E-series sticks send it), Quectel's `+QIND: "csq"`, and TS 27.007 8.10 `+CIEV`
    /// for the others.
    pub(crate) fn noise_line(self, rssi: u8) -> String {
        match self {
            Profile::E3372 => format!("^RSSI:{rssi}"),
            Profile::Ec25 => format!("+QIND: \"csq\",{rssi},99"),
            _ => format!("+CIEV: 2,{}", signal_bars(rssi)),
        }
    }

    /// Whether the radio has a circuit-switched domain at all: an LTE-M/NB-IoT module has
    /// none, so its `+CREG` never says registered.
    pub(crate) fn has_cs_domain(self) -> bool {
        !matches!(self, Profile::Sim7080)
    }

    /// How the `AT+CMGS` prompt is framed.
    pub(crate) fn prompt(self) -> &'static [u8] {
        match self {
            // gammu issue 1176 / PR 1177: SIM7670G sends CR LF '>' CR LF.
            Profile::Sim7670 => b"\r\n>\r\n",
            // RIOT-OS PR 20016: u-blox LARA sends '>' with no line ending before it.
            Profile::Lara => b">",
            // TS 27.005 3.5.1: "> " after a line break, and no line break after it.
            _ => b"\r\n> ",
        }
    }

    /// Whether the profile sends periodic notifications of its own.
    pub(crate) fn is_noisy(self) -> bool {
        matches!(self, Profile::E3372)
    }
}

/// A 0-5 signal level from a `+CSQ` rssi, as `+CIEV` "signal" indicators report it.
fn signal_bars(rssi: u8) -> u8 {
    match rssi {
        0..=1 | 99 => 0,
        2..=9 => 1,
        10..=14 => 2,
        15..=19 => 3,
        20..=24 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luhn_ok(digits: &str) -> bool {
        let mut sum = 0;
        for (i, c) in digits.chars().rev().enumerate() {
            let Some(mut d) = c.to_digit(10) else {
                return false;
            };
            if i % 2 == 1 {
                d *= 2;
                if d > 9 {
                    d -= 9;
                }
            }
            sum += d;
        }
        sum % 10 == 0
    }

    #[test]
    fn identities_are_well_formed() {
        for p in Profile::ALL {
            assert_eq!(p.imei().len(), 15, "{p}");
            assert!(luhn_ok(p.imei()), "IMEI of {p}");
            assert_eq!(p.iccid().len(), 20, "{p}");
            assert!(luhn_ok(p.iccid()), "ICCID of {p}");
            assert!(p.imsi().starts_with("00101"), "{p}");
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>(), Ok(p));
            assert_eq!(p.to_string().to_uppercase().parse::<Profile>(), Ok(p));
        }
        assert_eq!(
            "sim900".parse::<Profile>(),
            Err(UnknownProfile("sim900".to_string()))
        );
    }
}
