//! Transcript tests of the modem model: each test is a table of steps (at a time, the client
//! writes something, the modem must have said exactly this), run once with every write whole
//! and once one byte at a time, which must give the same transcript.

use std::time::{Duration, Instant};

use super::*;

/// A well-known SMS-SUBMIT: default SMSC, relative validity, to +46708251358, GSM 7-bit
/// "hellohello". TPDU: 1+1+1+1+6+1+1+1+1+9 = 23 octets.
const HELLO: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
/// The same with TP-SRR set (first octet 0x31).
const HELLO_SRR: &str = "0031000B916407281553F80000AA0AE8329BFD4697D9EC37";
/// An SMS-DELIVER from +31641600986 with an explicit SMSC field; TPDU 30 octets.
const DELIVER: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
/// The status report the model builds for message 0 to HELLO's destination, sent and
/// delivered in the first second: SMSC +447785016005, first octet 06, MR 00, TP-RA, two
/// time stamps 2025-01-01 00:00:00, status 00. TPDU 25 octets.
const REPORT_MR0: &str = "07914477581006500600 0B916407281553F8 52101000000000 52101000000000 00";

const OK: &str = "\r\nOK\r\n";

fn report_mr0() -> String {
    REPORT_MR0.replace(' ', "")
}

fn ctrl_z(pdu: &str) -> String {
    format!("{pdu}\x1a")
}

fn answer(lines: &[&str]) -> String {
    format!("\r\n{}\r\n\r\nOK\r\n", lines.join("\r\n"))
}

fn urc(line: &str) -> String {
    format!("\r\n{line}\r\n")
}

fn cms(code: u16) -> String {
    format!("\r\n+CMS ERROR: {code}\r\n")
}

fn cme(code: u16) -> String {
    format!("\r\n+CME ERROR: {code}\r\n")
}

/// One step of a transcript; `ms` counts from power-up.
#[derive(Debug, Clone)]
enum Step {
    /// The client writes `input`; everything said since the last step must be `output`.
    Io {
        ms: u64,
        input: String,
        output: String,
    },
    /// A fault is switched on; `output` as for `Io`.
    Set {
        ms: u64,
        fault: Fault,
        output: String,
    },
    /// Every fault is switched off.
    Clear { ms: u64, output: String },
    /// A message arrives from the network; the result must be `result`.
    Inject {
        ms: u64,
        pdu: String,
        result: Result<Delivery, InjectError>,
        output: String,
    },
}

fn io(ms: u64, input: impl Into<String>, output: impl Into<String>) -> Step {
    Step::Io {
        ms,
        input: input.into(),
        output: output.into(),
    }
}

fn set(ms: u64, fault: Fault, output: impl Into<String>) -> Step {
    Step::Set {
        ms,
        fault,
        output: output.into(),
    }
}

fn clear(ms: u64, output: impl Into<String>) -> Step {
    Step::Clear {
        ms,
        output: output.into(),
    }
}

fn inject(
    ms: u64,
    pdu: &str,
    result: Result<Delivery, InjectError>,
    output: impl Into<String>,
) -> Step {
    Step::Inject {
        ms,
        pdu: pdu.to_string(),
        result,
        output: output.into(),
    }
}

fn stored(index: usize) -> Result<Delivery, InjectError> {
    Ok(Delivery::Stored { index })
}

/// Runs `steps` against a modem built from `config`, whole and byte by byte; returns the
/// modem (whole run) for further assertions.
fn check(config: ModelConfig, steps: &[Step]) -> Modem {
    let (modem, whole) = run(config.clone(), steps, false);
    let (_, bytewise) = run(config, steps, true);
    assert_eq!(whole, bytewise, "one byte at a time changed the transcript");
    modem
}

fn run(config: ModelConfig, steps: &[Step], bytewise: bool) -> (Modem, Vec<Vec<u8>>) {
    // An arbitrary origin: the model only ever sees offsets from it.
    let t0 = Instant::now();
    let mut modem = Modem::new(config, t0);
    let mut transcript = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let (ms, expected) = match step {
            Step::Io { ms, output, .. }
            | Step::Set { ms, output, .. }
            | Step::Clear { ms, output }
            | Step::Inject { ms, output, .. } => (*ms, output),
        };
        let now = t0 + Duration::from_millis(ms);
        let mut out = modem.take_output(now);
        match step {
            Step::Io { input, .. } => {
                if bytewise {
                    for b in input.bytes() {
                        modem.input(&[b], now);
                        out.extend(modem.take_output(now));
                    }
                } else {
                    modem.input(input.as_bytes(), now);
                }
            }
            Step::Set { fault, .. } => modem.set_fault(fault.clone(), now),
            Step::Clear { .. } => modem.clear_faults(now),
            Step::Inject { pdu, result, .. } => {
                assert_eq!(&modem.inject_incoming(pdu, now), result, "step {i}");
            }
        }
        out.extend(modem.take_output(now));
        assert_eq!(
            out.escape_ascii().to_string(),
            expected.as_bytes().escape_ascii().to_string(),
            "step {i} at {ms} ms: {step:?}"
        );
        transcript.push(out);
    }
    (modem, transcript)
}

fn fast(profile: Profile) -> ModelConfig {
    ModelConfig::fast(profile)
}

/// Echo off, so transcripts show answers only.
fn quiet(ms: u64) -> Step {
    io(ms, "ATE0\r", format!("ATE0\r{OK}"))
}

fn sim800_boot() -> String {
    ["RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"]
        .map(urc)
        .concat()
}

#[test]
fn echo_is_on_after_power_up_and_follows_ate() {
    check(
        fast(Profile::Generic),
        &[
            io(0, "AT\r", format!("AT\r{OK}")),
            io(1, "ATE0\r", format!("ATE0\r{OK}")),
            io(2, "AT\r", OK),
            io(3, "ATE1\r", OK),
            io(4, "AT\r", format!("AT\r{OK}")),
            // A line feed after the CR is echoed but not a command.
            io(5, "AT\r\n", format!("AT\r{OK}\n")),
            // Backspace removes the character before it.
            io(6, "ATX\x08\r", format!("ATX\x08\r{OK}")),
            io(7, "ATE0\r", format!("ATE0\r{OK}")),
            // ATZ restores the profile: echo on again, without a reboot.
            io(8, "ATZ\r", OK),
            io(9, "AT\r", format!("AT\r{OK}")),
            io(10, "ATE0\r", format!("ATE0\r{OK}")),
            io(11, "AT&F\r", OK),
            io(12, "AT\r", format!("AT\r{OK}")),
        ],
    );
}

#[test]
fn any_chunking_gives_the_same_answers() {
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            // A command split over writes.
            io(1, "AT+C", ""),
            io(2, "SQ", ""),
            io(3, "\r", answer(&["+CSQ: 21,99"])),
            // Several commands in one write.
            io(
                4,
                "AT\rAT+CFUN?\rAT\r",
                format!("{OK}{}{OK}", answer(&["+CFUN: 1"])),
            ),
            // Noise without an AT prefix is ignored; text before AT is skipped.
            io(5, "hello\r", ""),
            io(6, "xxAT\r", OK),
            io(7, "\r", ""),
        ],
    );
}

#[test]
fn answers_every_command_like_a_3gpp_modem() {
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CMEE?\r", answer(&["+CMEE: 0"])),
            io(1, "AT+CMEE=3\r", "\r\nERROR\r\n"),
            io(1, "AT+CFUN?\r", answer(&["+CFUN: 1"])),
            io(1, "AT+CPIN?\r", answer(&["+CPIN: READY"])),
            // With no PIN pending the command is refused (CMEE=0: plain ERROR).
            io(1, "AT+CPIN=\"1234\"\r", "\r\nERROR\r\n"),
            io(1, "AT+CMEE=1\r", OK),
            io(1, "AT+CPIN=\"1234\"\r", cme(3)),
            io(1, "AT+CMEE=2\r", OK),
            io(
                1,
                "AT+CPIN=\"1234\"\r",
                "\r\n+CME ERROR: operation not allowed\r\n",
            ),
            io(1, "AT+CMEE=1\r", OK),
            io(1, "AT+CMGF?\r", answer(&["+CMGF: 0"])),
            io(1, "AT+CMGF=?\r", answer(&["+CMGF: (0,1)"])),
            io(1, "AT+CMGF=0\r", OK),
            io(1, "AT+CMGF=2\r", "\r\nERROR\r\n"),
            io(1, "AT+CSCS?\r", answer(&["+CSCS: \"IRA\""])),
            io(1, "AT+CSCS=\"GSM\"\r", OK),
            io(1, "AT+CSCS?\r", answer(&["+CSCS: \"GSM\""])),
            io(1, "AT+CNMI?\r", answer(&["+CNMI: 2,1,0,0,0"])),
            io(1, "AT+CNMI=2,1,0,1,0\r", OK),
            io(1, "AT+CNMI?\r", answer(&["+CNMI: 2,1,0,1,0"])),
            io(1, "AT+CNMI=9\r", cms(303)),
            io(
                1,
                "AT+CPMS?\r",
                answer(&["+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30"]),
            ),
            io(
                1,
                "AT+CPMS=\"ME\",\"ME\",\"ME\"\r",
                answer(&["+CPMS: 0,30,0,30,0,30"]),
            ),
            io(
                1,
                "AT+CPMS?\r",
                answer(&["+CPMS: \"ME\",0,30,\"ME\",0,30,\"ME\",0,30"]),
            ),
            io(1, "AT+CPMS=\"XX\"\r", cms(302)),
            io(1, "AT+CREG?\r", answer(&["+CREG: 0,1"])),
            io(1, "AT+CGREG?\r", answer(&["+CGREG: 0,1"])),
            io(1, "AT+CEREG?\r", answer(&["+CEREG: 0,1"])),
            io(1, "AT+CREG=2\r", OK),
            io(
                1,
                "AT+CREG?\r",
                answer(&["+CREG: 2,1,\"1A2B\",\"01C3D4E5\""]),
            ),
            io(1, "AT+CREG=3\r", "\r\nERROR\r\n"),
            io(1, "AT+CSQ\r", answer(&["+CSQ: 21,99"])),
            io(1, "AT+COPS?\r", answer(&["+COPS: 0,0,\"Test Network\",7"])),
            io(1, "AT+COPS=3,2\r", OK),
            io(1, "AT+COPS?\r", answer(&["+COPS: 0,2,\"00101\",7"])),
            io(1, "AT+CSCA?\r", answer(&["+CSCA: \"+447785016005\",145"])),
            io(1, "AT+CSCA=\"+12063130004\"\r", OK),
            io(1, "AT+CSCA?\r", answer(&["+CSCA: \"+12063130004\",145"])),
            io(1, "AT+CSMP?\r", answer(&["+CSMP: 17,167,0,0"])),
            io(1, "AT+CSMP=49,167,0,8\r", OK),
            io(1, "AT+CSMP?\r", answer(&["+CSMP: 49,167,0,8"])),
            io(1, "AT+CSMS=1\r", answer(&["+CSMS: 1,1,1"])),
            io(1, "AT+CPAS\r", answer(&["+CPAS: 0"])),
            io(1, "AT+CMGS=?\r", OK),
            io(1, "AT+CMGS\r", "\r\nERROR\r\n"),
            io(1, "AT+CMGS=0\r", cms(304)),
            io(1, "AT+CMGS=181\r", cms(304)),
            io(1, "AT+CMGS=\"+46708251358\"\r", cms(304)),
            // Text mode may be selected, but sending in it is refused.
            io(1, "AT+CMGF=1;+CMGS=23\r", cms(303)),
            io(1, "AT+CMGF=0\r", OK),
            // Chained commands answer together; an error stops the line.
            io(
                1,
                "AT+CMEE=1;+CSQ;+CFUN?\r",
                "\r\n+CSQ: 21,99\r\n\r\n+CFUN: 1\r\n\r\nOK\r\n",
            ),
            io(
                1,
                "AT+CSQ;+NOPE;+CFUN?\r",
                "\r\n+CSQ: 21,99\r\n\r\nERROR\r\n",
            ),
            io(1, "AT+NOPE\r", "\r\nERROR\r\n"),
            io(1, "AT+CSQ?x\r", "\r\nERROR\r\n"),
            io(1, "ATV1Q0X0&D2&C1S0=0\r", OK),
            io(1, "ATV0\r", "\r\nERROR\r\n"),
            // No network: CFUN=0 drops the registration and the signal.
            io(2, "AT+CFUN=0\r", format!("{OK}{}", urc("+CREG: 0"))),
            io(2, "AT+CREG?\r", answer(&["+CREG: 2,0"])),
            io(2, "AT+CSQ\r", answer(&["+CSQ: 99,99"])),
            io(2, "AT+COPS?\r", answer(&["+COPS: 0"])),
            io(
                3,
                "AT+CFUN=1\r",
                format!(
                    "{OK}{}{}",
                    urc("+CREG: 2"),
                    urc("+CREG: 1,\"1A2B\",\"01C3D4E5\"")
                ),
            ),
            io(
                3,
                "AT+CREG?\r",
                answer(&["+CREG: 2,1,\"1A2B\",\"01C3D4E5\""]),
            ),
        ],
    );
}

#[test]
fn each_profile_tells_who_it_is() {
    struct Case {
        profile: Profile,
        boot: String,
        ati: &'static [&'static str],
        ids: [&'static str; 5],
        iccid: (&'static str, &'static str),
    }
    let cases = [
        Case {
            profile: Profile::Generic,
            boot: String::new(),
            ati: &["smsbridge simulated 3GPP modem"],
            ids: [
                "smsbridge",
                "SIMULATED-3GPP",
                "1.0.0",
                "352099001761481",
                "001010000000001",
            ],
            iccid: ("AT+CCID\r", "\r\nERROR\r\n"),
        },
        Case {
            profile: Profile::Sim800,
            boot: sim800_boot(),
            ati: &["SIM800 R14.18"],
            ids: [
                "SIMCOM_Ltd",
                "SIMCOM_SIM800L",
                "Revision:1418B04SIM800L24",
                "869067031234569",
                "001010000000002",
            ],
            iccid: ("AT+CCID\r", "\r\n89001010123456789023\r\n\r\nOK\r\n"),
        },
        Case {
            profile: Profile::Ec25,
            boot: ["RDY", "+CPIN: READY", "+QIND: SMS DONE", "+QIND: PB DONE"]
                .map(urc)
                .concat(),
            ati: &["Quectel", "EC25", "Revision: EC25EFAR06A06M4G"],
            ids: [
                "Quectel",
                "EC25",
                "EC25EFAR06A06M4G",
                "861673039876547",
                "001010000000003",
            ],
            iccid: (
                "AT+QCCID\r",
                "\r\n+QCCID: 89001010123456789031\r\n\r\nOK\r\n",
            ),
        },
        Case {
            profile: Profile::E3372,
            boot: ["^BOOT:20392484,0,0,0,72", "^SIMST:1", "^MODE:5,4"]
                .map(urc)
                .concat(),
            ati: &[
                "Manufacturer: huawei",
                "Model: E3372",
                "Revision: 22.328.62.00.1217",
                "IMEI: 867445021357909",
                "+GCAP: +CGSM,+DS,+ES",
            ],
            ids: [
                "huawei",
                "E3372",
                "22.328.62.00.1217",
                "867445021357909",
                "001010000000004",
            ],
            iccid: (
                "AT^ICCID?\r",
                "\r\n^ICCID: 89001010123456789049\r\n\r\nOK\r\n",
            ),
        },
    ];
    for case in cases {
        let [maker, model, revision, imei, imsi] = case.ids;
        check(
            fast(case.profile),
            &[
                io(0, "ATE0\r", format!("{}ATE0\r{OK}", case.boot)),
                io(1, "ATI\r", answer(case.ati)),
                io(1, "AT+CGMI\r", answer(&[maker])),
                io(1, "AT+CGMM\r", answer(&[model])),
                io(1, "AT+CGMR\r", answer(&[revision])),
                io(1, "AT+CGSN\r", answer(&[imei])),
                io(1, "AT+CIMI\r", answer(&[imsi])),
                io(1, case.iccid.0, case.iccid.1),
            ],
        );
    }
}

#[test]
fn vendor_specific_commands_belong_to_their_vendor() {
    // The SIM800 is 2G only: no EPS registration, and no Quectel or Huawei commands.
    check(
        fast(Profile::Sim800),
        &[
            io(0, "ATE0\r", format!("{}ATE0\r{OK}", sim800_boot())),
            io(1, "AT+CEREG?\r", "\r\nERROR\r\n"),
            io(1, "AT+QCCID\r", "\r\nERROR\r\n"),
            io(1, "AT^ICCID?\r", "\r\nERROR\r\n"),
            io(1, "AT+COPS?\r", answer(&["+COPS: 0,0,\"Test Network\""])),
            io(1, "AT+CREG=2\r", OK),
            io(1, "AT+CREG?\r", answer(&["+CREG: 2,1,\"1A2B\",\"0C3D\""])),
        ],
    );
    // Quectel ships with numeric error codes on.
    check(
        fast(Profile::Ec25),
        &[
            io(
                0,
                "ATE0\r",
                format!(
                    "{}ATE0\r{OK}",
                    ["RDY", "+CPIN: READY", "+QIND: SMS DONE", "+QIND: PB DONE"]
                        .map(urc)
                        .concat()
                ),
            ),
            io(1, "AT+CMEE?\r", answer(&["+CMEE: 1"])),
            io(1, "AT+CCID\r", "\r\nERROR\r\n"),
        ],
    );
}

#[test]
fn boots_deaf_then_speaks_and_resets_the_same_way() {
    let config = ModelConfig {
        boot_time: Duration::from_millis(100),
        ..fast(Profile::Sim800)
    };
    let mut modem = check(
        config,
        &[
            io(0, "AT\r", ""),
            io(99, "AT\r", ""),
            io(100, "", sim800_boot()),
            quiet(110),
            io(120, "AT+CFUN=1,1\r", OK),
            io(150, "AT\r", ""),
            io(220, "AT\r", format!("{}AT\r{OK}", sim800_boot())),
        ],
    );
    assert_eq!(
        modem.take_notices(),
        vec![Notice::Reset {
            reenumerates: false,
            boot_time: Duration::from_millis(100)
        }]
    );
}

#[test]
fn usb_profiles_reenumerate_on_reset() {
    for profile in Profile::ALL {
        let t0 = Instant::now();
        let mut modem = Modem::new(fast(profile), t0);
        modem.take_output(t0);
        modem.input(b"ATE0\r", t0);
        modem.take_output(t0);
        modem.input(b"AT+CFUN=1,1\r", t0);
        let reenumerates = profile.reenumerates_on_reset();
        assert!(
            modem.take_output(t0).starts_with(b"\r\nOK\r\n"),
            "{profile}"
        );
        // A USB device is off the bus until the runner powers it on again; the others
        // are booting (no boot time here: already up).
        assert_eq!(modem.is_powered(), !reenumerates, "{profile}");
        assert_eq!(
            modem.take_notices(),
            vec![Notice::Reset {
                reenumerates,
                boot_time: Duration::ZERO
            }],
            "{profile}"
        );
    }
}

#[test]
fn registration_takes_its_time_and_is_reported() {
    let config = ModelConfig {
        registration_delay: Duration::from_millis(500),
        roaming: true,
        ..fast(Profile::Generic)
    };
    check(
        config,
        &[
            quiet(0),
            io(10, "AT+CREG=1;+CGREG=2;+CEREG=1\r", OK),
            io(20, "AT+CREG?\r", answer(&["+CREG: 1,2"])),
            io(20, "AT+CSQ\r", answer(&["+CSQ: 99,99"])),
            io(20, "AT+COPS?\r", answer(&["+COPS: 0"])),
            io(499, "", ""),
            io(
                500,
                "",
                ["+CREG: 5", "+CGREG: 5,\"1A2B\",\"01C3D4E5\"", "+CEREG: 5"]
                    .map(urc)
                    .concat(),
            ),
            io(510, "AT+CREG?\r", answer(&["+CREG: 1,5"])),
            // Losing the radio is reported too.
            io(
                520,
                "AT+CFUN=4\r",
                format!(
                    "{OK}{}",
                    ["+CREG: 0", "+CGREG: 0", "+CEREG: 0"].map(urc).concat()
                ),
            ),
        ],
    );
}

#[test]
fn sends_a_valid_pdu_after_the_latency() {
    let mut modem = check(
        fast(Profile::Generic),
        &[
            // With echo on (power-up default) the PDU is echoed, the Ctrl-Z is not.
            io(10, "AT+CMGS=23\r", "AT+CMGS=23\r\r\n> "),
            io(10, ctrl_z(HELLO), HELLO),
            io(29, "", ""),
            io(30, "", answer(&["+CMGS: 0"])),
            quiet(40),
            io(50, "AT+CMGS=23\r", "\r\n> "),
            // Line breaks inside the PDU are ignored; lower case hex is fine.
            io(
                50,
                format!("{}\r\n{}\x1a", &HELLO[..20], HELLO[20..].to_lowercase()),
                "",
            ),
            io(70, "", answer(&["+CMGS: 1"])),
        ],
    );
    let received = modem.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0],
        ReceivedSms {
            pdu_hex: HELLO.to_string(),
            tpdu_len: 23,
            mr: 0,
            tp_mr: 0,
            destination: "+46708251358".to_string(),
            status_report_requested: false,
            dcs: 0,
            user_data_len: 10,
            concat: None,
        }
    );
    assert_eq!(received[1].pdu_hex, HELLO);
    assert_eq!(received[1].mr, 1);
    let notices = modem.take_notices();
    assert_eq!(notices.len(), 2);
    assert!(matches!(&notices[1], Notice::Accepted(sms) if sms.mr == 1));
}

#[test]
fn commands_written_during_a_send_wait_for_its_answer() {
    let t0 = Instant::now();
    let mut modem = Modem::new(fast(Profile::Generic), t0);
    modem.input(b"ATE0\rAT+CMGS=23\r", t0);
    modem.take_output(t0);
    modem.input(format!("{}AT+CSQ\r", ctrl_z(HELLO)).as_bytes(), t0);
    assert_eq!(modem.take_output(t0), b"");
    assert_eq!(modem.next_wakeup(), Some(t0 + Duration::from_millis(20)));
    let out = modem.take_output(t0 + Duration::from_millis(20));
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("{}{}", answer(&["+CMGS: 0"]), answer(&["+CSQ: 21,99"]))
    );
    assert_eq!(modem.next_wakeup(), None);
}

#[test]
fn refuses_malformed_pdus_with_304() {
    let cases: &[(&str, &str, PduError)] = &[
        // Odd number of hex digits.
        ("AT+CMGS=23\r", &HELLO[..47], PduError::BadHex),
        // Not hex at all.
        (
            "AT+CMGS=23\r",
            "0011000B916407281553F80000AA0AE8329BFD4697D9EC3Z",
            PduError::BadHex,
        ),
        // The announced length does not match the TPDU.
        (
            "AT+CMGS=22\r",
            HELLO,
            PduError::LengthMismatch {
                declared: 22,
                actual: 23,
            },
        ),
        // An SMS-DELIVER written as if it were a SUBMIT.
        ("AT+CMGS=30\r", DELIVER, PduError::NotSubmit(0)),
        // TP-UDL claims more than the user data holds.
        (
            "AT+CMGS=23\r",
            "0011000B916407281553F80000AA0BE8329BFD4697D9EC37",
            PduError::UserDataLength {
                udl: 11,
                expected: 10,
                actual: 9,
            },
        ),
        // An odd-length destination without its F filler.
        (
            "AT+CMGS=23\r",
            "0011000B916407281553380000AA0AE8329BFD4697D9EC37",
            PduError::Address,
        ),
        // A UDH that does not fit in the user data.
        (
            "AT+CMGS=24\r",
            "0051000B916407281553F80008AA0A0A00032A020100480069",
            PduError::Header,
        ),
        // Nothing at all before the Ctrl-Z.
        ("AT+CMGS=23\r", "", PduError::Empty),
    ];
    for (command, pdu, error) in cases {
        let mut modem = check(
            fast(Profile::Generic),
            &[
                quiet(0),
                io(1, *command, "\r\n> "),
                io(1, ctrl_z(pdu), cms(304)),
                io(100, "AT\r", OK),
            ],
        );
        assert_eq!(modem.last_rejection(), Some(error), "{pdu}");
        assert!(modem.received().is_empty());
        assert!(modem.take_notices().is_empty());
    }
    // Verbose errors say it in words.
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CMEE=2\r", OK),
            io(1, "AT+CMGS=22\r", "\r\n> "),
            io(
                1,
                ctrl_z(HELLO),
                "\r\n+CMS ERROR: invalid PDU mode parameter\r\n",
            ),
        ],
    );
}

#[test]
fn escape_abandons_the_send() {
    let modem = check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CMGS=23\r", "\r\n> "),
            io(1, format!("{}\x1b", &HELLO[..10]), OK),
            io(100, "AT\r", OK),
        ],
    );
    assert!(modem.received().is_empty());
}

#[test]
fn message_references_wrap_from_255_to_0() {
    let config = ModelConfig {
        first_mr: 254,
        ..fast(Profile::Generic)
    };
    let mut steps = vec![quiet(0)];
    for (i, mr) in [254, 255, 0, 1].into_iter().enumerate() {
        let t = 100 * (i as u64 + 1);
        steps.push(io(t, "AT+CMGS=23\r", "\r\n> "));
        steps.push(io(t, ctrl_z(HELLO), ""));
        steps.push(io(t + 20, "", answer(&[&format!("+CMGS: {mr}")])));
    }
    let modem = check(config, &steps);
    let mrs: Vec<u8> = modem.received().iter().map(|r| r.mr).collect();
    assert_eq!(mrs, vec![254, 255, 0, 1]);
}

#[test]
fn status_reports_arrive_when_asked_for() {
    // ds=1: shown directly with +CDS.
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CNMI=2,1,0,1,0\r", OK),
            io(10, "AT+CMGS=23\r", "\r\n> "),
            io(10, ctrl_z(HELLO_SRR), ""),
            io(30, "", answer(&["+CMGS: 0"])),
            io(69, "", ""),
            io(70, "", format!("\r\n+CDS: 25\r\n{}\r\n", report_mr0())),
        ],
    );
    // ds=2: stored, announced with +CDSI, readable.
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CNMI=2,1,0,2,0\r", OK),
            io(10, "AT+CMGS=23\r", "\r\n> "),
            io(10, ctrl_z(HELLO_SRR), ""),
            io(30, "", answer(&["+CMGS: 0"])),
            io(70, "", urc("+CDSI: \"SM\",1")),
            io(71, "AT+CMGR=1\r", answer(&["+CMGR: 0,,25", &report_mr0()])),
        ],
    );
    // ds=0, or no TP-SRR: nothing.
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(10, "AT+CMGS=23\r", "\r\n> "),
            io(10, ctrl_z(HELLO_SRR), ""),
            io(30, "", answer(&["+CMGS: 0"])),
            io(1000, "AT+CNMI=2,1,0,1,0\r", OK),
            io(1010, "AT+CMGS=23\r", "\r\n> "),
            io(1010, ctrl_z(HELLO), ""),
            io(1030, "", answer(&["+CMGS: 1"])),
            io(2000, "", ""),
        ],
    );
}

#[test]
fn incoming_messages_are_stored_announced_read_and_deleted() {
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            inject(1, DELIVER, stored(1), urc("+CMTI: \"SM\",1")),
            io(
                2,
                "AT+CPMS?\r",
                answer(&["+CPMS: \"SM\",1,30,\"SM\",1,30,\"SM\",1,30"]),
            ),
            io(2, "AT+CMGR=1\r", answer(&["+CMGR: 0,,30", DELIVER])),
            // Reading marked it read.
            io(2, "AT+CMGR=1\r", answer(&["+CMGR: 1,,30", DELIVER])),
            inject(3, DELIVER, stored(2), urc("+CMTI: \"SM\",2")),
            io(
                4,
                "AT+CMGL=4\r",
                answer(&["+CMGL: 1,1,,30", DELIVER, "+CMGL: 2,0,,30", DELIVER]),
            ),
            io(4, "AT+CMGL=0\r", OK),
            io(
                4,
                "AT+CMGL=4\r",
                answer(&["+CMGL: 1,1,,30", DELIVER, "+CMGL: 2,1,,30", DELIVER]),
            ),
            io(5, "AT+CMGD=1\r", OK),
            io(5, "AT+CMGR=1\r", OK),
            io(5, "AT+CMGR=0\r", cms(321)),
            io(5, "AT+CMGR=31\r", cms(321)),
            io(5, "AT+CMGD=1,4\r", OK),
            io(
                5,
                "AT+CPMS?\r",
                answer(&["+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30"]),
            ),
            io(5, "AT+CMGD=?\r", answer(&["+CMGD: (1-30),(0-4)"])),
            // The announcement names the storage chosen with AT+CPMS.
            io(
                6,
                "AT+CPMS=\"ME\",\"ME\",\"MT\"\r",
                answer(&["+CPMS: 0,30,0,30,0,30"]),
            ),
            inject(7, DELIVER, stored(1), urc("+CMTI: \"MT\",1")),
            // mt=0: stored silently; mt=2: shown with +CMT and not stored.
            io(8, "AT+CNMI=2,0\r", OK),
            inject(9, DELIVER, stored(2), ""),
            io(10, "AT+CNMI=2,2\r", OK),
            inject(
                11,
                DELIVER,
                Ok(Delivery::Forwarded),
                format!("\r\n+CMT: ,30\r\n{DELIVER}\r\n"),
            ),
            inject(
                12,
                "0011000B",
                Err(InjectError::Pdu(PduError::NotDeliver(1))),
                "",
            ),
        ],
    );
}

#[test]
fn deletion_flags_pick_what_goes() {
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CNMI=2,0\r", OK),
            inject(1, DELIVER, stored(1), ""),
            inject(1, DELIVER, stored(2), ""),
            io(2, "AT+CMGR=1\r", answer(&["+CMGR: 0,,30", DELIVER])),
            // Flag 1: only the read ones.
            io(3, "AT+CMGD=1,1\r", OK),
            io(3, "AT+CMGL=4\r", answer(&["+CMGL: 2,0,,30", DELIVER])),
            io(4, "AT+CMGD=0,4\r", OK),
            io(4, "AT+CMGL=4\r", OK),
        ],
    );
}

#[test]
fn qualcomm_and_huawei_storage_counts_from_zero() {
    check(
        fast(Profile::Ec25),
        &[
            io(
                0,
                "ATE0\r",
                format!(
                    "{}ATE0\r{OK}",
                    ["RDY", "+CPIN: READY", "+QIND: SMS DONE", "+QIND: PB DONE"]
                        .map(urc)
                        .concat()
                ),
            ),
            inject(1, DELIVER, stored(0), urc("+CMTI: \"SM\",0")),
            io(2, "AT+CMGR=0\r", answer(&["+CMGR: 0,,30", DELIVER])),
            io(2, "AT+CMGD=0\r", OK),
            io(2, "AT+CMGR=30\r", cms(321)),
        ],
    );
}

#[test]
fn a_full_storage_refuses_more() {
    let config = ModelConfig {
        storage_capacity: 2,
        ..fast(Profile::Generic)
    };
    check(
        config,
        &[
            quiet(0),
            inject(1, DELIVER, stored(1), urc("+CMTI: \"SM\",1")),
            inject(1, DELIVER, stored(2), urc("+CMTI: \"SM\",2")),
            inject(1, DELIVER, Err(InjectError::StorageFull), ""),
            io(
                2,
                "AT+CPMS?\r",
                answer(&["+CPMS: \"SM\",2,2,\"SM\",2,2,\"SM\",2,2"]),
            ),
            io(3, "AT+CMGD=2\r", OK),
            inject(4, DELIVER, stored(2), urc("+CMTI: \"SM\",2")),
        ],
    );
    // The Huawei stick says so.
    let config = ModelConfig {
        storage_capacity: 1,
        ..fast(Profile::E3372)
    };
    check(
        config,
        &[
            io(
                0,
                "ATE0\r",
                format!(
                    "{}ATE0\r{OK}",
                    ["^BOOT:20392484,0,0,0,72", "^SIMST:1", "^MODE:5,4"]
                        .map(urc)
                        .concat()
                ),
            ),
            inject(1, DELIVER, stored(0), urc("+CMTI: \"SM\",0")),
            inject(
                1,
                DELIVER,
                Err(InjectError::StorageFull),
                urc("^SMMEMFULL: \"SM\""),
            ),
        ],
    );
}

#[test]
fn fault_cms_error_for_next_sends() {
    let mut steps = vec![
        quiet(0),
        set(1, Fault::CmsErrorForNextSends { code: 38, count: 2 }, ""),
    ];
    for (i, result) in [cms(38), cms(38), answer(&["+CMGS: 2"])]
        .into_iter()
        .enumerate()
    {
        let t = 100 * (i as u64 + 1);
        steps.push(io(t, "AT+CMGS=23\r", "\r\n> "));
        steps.push(io(t, ctrl_z(HELLO), ""));
        steps.push(io(t + 20, "", result));
    }
    let modem = check(fast(Profile::Generic), &steps);
    // The refused messages were numbered but not sent; the fault wore off.
    assert_eq!(modem.received().len(), 1);
    assert_eq!(modem.received()[0].mr, 2);
    assert!(modem.faults().is_empty());
}

#[test]
fn fault_no_answer() {
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            set(1, Fault::NoAnswer, ""),
            io(2, "AT\r", ""),
            io(3, "AT+CSQ\r", ""),
            // Not even notifications.
            inject(4, DELIVER, stored(1), ""),
            clear(5, ""),
            io(6, "AT\r", OK),
        ],
    );
}

#[test]
fn fault_garbage() {
    let run_with_seed = |seed: u64| {
        let t0 = Instant::now();
        let config = ModelConfig {
            seed,
            ..fast(Profile::Generic)
        };
        let mut modem = Modem::new(config, t0);
        modem.input(b"ATE0\r", t0);
        modem.set_fault(Fault::Garbage, t0);
        modem.input(b"AT+CSQ\rAT\r", t0);
        modem.input(b"AT+CMGS=23\r", t0);
        modem.input(ctrl_z(HELLO).as_bytes(), t0);
        modem.take_output(t0 + Duration::from_millis(20))
    };
    let out = run_with_seed(7);
    assert!(out.contains(&0), "some NUL bytes");
    assert!(out.iter().any(|&b| b >= 0x80), "some high bytes");
    let clean: Vec<u8> = out
        .iter()
        .copied()
        .filter(|&b| b != 0 && b < 0x80)
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&clean),
        format!(
            "ATE0\r{OK}{}{OK}\r\n> {}",
            answer(&["+CSQ: 21,99"]),
            answer(&["+CMGS: 0"])
        )
    );
    // The garbage comes from the seed: the same seed, the same bytes.
    assert_eq!(run_with_seed(7), out);
    assert_ne!(run_with_seed(8), out);
}

#[test]
fn fault_urc_inside_answer() {
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            set(1, Fault::UrcInsideAnswer, ""),
            // The announcement waits for an answer with information lines...
            inject(2, DELIVER, stored(1), ""),
            io(3, "AT\r", OK),
            // ...and arrives between them and the final result, with some noise.
            io(
                4,
                "AT+CSQ\r",
                format!(
                    "\r\n+CSQ: 21,99\r\n{}{}{OK}",
                    urc("+CMTI: \"SM\",1"),
                    urc("+CIEV: 2,4")
                ),
            ),
            // The +CMGS answer gets one too.
            io(5, "AT+CMGS=23\r", "\r\n> "),
            io(5, ctrl_z(HELLO), ""),
            io(25, "", format!("\r\n+CMGS: 0\r\n{}{OK}", urc("+CIEV: 2,4"))),
            inject(26, DELIVER, stored(2), ""),
            // Clearing the fault lets the held announcement out.
            clear(27, urc("+CMTI: \"SM\",2")),
            io(28, "AT+CSQ\r", answer(&["+CSQ: 21,99"])),
        ],
    );
    // The Huawei stick's noise is its ^RSSI.
    check(
        fast(Profile::E3372),
        &[
            io(
                0,
                "ATE0\r",
                format!(
                    "{}ATE0\r{OK}",
                    ["^BOOT:20392484,0,0,0,72", "^SIMST:1", "^MODE:5,4"]
                        .map(urc)
                        .concat()
                ),
            ),
            set(1, Fault::UrcInsideAnswer, ""),
            io(
                2,
                "AT+CGMI\r",
                format!("\r\nhuawei\r\n{}{OK}", urc("^RSSI:21")),
            ),
        ],
    );
}

#[test]
fn fault_slow_registration() {
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CREG=1\r", OK),
            io(2, "AT+CREG?\r", answer(&["+CREG: 1,1"])),
            // Switched on while registered: the network is lost and searched for.
            set(
                10,
                Fault::SlowRegistration(Duration::from_secs(2)),
                urc("+CREG: 2"),
            ),
            io(20, "AT+CREG?\r", answer(&["+CREG: 1,2"])),
            io(2009, "", ""),
            io(2010, "", urc("+CREG: 1")),
            // It also applies to the next registration.
            io(2020, "AT+CFUN=0\r", format!("{OK}{}", urc("+CREG: 0"))),
            io(2030, "AT+CFUN=1\r", format!("{OK}{}", urc("+CREG: 2"))),
            io(4029, "", ""),
            io(4030, "", urc("+CREG: 1")),
            // Cleared while searching: registration follows the normal delay (0 here).
            io(4040, "AT+CFUN=0\r", format!("{OK}{}", urc("+CREG: 0"))),
            io(4050, "AT+CFUN=1\r", format!("{OK}{}", urc("+CREG: 2"))),
            clear(4060, urc("+CREG: 1")),
        ],
    );
}

#[test]
fn fault_pin_required() {
    let config = ModelConfig {
        pin: Some("1234".to_string()),
        ..fast(Profile::Sim800)
    };
    check(
        config.clone(),
        &[
            io(
                0,
                "ATE0\r",
                format!(
                    "{}ATE0\r{OK}",
                    ["RDY", "+CFUN: 1", "+CPIN: SIM PIN"].map(urc).concat()
                ),
            ),
            io(1, "AT+CPIN?\r", answer(&["+CPIN: SIM PIN"])),
            io(1, "AT+CREG?\r", answer(&["+CREG: 0,0"])),
            io(1, "AT+CMGS=23\r", cms(311)),
            io(1, "AT+CIMI\r", "\r\nERROR\r\n"),
            io(1, "AT+CMEE=1\r", OK),
            io(1, "AT+CIMI\r", cme(11)),
            // The ICCID is readable without the PIN.
            io(1, "AT+CCID\r", answer(&["89001010123456789023"])),
            io(1, "AT+CPIN=\"0000\"\r", cme(16)),
            io(
                1,
                "AT+CPIN=\"1234\"\r",
                format!(
                    "{OK}{}",
                    ["+CPIN: READY", "Call Ready", "SMS Ready"]
                        .map(urc)
                        .concat()
                ),
            ),
            io(2, "AT+CPIN?\r", answer(&["+CPIN: READY"])),
            io(2, "AT+CREG?\r", answer(&["+CREG: 0,1"])),
            // A reset locks the SIM again.
            // (No boot time in this configuration: the boot messages follow the OK.)
            io(
                3,
                "AT+CFUN=1,1\r",
                format!(
                    "{OK}{}",
                    ["RDY", "+CFUN: 1", "+CPIN: SIM PIN"].map(urc).concat()
                ),
            ),
            io(
                4,
                "AT+CPIN?\r",
                format!("AT+CPIN?\r{}", answer(&["+CPIN: SIM PIN"])),
            ),
        ],
    );
    // Three wrong PINs block the SIM.
    check(
        config,
        &[
            io(
                0,
                "ATE0\r",
                format!(
                    "{}ATE0\r{OK}",
                    ["RDY", "+CFUN: 1", "+CPIN: SIM PIN"].map(urc).concat()
                ),
            ),
            io(1, "AT+CMEE=2\r", OK),
            io(
                1,
                "AT+CPIN=\"1\"\r",
                "\r\n+CME ERROR: incorrect password\r\n",
            ),
            io(
                1,
                "AT+CPIN=\"2\"\r",
                "\r\n+CME ERROR: incorrect password\r\n",
            ),
            io(
                1,
                "AT+CPIN=\"3\"\r",
                "\r\n+CME ERROR: incorrect password\r\n",
            ),
            io(1, "AT+CPIN?\r", answer(&["+CPIN: SIM PUK"])),
            io(
                1,
                "AT+CPIN=\"1234\"\r",
                "\r\n+CME ERROR: incorrect password\r\n",
            ),
        ],
    );
    // Switched on while running, the SIM locks now; cleared, it unlocks.
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            set(1, Fault::PinRequired("4321".to_string()), ""),
            io(2, "AT+CPIN?\r", answer(&["+CPIN: SIM PIN"])),
            io(2, "AT+CREG?\r", answer(&["+CREG: 0,0"])),
            io(2, "AT+CPMS?\r", cms(311)),
            clear(3, ""),
            io(4, "AT+CPIN?\r", answer(&["+CPIN: READY"])),
            io(4, "AT+CREG?\r", answer(&["+CREG: 0,1"])),
        ],
    );
}

#[test]
fn fault_no_prompt_on_cmgs() {
    let modem = check(
        fast(Profile::Generic),
        &[
            quiet(0),
            set(1, Fault::NoPromptOnCmgs, ""),
            io(2, "AT+CMGS=23\r", ""),
            // ESC gets the modem back.
            io(502, "\x1b", OK),
            io(503, "AT\r", OK),
            // A client that writes the PDU anyway is still heard.
            io(600, "AT+CMGS=23\r", ""),
            io(600, ctrl_z(HELLO), ""),
            io(620, "", answer(&["+CMGS: 0"])),
        ],
    );
    assert_eq!(modem.received().len(), 1);
}

#[test]
fn fault_no_cmgs_result() {
    let modem = check(
        fast(Profile::Generic),
        &[
            quiet(0),
            set(1, Fault::NoCmgsResult, ""),
            io(2, "AT+CMGS=23\r", "\r\n> "),
            io(2, ctrl_z(HELLO), ""),
            io(5000, "", ""),
            // The message went out; the modem answers other commands.
            io(5001, "AT\r", OK),
        ],
    );
    assert_eq!(modem.received().len(), 1);
}

#[test]
fn notifications_wait_while_a_pdu_is_typed() {
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CMGS=23\r", "\r\n> "),
            inject(2, DELIVER, stored(1), ""),
            io(3, ctrl_z(HELLO), urc("+CMTI: \"SM\",1")),
            io(23, "", answer(&["+CMGS: 0"])),
        ],
    );
}

#[test]
fn sends_fail_without_network() {
    let modem = check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CFUN=4\r", OK),
            io(2, "AT+CMGS=23\r", "\r\n> "),
            io(2, ctrl_z(HELLO), ""),
            io(22, "", cms(331)),
        ],
    );
    assert!(modem.received().is_empty());
}

#[test]
fn the_huawei_stick_is_noisy() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut modem = Modem::new(fast(Profile::E3372), t0);
    modem.input(b"ATE0\r", t0);
    modem.take_output(t0);
    assert_eq!(modem.next_wakeup(), Some(at(1000)));
    let mut lines = Vec::new();
    for s in 1..=12 {
        let out = modem.take_output(at(s * 1000));
        lines.extend(
            String::from_utf8_lossy(&out)
                .split("\r\n")
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
    }
    let rssi: Vec<u8> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("^RSSI:"))
        .map(|v| v.parse().expect("a number"))
        .collect();
    assert_eq!(rssi.len(), 12, "{lines:?}");
    assert!(rssi.iter().all(|r| (10..=28).contains(r)), "{rssi:?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("^BOOT:")).count(), 3);
    assert_eq!(lines.iter().filter(|l| l.starts_with("^MODE:")).count(), 2);
    assert_eq!(lines.len(), 17);

    // An answer composed just before a tick carries the tick inside it.
    modem.input(b"AT+CSQ\r", at(12_900));
    let out = String::from_utf8_lossy(&modem.take_output(at(12_900))).into_owned();
    let csq = rssi.last().copied().unwrap_or_default();
    assert!(
        out.starts_with(&format!("\r\n+CSQ: {csq},99\r\n\r\n^RSSI:")) && out.ends_with(OK),
        "{out:?}"
    );
    // The tick moved: none at 13 s, the next at 13.9 s.
    assert_eq!(modem.next_wakeup(), Some(at(13_900)));
}

/// The model keeps one `<stat>` per domain: a SIM7080 (LTE-M, no CS domain) says `+CREG:
/// 0,0` while `+CGREG`/`+CEREG` say registered (botletics/SIM7000-LTE-Shield issues 50,
/// 103, 150), and an EC25 on an LTE-only network likewise (TinyGSM issue 705).
#[test]
fn registration_is_kept_per_domain() {
    let t0 = Instant::now();
    let mut lte_only = ModelConfig::fast(Profile::Ec25);
    lte_only.lte_only = true;
    for cfg in [ModelConfig::fast(Profile::Sim7080), lte_only] {
        let profile = cfg.profile;
        let mut modem = Modem::new(cfg, t0);
        modem.take_output(t0);
        modem.input(b"ATE0\r", t0);
        modem.take_output(t0);
        for (query, expected) in [
            ("AT+CREG?\r", "+CREG: 0,0"),
            ("AT+CGREG?\r", "+CGREG: 0,1"),
            ("AT+CEREG?\r", "+CEREG: 0,1"),
        ] {
            modem.input(query.as_bytes(), t0);
            let out = String::from_utf8_lossy(&modem.take_output(t0)).into_owned();
            assert_eq!(out, answer(&[expected]), "{profile} {query:?}");
        }
        // Reports in every domain, then the network goes and comes back: the CS domain,
        // never registered, says nothing; the others report each change.
        modem.input(b"AT+CREG=1;+CGREG=1;+CEREG=1\r", t0);
        modem.take_output(t0);
        modem.set_fault(Fault::SlowRegistration(Duration::from_millis(100)), t0);
        let lost = String::from_utf8_lossy(&modem.take_output(t0)).into_owned();
        assert_eq!(
            lost,
            format!("{}{}", urc("+CGREG: 2"), urc("+CEREG: 2")),
            "{profile}"
        );
        let t1 = t0 + Duration::from_millis(200);
        let back = String::from_utf8_lossy(&modem.take_output(t1)).into_owned();
        assert_eq!(
            back,
            format!("{}{}", urc("+CGREG: 1"), urc("+CEREG: 1")),
            "{profile}"
        );
    }
    // A 2G module's CS domain follows the radio.
    let mut sim800 = Modem::new(ModelConfig::fast(Profile::Sim800), t0);
    sim800.take_output(t0);
    sim800.input(b"ATE0\r", t0);
    sim800.take_output(t0);
    sim800.input(b"AT+CREG?\r", t0);
    assert_eq!(
        String::from_utf8_lossy(&sim800.take_output(t0)),
        answer(&["+CREG: 0,1"])
    );
}

/// A SIM without an SMSC refuses a PDU that leaves the SMSC to it with 330, as a Huawei
/// E220 does (tdelenikas/smslib-v3 PR 12; gammu issue 541).
#[test]
fn a_sim_without_smsc_answers_330() {
    let t0 = Instant::now();
    let mut cfg = ModelConfig::fast(Profile::Generic);
    cfg.smsc = String::new();
    let mut modem = Modem::new(cfg, t0);
    modem.take_output(t0);
    modem.input(b"ATE0\r", t0);
    modem.take_output(t0);
    modem.input(b"AT+CSCA?\r", t0);
    assert_eq!(
        String::from_utf8_lossy(&modem.take_output(t0)),
        answer(&["+CSCA: \"\",129"])
    );
    modem.input(b"AT+CMGS=23\r", t0);
    modem.take_output(t0);
    modem.input(ctrl_z(HELLO).as_bytes(), t0);
    let t1 = t0 + Duration::from_millis(100);
    assert_eq!(String::from_utf8_lossy(&modem.take_output(t1)), cms(330));
}

/// Before its SMS service is up a SIM800 answers SMS commands with ERROR
/// (Seeed-Studio/GPRS_SIM900 issue 39); other commands work.
#[test]
fn sms_commands_wait_for_the_sms_service() {
    let t0 = Instant::now();
    let mut cfg = ModelConfig::fast(Profile::Sim800);
    cfg.sms_ready_delay = Duration::from_secs(2);
    let mut modem = Modem::new(cfg, t0);
    modem.take_output(t0);
    modem.input(b"ATE0\r", t0);
    modem.take_output(t0);
    modem.input(b"AT+CMGF=0\r", t0);
    assert_eq!(
        String::from_utf8_lossy(&modem.take_output(t0)),
        "\r\nERROR\r\n"
    );
    modem.input(b"AT+CSQ\r", t0);
    assert!(modem.take_output(t0).ends_with(OK.as_bytes()));
    let t1 = t0 + Duration::from_secs(2);
    modem.input(b"AT+CMGF=0\r", t1);
    assert_eq!(String::from_utf8_lossy(&modem.take_output(t1)), OK);
}

/// A modem that boots into PDU entry answers nothing until ESC, then works.
#[test]
fn a_modem_left_in_pdu_entry_needs_esc() {
    let t0 = Instant::now();
    let mut cfg = ModelConfig::fast(Profile::Generic);
    cfg.pdu_entry_at_boot = true;
    let mut modem = Modem::new(cfg, t0);
    modem.take_output(t0);
    modem.input(b"AT\r", t0);
    assert!(!modem.take_output(t0).ends_with(OK.as_bytes()));
    modem.input(b"\x1b", t0);
    modem.take_output(t0);
    modem.input(b"AT\r", t0);
    assert!(modem.take_output(t0).ends_with(OK.as_bytes()));
}

#[test]
fn a_parts_status_report_can_be_held_back_or_carry_a_failure() {
    // Two 8-bit parts (UDH 05 00 03: reference 1, 2 parts, part n) with TP-SRR set.
    let part = |n: u8| format!("0071000B916407281553F80004AA0805000301020{n}6869");
    let report = |mr: &str, status: &str| {
        let pdu =
            format!("079144775810065006{mr}0B916407281553F85210100000000052101000000000{status}");
        format!("\r\n+CDS: 25\r\n{pdu}\r\n")
    };
    check(
        fast(Profile::Generic),
        &[
            quiet(0),
            io(1, "AT+CNMI=2,1,0,1,0\r", OK),
            set(2, Fault::HoldStatusReport { part: 1 }, ""),
            set(
                3,
                Fault::StatusReportStatus {
                    part: 2,
                    status: 0x41,
                },
                "",
            ),
            io(10, "AT+CMGS=22\r", "\r\n> "),
            io(10, ctrl_z(&part(1)), ""),
            io(30, "", answer(&["+CMGS: 0"])),
            io(40, "AT+CMGS=22\r", "\r\n> "),
            io(40, ctrl_z(&part(2)), ""),
            io(60, "", answer(&["+CMGS: 1"])),
            // Part 1's report fell due at 70 ms and is held; part 2's fails (0x41).
            io(99, "", ""),
            io(100, "", report("01", "41")),
            io(500, "", ""),
            // Clearing releases the held report at once, delivered (0x00).
            clear(600, report("00", "00")),
        ],
    );
}
