//! Network registration across every domain a modem reports: circuit-switched (`+CREG`),
//! GPRS (`+CGREG`), EPS (`+CEREG`) and 5GS (`+C5GREG`). Pure.
//!
//! A modem is registered when any domain says so. SMS do not need the circuit-switched
//! domain: with 2G/3G switched off, and on every LTE-M/NB-IoT module (SIMCom SIM7000/SIM7080,
//! Quectel BG96, u-blox SARA-R4), `+CREG` says `0,0`, `0,2` or `0,3` while `+CEREG` says
//! registered and SMS go out over SGs or IMS (botletics/SIM7000-LTE-Shield issues 50, 103,
//! 150; vshymanskyy/TinyGSM issue 705 and PR 467). Initialisation, health checks, `probe`
//! and the status page all read registration through [`Registrations`], so they cannot
//! disagree.

use std::fmt;

use crate::at::parse::{RegistrationKind, RegistrationStatus};

/// The last status each domain reported; `None` for a domain the modem did not answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registrations {
    statuses: [Option<RegistrationStatus>; 4],
}

fn slot(kind: RegistrationKind) -> usize {
    match kind {
        RegistrationKind::CircuitSwitched => 0,
        RegistrationKind::Gprs => 1,
        RegistrationKind::Eps => 2,
        RegistrationKind::FiveG => 3,
    }
}

impl Registrations {
    pub fn get(&self, kind: RegistrationKind) -> Option<RegistrationStatus> {
        self.statuses[slot(kind)]
    }

    pub fn set(&mut self, kind: RegistrationKind, status: Option<RegistrationStatus>) {
        self.statuses[slot(kind)] = status;
    }

    /// Whether any domain says registered: home (1), roaming (5), SMS-only home/roaming
    /// (6, 7), or home/roaming with CSFB not preferred (9, 10).
    pub fn is_registered(&self) -> bool {
        self.statuses
            .iter()
            .flatten()
            .any(|status| status.is_registered())
    }

    /// Whether any domain answered at all. With nothing known, a health check says nothing
    /// about registration.
    pub fn any_known(&self) -> bool {
        self.statuses.iter().any(Option::is_some)
    }

    /// The registered domain to name first: EPS, 5GS, then CS and PS; or `None`.
    pub fn registered_status(&self) -> Option<RegistrationStatus> {
        [
            RegistrationKind::Eps,
            RegistrationKind::FiveG,
            RegistrationKind::CircuitSwitched,
            RegistrationKind::Gprs,
        ]
        .into_iter()
        .filter_map(|kind| self.get(kind))
        .find(|status| status.is_registered())
    }

    /// Each domain the modem answered and its status, `CS (2G/3G): searching for a
    /// network; EPS (LTE): registration denied by the network`, for a modem that is not
    /// registered.
    pub fn domains_text(&self) -> String {
        let domains = self.domains();
        if domains.is_empty() {
            return "no answer to AT+CREG?, AT+CGREG? or AT+CEREG?".to_owned();
        }
        domains
            .iter()
            .map(|(kind, text)| format!("{}: {text}", kind.domain()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Each domain the modem answered, with its status in words.
    pub fn domains(&self) -> Vec<(RegistrationKind, &'static str)> {
        RegistrationKind::ALL
            .into_iter()
            .filter_map(|kind| self.get(kind).map(|status| (kind, status_text(status))))
            .collect()
    }
}

/// `registered, home network (EPS (LTE): registered, home network; CS (2G/3G): not
/// registered)`: the verdict first, then every domain the modem answered.
impl fmt::Display for Registrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.registered_status() {
            Some(status) => status_text(status),
            None if self.any_known() => "not registered",
            None => "unknown",
        };
        f.write_str(verdict)?;
        write!(f, " ({})", self.domains_text())
    }
}

/// One domain's status in words.
pub(crate) fn status_text(status: RegistrationStatus) -> &'static str {
    match status {
        RegistrationStatus::Home => "registered, home network",
        RegistrationStatus::Roaming => "registered, roaming",
        RegistrationStatus::HomeSmsOnly => "registered for SMS only, home network",
        RegistrationStatus::RoamingSmsOnly => "registered for SMS only, roaming",
        RegistrationStatus::HomeCsfbNotPreferred => "registered, home network (CSFB not preferred)",
        RegistrationStatus::RoamingCsfbNotPreferred => "registered, roaming (CSFB not preferred)",
        RegistrationStatus::NotRegistered => "not registered, not searching",
        RegistrationStatus::Searching => "searching for a network",
        RegistrationStatus::Denied => "registration denied by the network",
        RegistrationStatus::EmergencyOnly => "emergency calls only",
        RegistrationStatus::Unknown | RegistrationStatus::Other(_) => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use RegistrationKind::*;
    use RegistrationStatus as S;

    fn regs(entries: &[(RegistrationKind, RegistrationStatus)]) -> Registrations {
        let mut r = Registrations::default();
        for (kind, status) in entries {
            r.set(*kind, Some(*status));
        }
        r
    }

    #[test]
    fn any_domain_registered_is_registered() {
        // SIM7080 on LTE-M: CS says not registered, EPS says home.
        let lte_m = regs(&[(CircuitSwitched, S::NotRegistered), (Eps, S::Home)]);
        assert!(lte_m.is_registered());
        assert_eq!(lte_m.registered_status(), Some(S::Home));
        // 2G only, no CEREG at all.
        assert!(regs(&[(CircuitSwitched, S::Roaming)]).is_registered());
        // SMS-only registrations count.
        assert!(regs(&[(CircuitSwitched, S::Denied), (Eps, S::HomeSmsOnly)]).is_registered());
        assert!(regs(&[(FiveG, S::RoamingSmsOnly)]).is_registered());
        // Lost only when every domain says so.
        let lost = regs(&[
            (CircuitSwitched, S::Searching),
            (Gprs, S::NotRegistered),
            (Eps, S::Denied),
        ]);
        assert!(!lost.is_registered());
        assert!(lost.any_known());
        assert!(!Registrations::default().any_known());
    }

    #[test]
    fn the_text_names_the_verdict_then_each_domain() {
        let lte_m = regs(&[(CircuitSwitched, S::NotRegistered), (Eps, S::Home)]);
        assert_eq!(
            lte_m.to_string(),
            "registered, home network (CS (2G/3G): not registered, not searching; EPS (LTE): registered, home network)"
        );
        assert_eq!(
            regs(&[(CircuitSwitched, S::Searching)]).to_string(),
            "not registered (CS (2G/3G): searching for a network)"
        );
        assert_eq!(
            Registrations::default().to_string(),
            "unknown (no answer to AT+CREG?, AT+CGREG? or AT+CEREG?)"
        );
    }
}
