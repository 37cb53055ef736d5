//! The data coding scheme octet (TS 23.038 clause 4): which alphabet the user data uses,
//! the message class, compression, and the message waiting indication groups.
//!
//! This file owns the meaning of the octet; decoding the text is `decode`'s.

/// A decoded TP-DCS octet, the octet itself kept so nothing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dcs {
    pub octet: u8,
    pub group: DcsGroup,
}

/// The coding groups of TS 23.038 clause 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DcsGroup {
    /// 00xx xxxx (general data coding) and 01xx xxxx (the same, with the message marked
    /// for automatic deletion after reading).
    General {
        auto_delete: bool,
        compressed: bool,
        alphabet: Alphabet,
        class: Option<MessageClass>,
    },
    /// 1100 (discard), 1101 (store, 7-bit) and 1110 (store, UCS-2): message waiting
    /// indication groups.
    MessageWaiting {
        store: bool,
        alphabet: Alphabet,
        active: bool,
        indication: Indication,
    },
    /// 1111: data coding and message class.
    DataClass {
        alphabet: Alphabet,
        class: MessageClass,
    },
    /// 1000..1011: reserved coding groups. TS 23.038 asks a receiver to read their user
    /// data as the GSM 7 bit default alphabet.
    Reserved,
}

/// The character set of the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alphabet {
    Gsm7,
    EightBit,
    Ucs2,
    /// The reserved value 11 of the general group; read as 7-bit (TS 23.038 clause 4).
    Reserved,
}

/// The message class (TS 23.038 clause 4): 0 is shown at once ("flash"), 1 is ME
/// specific, 2 is SIM specific, 3 is TE specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageClass {
    Class0,
    Class1,
    Class2,
    Class3,
}

/// What a message waiting indication is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Indication {
    Voicemail,
    Fax,
    Email,
    Other,
}

impl Dcs {
    /// 7-bit default alphabet, no class: what smsbridge sends for GSM texts.
    pub const GSM7: u8 = 0x00;
    /// UCS-2, no class: what smsbridge sends for other texts.
    pub const UCS2: u8 = 0x08;

    /// Decodes a TP-DCS octet. Every octet has a meaning, reserved ones included.
    pub fn from_octet(octet: u8) -> Dcs {
        let class = MessageClass::from_bits(octet);
        let group = match octet >> 4 {
            0x0..=0x7 => DcsGroup::General {
                auto_delete: octet & 0x40 != 0,
                compressed: octet & 0x20 != 0,
                alphabet: match (octet >> 2) & 0x03 {
                    0 => Alphabet::Gsm7,
                    1 => Alphabet::EightBit,
                    2 => Alphabet::Ucs2,
                    _ => Alphabet::Reserved,
                },
                class: (octet & 0x10 != 0).then_some(class),
            },
            0x8..=0xB => DcsGroup::Reserved,
            0xC..=0xE => DcsGroup::MessageWaiting {
                store: octet >> 4 != 0xC,
                alphabet: if octet >> 4 == 0xE {
                    Alphabet::Ucs2
                } else {
                    Alphabet::Gsm7
                },
                active: octet & 0x08 != 0,
                indication: match octet & 0x03 {
                    0 => Indication::Voicemail,
                    1 => Indication::Fax,
                    2 => Indication::Email,
                    _ => Indication::Other,
                },
            },
            _ => DcsGroup::DataClass {
                alphabet: if octet & 0x04 != 0 {
                    Alphabet::EightBit
                } else {
                    Alphabet::Gsm7
                },
                class,
            },
        };
        Dcs { octet, group }
    }

    /// The alphabet the user data is decoded with: reserved codings read as 7-bit.
    pub fn alphabet(&self) -> Alphabet {
        match self.group {
            DcsGroup::General {
                alphabet: Alphabet::Reserved,
                ..
            }
            | DcsGroup::Reserved => Alphabet::Gsm7,
            DcsGroup::General { alphabet, .. }
            | DcsGroup::MessageWaiting { alphabet, .. }
            | DcsGroup::DataClass { alphabet, .. } => alphabet,
        }
    }

    /// The message class, if the octet names one.
    pub fn class(&self) -> Option<MessageClass> {
        match self.group {
            DcsGroup::General { class, .. } => class,
            DcsGroup::DataClass { class, .. } => Some(class),
            DcsGroup::MessageWaiting { .. } | DcsGroup::Reserved => None,
        }
    }

    /// Whether the user data is compressed (TS 23.042), which smsbridge does not undo.
    pub fn is_compressed(&self) -> bool {
        matches!(
            self.group,
            DcsGroup::General {
                compressed: true,
                ..
            }
        )
    }
}

impl MessageClass {
    fn from_bits(bits: u8) -> MessageClass {
        match bits & 0x03 {
            0 => MessageClass::Class0,
            1 => MessageClass::Class1,
            2 => MessageClass::Class2,
            _ => MessageClass::Class3,
        }
    }

    /// The class number, 0..=3.
    pub fn number(self) -> u8 {
        match self {
            MessageClass::Class0 => 0,
            MessageClass::Class1 => 1,
            MessageClass::Class2 => 2,
            MessageClass::Class3 => 3,
        }
    }
}

impl Alphabet {
    /// A lower-case name for display (`"gsm7"`, `"8bit"`, `"ucs2"`, `"reserved"`).
    pub fn name(self) -> &'static str {
        match self {
            Alphabet::Gsm7 => "gsm7",
            Alphabet::EightBit => "8bit",
            Alphabet::Ucs2 => "ucs2",
            Alphabet::Reserved => "reserved",
        }
    }
}

impl Indication {
    /// A lower-case name for display.
    pub fn name(self) -> &'static str {
        match self {
            Indication::Voicemail => "voicemail",
            Indication::Fax => "fax",
            Indication::Email => "email",
            Indication::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(octet: u8, group: DcsGroup, alphabet: Alphabet) {
        let dcs = Dcs::from_octet(octet);
        assert_eq!(dcs.group, group, "{octet:#04X}");
        assert_eq!(dcs.alphabet(), alphabet, "{octet:#04X}");
    }

    fn general(
        auto_delete: bool,
        compressed: bool,
        alphabet: Alphabet,
        class: Option<MessageClass>,
    ) -> DcsGroup {
        DcsGroup::General {
            auto_delete,
            compressed,
            alphabet,
            class,
        }
    }

    #[test]
    fn general_data_coding() {
        use Alphabet::*;
        check(0x00, general(false, false, Gsm7, None), Gsm7);
        check(0x04, general(false, false, EightBit, None), EightBit);
        check(0x08, general(false, false, Ucs2, None), Ucs2);
        check(0x0C, general(false, false, Reserved, None), Gsm7);
        // Class 0 ("flash") 7-bit, class 1 UCS-2, class 2 8-bit.
        check(
            0x10,
            general(false, false, Gsm7, Some(MessageClass::Class0)),
            Gsm7,
        );
        check(
            0x19,
            general(false, false, Ucs2, Some(MessageClass::Class1)),
            Ucs2,
        );
        check(
            0x16,
            general(false, false, EightBit, Some(MessageClass::Class2)),
            EightBit,
        );
        // Bits 1..0 without bit 4 carry no class.
        check(0x03, general(false, false, Gsm7, None), Gsm7);
        check(0x20, general(false, true, Gsm7, None), Gsm7);
        check(0x48, general(true, false, Ucs2, None), Ucs2);
        check(
            0x7F,
            general(true, true, Reserved, Some(MessageClass::Class3)),
            Gsm7,
        );
        assert!(Dcs::from_octet(0x20).is_compressed());
        assert!(!Dcs::from_octet(0x00).is_compressed());
    }

    #[test]
    fn other_groups() {
        use Alphabet::*;
        check(0x80, DcsGroup::Reserved, Gsm7);
        check(0xBF, DcsGroup::Reserved, Gsm7);
        check(
            0xC8,
            DcsGroup::MessageWaiting {
                store: false,
                alphabet: Gsm7,
                active: true,
                indication: Indication::Voicemail,
            },
            Gsm7,
        );
        check(
            0xD2,
            DcsGroup::MessageWaiting {
                store: true,
                alphabet: Gsm7,
                active: false,
                indication: Indication::Email,
            },
            Gsm7,
        );
        check(
            0xE9,
            DcsGroup::MessageWaiting {
                store: true,
                alphabet: Ucs2,
                active: true,
                indication: Indication::Fax,
            },
            Ucs2,
        );
        check(
            0xF0,
            DcsGroup::DataClass {
                alphabet: Gsm7,
                class: MessageClass::Class0,
            },
            Gsm7,
        );
        check(
            0xF6,
            DcsGroup::DataClass {
                alphabet: EightBit,
                class: MessageClass::Class2,
            },
            EightBit,
        );
        assert_eq!(Dcs::from_octet(0xF1).class(), Some(MessageClass::Class1));
        assert_eq!(Dcs::from_octet(0xC0).class(), None);
    }
}
