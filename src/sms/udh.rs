//! The user data header (TS 23.040 9.2.3.24): concatenation (8- and 16-bit references),
//! application ports (8- and 16-bit), national language single and locking shifts, and
//! any other information element kept as raw octets.
//!
//! This file owns the header's octets; where the header sits in the user data (and the
//! fill bits after it) is `pack`'s and `decode`'s business.

use super::PduError;
use super::alphabet::NationalLanguage;

/// IEI 0x00: concatenated short messages, 8-bit reference (TS 23.040 9.2.3.24.1).
pub(crate) const IEI_CONCAT_8: u8 = 0x00;
/// IEI 0x04: application port addressing, 8-bit ports (9.2.3.24.3).
const IEI_PORTS_8: u8 = 0x04;
/// IEI 0x05: application port addressing, 16-bit ports (9.2.3.24.4).
const IEI_PORTS_16: u8 = 0x05;
/// IEI 0x08: concatenated short messages, 16-bit reference (9.2.3.24.8).
pub(crate) const IEI_CONCAT_16: u8 = 0x08;
/// IEI 0x24: national language single shift (9.2.3.24.15).
pub(crate) const IEI_SINGLE_SHIFT: u8 = 0x24;
/// IEI 0x25: national language locking shift (9.2.3.24.16).
pub(crate) const IEI_LOCKING_SHIFT: u8 = 0x25;

/// A parsed user data header, its elements in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UserDataHeader {
    pub elements: Vec<InformationElement>,
}

/// One information element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InformationElement {
    Concatenation(Concat),
    ApplicationPorts(Ports),
    /// The national language identifier of the single shift table (the raw identifier:
    /// one smsbridge has no table for is kept, and decoded with the default table).
    SingleShift(u8),
    /// The national language identifier of the locking shift table.
    LockingShift(u8),
    /// Any other element, or a known one whose length is wrong, as sent.
    Other {
        iei: u8,
        data: Vec<u8>,
    },
}

/// Where a part sits in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// The reference shared by all parts (0..=255 when `wide_reference` is false).
    pub reference: u16,
    /// The number of parts.
    pub total: u8,
    /// This part's number, from 1.
    pub sequence: u8,
    /// True for IEI 0x08 (16-bit reference), false for IEI 0x00.
    pub wide_reference: bool,
}

/// Application port addressing (WAP push, vCard and the like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ports {
    pub destination: u16,
    pub originator: u16,
    /// True for IEI 0x05 (16-bit ports), false for IEI 0x04.
    pub wide: bool,
}

impl UserDataHeader {
    /// Parses a header: `octets` starts at the UDHL octet and may go on past the header.
    /// Returns the header and its length in octets, UDHL included.
    pub(crate) fn parse(octets: &[u8]) -> Result<(UserDataHeader, usize), PduError> {
        let (&udhl, rest) = octets.split_first().ok_or(PduError::Truncated {
            field: "user data header length",
        })?;
        let len = usize::from(udhl);
        let mut body = rest.get(..len).ok_or(PduError::HeaderTooLong {
            header: len + 1,
            user_data: octets.len(),
        })?;
        let mut elements = Vec::new();
        while let [iei, ie_len, tail @ ..] = body {
            let (data, rest) = tail
                .split_at_checked(usize::from(*ie_len))
                .ok_or(PduError::BadHeader)?;
            elements.push(InformationElement::parse(*iei, data));
            body = rest;
        }
        // One octet left over cannot hold an element's identifier and length.
        if !body.is_empty() {
            return Err(PduError::BadHeader);
        }
        Ok((UserDataHeader { elements }, len + 1))
    }

    /// The header's octets, UDHL first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0];
        for element in &self.elements {
            element.write(&mut out);
        }
        // Elements are built by the encoder (a few octets each) or parsed from a header
        // that fit in one octet's length, so the length fits.
        out[0] = (out.len() - 1).min(255) as u8;
        out
    }

    /// The concatenation element, if any.
    pub fn concat(&self) -> Option<Concat> {
        self.elements.iter().find_map(|e| match e {
            InformationElement::Concatenation(c) => Some(*c),
            _ => None,
        })
    }

    /// The application ports element, if any.
    pub fn ports(&self) -> Option<Ports> {
        self.elements.iter().find_map(|e| match e {
            InformationElement::ApplicationPorts(p) => Some(*p),
            _ => None,
        })
    }

    /// The single shift language identifier, if any.
    pub fn single_shift(&self) -> Option<u8> {
        self.elements.iter().find_map(|e| match e {
            InformationElement::SingleShift(id) => Some(*id),
            _ => None,
        })
    }

    /// The locking shift language identifier, if any.
    pub fn locking_shift(&self) -> Option<u8> {
        self.elements.iter().find_map(|e| match e {
            InformationElement::LockingShift(id) => Some(*id),
            _ => None,
        })
    }

    /// The languages of the shift tables, for decoding text.
    pub(crate) fn languages(&self) -> (Option<NationalLanguage>, Option<NationalLanguage>) {
        (
            self.locking_shift().and_then(NationalLanguage::from_id),
            self.single_shift().and_then(NationalLanguage::from_id),
        )
    }
}

impl InformationElement {
    fn parse(iei: u8, data: &[u8]) -> InformationElement {
        match (iei, data) {
            (IEI_CONCAT_8, &[reference, total, sequence]) => {
                InformationElement::Concatenation(Concat {
                    reference: u16::from(reference),
                    total,
                    sequence,
                    wide_reference: false,
                })
            }
            (IEI_CONCAT_16, &[high, low, total, sequence]) => {
                InformationElement::Concatenation(Concat {
                    reference: u16::from_be_bytes([high, low]),
                    total,
                    sequence,
                    wide_reference: true,
                })
            }
            (IEI_PORTS_8, &[destination, originator]) => {
                InformationElement::ApplicationPorts(Ports {
                    destination: u16::from(destination),
                    originator: u16::from(originator),
                    wide: false,
                })
            }
            (IEI_PORTS_16, &[d1, d0, o1, o0]) => InformationElement::ApplicationPorts(Ports {
                destination: u16::from_be_bytes([d1, d0]),
                originator: u16::from_be_bytes([o1, o0]),
                wide: true,
            }),
            (IEI_SINGLE_SHIFT, &[id]) => InformationElement::SingleShift(id),
            (IEI_LOCKING_SHIFT, &[id]) => InformationElement::LockingShift(id),
            _ => InformationElement::Other {
                iei,
                data: data.to_vec(),
            },
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            InformationElement::Concatenation(c) if c.wide_reference => {
                let [high, low] = c.reference.to_be_bytes();
                out.extend([IEI_CONCAT_16, 4, high, low, c.total, c.sequence]);
            }
            InformationElement::Concatenation(c) => {
                out.extend([IEI_CONCAT_8, 3, c.reference as u8, c.total, c.sequence]);
            }
            InformationElement::ApplicationPorts(p) if p.wide => {
                out.extend([IEI_PORTS_16, 4]);
                out.extend(p.destination.to_be_bytes());
                out.extend(p.originator.to_be_bytes());
            }
            InformationElement::ApplicationPorts(p) => {
                out.extend([IEI_PORTS_8, 2, p.destination as u8, p.originator as u8]);
            }
            InformationElement::SingleShift(id) => out.extend([IEI_SINGLE_SHIFT, 1, *id]),
            InformationElement::LockingShift(id) => out.extend([IEI_LOCKING_SHIFT, 1, *id]),
            InformationElement::Other { iei, data } => {
                out.extend([*iei, data.len().min(255) as u8]);
                out.extend(data.iter().take(255));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InformationElement as IE;

    fn check(hex: &str, elements: Vec<InformationElement>) {
        let bytes = crate::sms::decode_hex(hex).unwrap();
        let (udh, len) = UserDataHeader::parse(&bytes).unwrap();
        assert_eq!(len, bytes.len(), "{hex}");
        assert_eq!(udh.elements, elements, "{hex}");
        assert_eq!(crate::sms::to_hex(&udh.to_bytes()), hex, "encoding back");
    }

    fn concat(reference: u16, total: u8, sequence: u8, wide_reference: bool) -> InformationElement {
        IE::Concatenation(Concat {
            reference,
            total,
            sequence,
            wide_reference,
        })
    }

    #[test]
    fn known_elements() {
        check("050003CC0201", vec![concat(0xCC, 2, 1, false)]);
        check("06080412340302", vec![concat(0x1234, 3, 2, true)]);
        // A WAP push header: 16-bit ports 2948 <- 9200, then an 8-bit concatenation.
        check(
            "0B05040B8423F00003A80301",
            vec![
                IE::ApplicationPorts(Ports {
                    destination: 2948,
                    originator: 9200,
                    wide: true,
                }),
                concat(0xA8, 3, 1, false),
            ],
        );
        check(
            "0404021001",
            vec![IE::ApplicationPorts(Ports {
                destination: 0x10,
                originator: 0x01,
                wide: false,
            })],
        );
        check(
            "06250101240101",
            vec![IE::LockingShift(1), IE::SingleShift(1)],
        );
        // Unknown elements and known ones of the wrong length are kept as sent.
        check(
            "080A03000102000100",
            vec![
                IE::Other {
                    iei: 0x0A,
                    data: vec![0, 1, 2],
                },
                IE::Other {
                    iei: 0x00,
                    data: vec![0],
                },
            ],
        );
        check("00", vec![]);
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert_eq!(
            UserDataHeader::parse(&[0x05, 0x00, 0x03, 0x01]),
            Err(PduError::HeaderTooLong {
                header: 6,
                user_data: 4
            })
        );
        // An element whose length runs past the header's end.
        assert_eq!(
            UserDataHeader::parse(&[0x03, 0x00, 0x03, 0x01]),
            Err(PduError::BadHeader)
        );
        // One stray octet after the last element.
        assert_eq!(
            UserDataHeader::parse(&[0x01, 0x00]),
            Err(PduError::BadHeader)
        );
        assert_eq!(
            UserDataHeader::parse(&[]),
            Err(PduError::Truncated {
                field: "user data header length"
            })
        );
    }

    #[test]
    fn accessors() {
        let bytes = crate::sms::decode_hex("0B00030A0201240102250103").unwrap();
        let (udh, len) = UserDataHeader::parse(&bytes).unwrap();
        assert_eq!(len, 12);
        assert_eq!(
            udh.concat(),
            Some(Concat {
                reference: 10,
                total: 2,
                sequence: 1,
                wide_reference: false
            })
        );
        assert_eq!(udh.single_shift(), Some(2));
        assert_eq!(udh.locking_shift(), Some(3));
        assert_eq!(udh.ports(), None);
        assert_eq!(
            udh.languages(),
            (
                Some(NationalLanguage::Portuguese),
                Some(NationalLanguage::Spanish)
            )
        );
    }
}
