use super::*;
use std::fmt;

use crate::at::parse::{ErrorCode, Registration, RegistrationStatus, SimState};

fn response(lines: &[&str]) -> Response {
    Response::new(lines.iter().map(|l| l.to_string()).collect())
}

/// The one helper for the answer readers: `read` over `lines` gives `expected`.
fn check<T: fmt::Debug + PartialEq>(read: impl Fn(&Response) -> T, cases: &[(&[&str], T)]) {
    for (lines, expected) in cases {
        assert_eq!(&read(&response(lines)), expected, "answer {lines:?}");
    }
}

#[test]
fn command_texts_and_contexts() {
    let cases: Vec<(Command, &str, &[&str], bool)> = vec![
        (Command::at(), "AT", &[], false),
        (Command::echo_off(), "ATE0", &[], false),
        (Command::reset(), "ATZ", &[], false),
        (Command::restart(), "AT+CFUN=1,1", &[], false),
        (Command::numeric_errors(), "AT+CMEE=1", &[], false),
        (Command::sim_state(), "AT+CPIN?", &["+CPIN:"], false),
        (Command::pdu_mode(), "AT+CMGF=0", &[], false),
        (
            Command::new_message_indications(NewMessageIndications::default()),
            "AT+CNMI=2,1,0,1,0",
            &[],
            false,
        ),
        (
            Command::preferred_storage(Storage::Sim, Storage::Sim, Storage::Both),
            "AT+CPMS=\"SM\",\"SM\",\"MT\"",
            &["+CPMS:"],
            false,
        ),
        (
            Command::registration(RegistrationKind::CircuitSwitched),
            "AT+CREG?",
            &["+CREG:"],
            false,
        ),
        (
            Command::registration(RegistrationKind::Eps),
            "AT+CEREG?",
            &["+CEREG:"],
            false,
        ),
        (
            Command::registration_reports(RegistrationKind::Gprs, 2),
            "AT+CGREG=2",
            &[],
            false,
        ),
        (Command::signal_quality(), "AT+CSQ", &["+CSQ:"], false),
        (Command::operator_name_format(), "AT+COPS=3,0", &[], false),
        (Command::operator(), "AT+COPS?", &["+COPS:"], false),
        (Command::manufacturer(), "AT+CGMI", &["+CGMI:"], true),
        (Command::model(), "AT+CGMM", &["+CGMM:"], true),
        (Command::firmware(), "AT+CGMR", &["+CGMR:"], true),
        (Command::imei(), "AT+CGSN", &["+CGSN:"], true),
        (Command::imsi(), "AT+CIMI", &["+CIMI:"], true),
        (
            Command::list_messages(ListFilter::All),
            "AT+CMGL=4",
            &["+CMGL:"],
            true,
        ),
        (Command::read_message(7), "AT+CMGR=7", &["+CMGR:"], true),
        (Command::delete_message(7), "AT+CMGD=7", &[], false),
        (Command::delete_all_messages(), "AT+CMGD=1,4", &[], false),
        (Command::acknowledge(), "AT+CNMA", &[], false),
        (Command::message_service(1), "AT+CSMS=1", &["+CSMS:"], false),
        (Command::service_centre(), "AT+CSCA?", &["+CSCA:"], false),
    ];
    for (command, text, prefixes, bare) in cases {
        assert_eq!(command.text(), text);
        assert_eq!(command.display(), text);
        assert_eq!(command.info_prefixes(), prefixes, "{text}");
        assert_eq!(command.bare_lines(), bare, "{text}");
        assert!(!command.expects_prompt(), "{text}");
        assert!(command.timeout() >= DEFAULT_TIMEOUT, "{text}");
    }
    let iccid: Vec<String> = Command::iccid_queries()
        .iter()
        .map(|c| c.text().to_owned())
        .collect();
    assert_eq!(iccid, ["AT+CCID", "AT+QCCID", "AT+CICCID", "AT^ICCID?"]);
    let cmgs = Command::send_message(23).unwrap();
    assert_eq!(cmgs.text(), "AT+CMGS=23");
    assert!(cmgs.expects_prompt());
    assert!(cmgs.pending().expects_prompt);
}

#[test]
fn bad_input_gives_no_command() {
    for pin in ["", "123", "123456789", "12a4", "1234\"\r"] {
        assert_eq!(
            Command::enter_pin(pin),
            Err(CommandError::InvalidPin),
            "{pin:?}"
        );
    }
    for text in ["", "CSQ", "AT+CSQ\rATZ", "AT+CMGS=1\x1a", "AT\u{e9}"] {
        assert!(Command::new(text).is_err(), "{text:?}");
    }
    assert!(Command::new("at+csq").is_ok());
    for len in [0, 256] {
        assert_eq!(
            Command::send_message(len),
            Err(CommandError::InvalidLength(len))
        );
    }
}

#[test]
fn the_pin_is_masked_everywhere_but_on_the_wire() {
    let command = Command::enter_pin("9876").unwrap();
    assert_eq!(command.text(), "AT+CPIN=\"9876\"");
    assert_eq!(command.display(), "AT+CPIN=\"****\"");
    assert!(!format!("{command:?}").contains("9876"));
}

#[test]
fn signal_quality_in_dbm() {
    for (rssi, dbm) in [
        (0, Some(-113)),
        (1, Some(-111)),
        (2, Some(-109)),
        (15, Some(-83)),
        (30, Some(-53)),
        (31, Some(-51)),
        (32, None),
        (99, None),
    ] {
        assert_eq!(rssi_dbm(rssi), dbm, "rssi {rssi}");
    }
    check(
        SignalQuality::from_response,
        &[
            (&["+CSQ: 18,0"], Ok(SignalQuality { rssi: 18, ber: 0 })),
            (&["+CSQ: 99,99"], Ok(SignalQuality { rssi: 99, ber: 99 })),
            (&[], Err(AnswerError::Missing("+CSQ:"))),
            (
                &["+CSQ: x"],
                Err(AnswerError::Malformed {
                    prefix: "+CSQ:",
                    line: "x".into(),
                }),
            ),
        ],
    );
}

#[test]
fn registration_answers() {
    let home = |area, cell_id, access_technology| {
        Ok(Registration {
            status: RegistrationStatus::Home,
            area,
            cell_id,
            access_technology,
        })
    };
    check(
        |r| Registration::from_response(r, RegistrationKind::CircuitSwitched),
        &[
            (&["+CREG: 0,1"], home(None, None, None)),
            (
                &["+CREG: 2,1,\"1A2B\",\"01C3D4E5\",7"],
                home(Some(0x1A2B), Some(0x01C3_D4E5), Some(7)),
            ),
            // A URC (stat first) that slipped into the answer is skipped.
            (
                &["+CREG: 1,\"1A2B\",\"01C3D4E5\"", "+CREG: 0,5"],
                Ok(Registration {
                    status: RegistrationStatus::Roaming,
                    area: None,
                    cell_id: None,
                    access_technology: None,
                }),
            ),
            (&["+CGREG: 0,1"], Err(AnswerError::Missing("+CREG:"))),
            (
                &["+CREG: 1"],
                Err(AnswerError::Malformed {
                    prefix: "+CREG:",
                    line: "1".into(),
                }),
            ),
        ],
    );
    assert!(RegistrationStatus::from_code(6).is_registered());
    assert!(!RegistrationStatus::from_code(2).is_registered());
    assert!(!RegistrationStatus::from_code(3).is_registered());
}

#[test]
fn sim_state_operator_and_message_reference() {
    check(
        SimState::from_response,
        &[
            (&["+CPIN: READY"], Ok(SimState::Ready)),
            (&["+CPIN: SIM PIN"], Ok(SimState::SimPin)),
            (&["+CPIN: SIM PUK"], Ok(SimState::SimPuk)),
            (&["+CPIN: NOT INSERTED"], Ok(SimState::NotInserted)),
            (&[], Err(AnswerError::Missing("+CPIN:"))),
        ],
    );
    check(
        Operator::from_response,
        &[
            (
                &["+COPS: 0,0,\"Vodafone UK\",7"],
                Ok(Operator {
                    mode: 0,
                    format: Some(0),
                    name: Some("Vodafone UK".into()),
                    access_technology: Some(7),
                }),
            ),
            (
                &["+COPS: 0"],
                Ok(Operator {
                    mode: 0,
                    format: None,
                    name: None,
                    access_technology: None,
                }),
            ),
        ],
    );
    check(
        message_reference,
        &[
            (&["+CMGS: 12"], Ok(12)),
            (&["+CMGS: 255,\"24/01/01,12:00:00+00\""], Ok(255)),
            (
                &["+CMGS: 256"],
                Err(AnswerError::Malformed {
                    prefix: "+CMGS:",
                    line: "256".into(),
                }),
            ),
            (&[], Err(AnswerError::Missing("+CMGS:"))),
        ],
    );
}

#[test]
fn storage_usage() {
    let usage = |pairs: &[(u32, u32)]| {
        Ok(StorageUsage {
            memories: pairs
                .iter()
                .map(|&(used, total)| MemoryUsage { used, total })
                .collect(),
        })
    };
    check(
        StorageUsage::from_response,
        &[
            (
                &["+CPMS: 3,30,3,30,0,30"],
                usage(&[(3, 30), (3, 30), (0, 30)]),
            ),
            (
                &["+CPMS: \"SM\",3,30,\"SM\",3,30,\"SM\",3,30"],
                usage(&[(3, 30), (3, 30), (3, 30)]),
            ),
            (
                &["+CPMS: 3"],
                Err(AnswerError::Malformed {
                    prefix: "+CPMS:",
                    line: "3".into(),
                }),
            ),
        ],
    );
}

#[test]
fn stored_messages() {
    const PDU: &str = "07914477581006500405A101000000112062000000000AC8329BFD06";
    let message = |index, status, pdu: Option<&str>| StoredMessage {
        index,
        status,
        length: 23,
        pdu: pdu.map(str::to_owned),
    };
    check(
        StoredMessage::list_from_response,
        &[
            (&[], vec![]),
            (
                &["+CMGL: 1,1,,23", PDU, "+CMGL: 4,0,\"a,b\",23", PDU],
                vec![
                    message(1, MessageStatus::ReceivedRead, Some(PDU)),
                    message(4, MessageStatus::ReceivedUnread, Some(PDU)),
                ],
            ),
            // A header without its PDU line is kept; a malformed header is skipped.
            (
                &["+CMGL: 2,0,,23", "+CMGL: x", "+CMGL: 3,1,,23", PDU],
                vec![
                    message(2, MessageStatus::ReceivedUnread, None),
                    message(3, MessageStatus::ReceivedRead, Some(PDU)),
                ],
            ),
        ],
    );
    check(
        |r| StoredMessage::read_from_response(r, 9),
        &[
            (
                &["+CMGR: 0,,23", PDU],
                Ok(message(9, MessageStatus::ReceivedUnread, Some(PDU))),
            ),
            (&[], Err(AnswerError::Missing("+CMGR:"))),
        ],
    );
}

#[test]
fn identity_answers() {
    check(
        text_answer,
        &[
            (&["SIMCOM_Ltd"], Ok("SIMCOM_Ltd".to_owned())),
            (
                &["+CGMI: SIMCOM INCORPORATED"],
                Ok("SIMCOM INCORPORATED".to_owned()),
            ),
            (
                &["Revision: EC25EFAR06A03M4G"],
                Ok("EC25EFAR06A03M4G".to_owned()),
            ),
            (
                &["+CGMR: \"LE11B08SIM7600M22\""],
                Ok("LE11B08SIM7600M22".to_owned()),
            ),
            (&[], Err(AnswerError::Missing("identity"))),
        ],
    );
    check(
        imei,
        &[
            (&["867698041234567"], Ok("867698041234567".to_owned())),
            (
                &["+CGSN: 867698041234567"],
                Ok("867698041234567".to_owned()),
            ),
            (
                &["86769804"],
                Err(AnswerError::Malformed {
                    prefix: "IMEI",
                    line: "86769804".into(),
                }),
            ),
            (
                &["SMS DONE"],
                Err(AnswerError::Malformed {
                    prefix: "IMEI",
                    line: "SMS DONE".into(),
                }),
            ),
            (
                &["8676980412345678"],
                Err(AnswerError::Malformed {
                    prefix: "IMEI",
                    line: "<16 hex chars>".into(),
                }),
            ),
        ],
    );
    check(
        imsi,
        &[(&["234150123456789"], Ok("234150123456789".to_owned()))],
    );
    check(
        iccid,
        &[
            (
                &["89441000301234567890"],
                Ok("89441000301234567890".to_owned()),
            ),
            (
                &["+QCCID: 8944100030123456789F"],
                Ok("8944100030123456789".to_owned()),
            ),
            (
                &["+ICCID: 89860113908901324233"],
                Ok("89860113908901324233".to_owned()),
            ),
            // Huawei gives the SIM's nibble-swapped digits.
            (
                &["^ICCID: 98681031099810232433"],
                Ok("89860113908901324233".to_owned()),
            ),
            (
                &["^ICCID: 12"],
                Err(AnswerError::Malformed {
                    prefix: "ICCID",
                    line: "12".into(),
                }),
            ),
        ],
    );
}

#[test]
fn cms_errors_are_classified() {
    use CmsError as E;
    // (code, variant, permanent, concerns the modem)
    let cases = [
        (1, E::UnassignedNumber, true, false),
        (8, E::OperatorDeterminedBarring, true, true),
        (10, E::CallBarred, true, false),
        (21, E::ShortMessageTransferRejected, true, false),
        (27, E::DestinationOutOfService, false, false),
        (28, E::UnidentifiedSubscriber, false, true),
        (29, E::FacilityRejected, true, false),
        (30, E::UnknownSubscriber, true, false),
        (38, E::NetworkOutOfOrder, false, false),
        (41, E::TemporaryFailure, false, false),
        (42, E::Congestion, false, false),
        (47, E::ResourcesUnavailable, false, false),
        (96, E::InvalidMandatoryInformation, true, false),
        (97, E::MessageTypeNonExistent, true, false),
        (98, E::MessageNotCompatible, true, false),
        (99, E::InformationElementNonExistent, true, false),
        (300, E::MeFailure, false, true),
        (302, E::OperationNotAllowed, true, true),
        (303, E::OperationNotSupported, true, true),
        (304, E::InvalidPduModeParameter, true, false),
        (310, E::SimNotInserted, false, true),
        (311, E::SimPinRequired, false, true),
        (320, E::MemoryFailure, false, true),
        (321, E::InvalidMemoryIndex, true, false),
        (322, E::MemoryFull, false, true),
        (330, E::SmscAddressUnknown, true, true),
        (331, E::NoNetworkService, false, true),
        (332, E::NetworkTimeout, false, true),
        (340, E::NoCnmaExpected, true, false),
        (500, E::UnknownError, false, false),
        (512, E::Unknown(512), false, false),
        (77, E::Unknown(77), false, false),
    ];
    // Whose fault: the message's, a passing condition's, or the modem's.
    for (code, blame) in [
        (30, Blame::Message),
        (42, Blame::Passing),
        (314, Blame::Passing),
        (212, Blame::Passing),
        (330, Blame::Modem),
        (302, Blame::Modem),
        (28, Blame::Modem),
        (512, Blame::Passing),
    ] {
        assert_eq!(E::from_code(code).blame(), blame, "{code}");
    }
    assert_eq!(CmeError::SimBusy.blame(), Blame::Passing);
    assert_eq!(CmeError::SimNotInserted.blame(), Blame::Modem);
    assert!(
        E::SmscAddressUnknown
            .fix()
            .is_some_and(|f| f.contains("[sms] smsc"))
    );
    for (code, variant, permanent, modem) in cases {
        let error = E::from_code(code);
        assert_eq!(error, variant, "{code}");
        assert_eq!(error.code(), Some(code));
        assert_eq!(error.is_permanent(), permanent, "{code}");
        assert_eq!(error.is_temporary(), !permanent, "{code}");
        assert_eq!(error.concerns_modem(), modem, "{code}");
        assert!(!error.describe().is_empty());
    }
    assert_eq!(E::from_code(38).to_string(), "38 (network out of order)");
    assert_eq!(
        E::from(&ErrorCode::Text("SMSC address unknown".into())),
        E::SmscAddressUnknown
    );
    assert_eq!(
        E::from(&ErrorCode::Text("304".into())),
        E::InvalidPduModeParameter
    );
    let other = E::from(&ErrorCode::Text("Vendor says no".into()));
    assert_eq!(other, E::Other("Vendor says no".into()));
    assert!(other.is_temporary());
    assert_eq!(other.to_string(), "Vendor says no");
}

#[test]
fn cme_errors_are_classified() {
    use CmeError as E;
    let cases = [
        (10, E::SimNotInserted, false, true),
        (11, E::SimPinRequired, false, true),
        (12, E::SimPukRequired, false, true),
        (13, E::SimFailure, false, true),
        (14, E::SimBusy, false, true),
        (16, E::IncorrectPassword, true, true),
        (30, E::NoNetworkService, false, true),
        (100, E::UnknownError, false, false),
        (999, E::Unknown(999), false, false),
    ];
    for (code, variant, permanent, modem) in cases {
        let error = E::from_code(code);
        assert_eq!(error, variant, "{code}");
        assert_eq!(error.is_permanent(), permanent, "{code}");
        assert_eq!(error.concerns_modem(), modem, "{code}");
    }
    assert_eq!(
        E::from(&ErrorCode::Text("sim not inserted".into())),
        E::SimNotInserted
    );
    assert_eq!(
        E::from(&ErrorCode::Text("incorrect password".into())),
        E::IncorrectPassword
    );
}

#[test]
fn service_centre_answers() {
    check(
        service_centre,
        &[
            (
                &["+CSCA: \"+447785016005\",145"],
                Ok(Some("+447785016005".to_owned())),
            ),
            (
                &["+CSCA: \"447785016005\",145"],
                Ok(Some("+447785016005".to_owned())),
            ),
            (&["+CSCA: \"0172\",129"], Ok(Some("0172".to_owned()))),
            // A SIM without an SMSC (Huawei E220: smslib-v3 PR 12; gammu issue 541).
            (&["+CSCA: \"\",129"], Ok(None)),
            (&["+CSCA: \"\""], Ok(None)),
            (&[], Err(AnswerError::Missing("+CSCA:"))),
        ],
    );
}
