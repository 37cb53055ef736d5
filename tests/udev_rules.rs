//! Checks `udev/70-smsbridge-modems.rules` (and the local-rule examples) two ways:
//!
//! 1. syntax: every line is a comment, blank, or comma-separated `KEY[{attr}]OP"value"`
//!    pairs whose key exists in udev(7), whose operator suits the key, whose quotes balance,
//!    and whose GOTOs reach a LABEL further down; USB ids are written as sysfs prints them;
//! 2. behaviour: a small evaluator written here (match keys `==`/`!=` with `*`, `?`, `[]`
//!    and `|` patterns, parent keys that must all match on one parent, assignments `=`,
//!    `+=`, `:=`, GOTO/LABEL, `$env{}`/`$attr{}` substitution, the usb_id and path_id
//!    builtins) runs the rules on a table of simulated devices: the AT port of each listed
//!    modem gets its names, group dialout, mode 0660 and ID_MM_DEVICE_IGNORE=1; the modem's
//!    other ports (diag, NMEA, PPP, audio) and unrelated devices (Arduinos, USB-serial
//!    cables, network interfaces) get nothing.
//!
//! When the installed `udevadm` has a `verify` verb (systemd 253 and later) the files are
//! also checked with it; older versions (Debian 12 has 252) are reported and skipped.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn rules_files_are_well_formed() {
    for name in [
        "70-smsbridge-modems.rules",
        "69-smsbridge-local.rules.example",
    ] {
        let text = read_rules(name);
        if let Err(e) = parse(&text) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn checker_rejects_malformed_rules() {
    for (bad, why) in [
        (r#"FOO=="x""#, "unknown key"),
        (r#"KERNELS="ttyUSB0""#, "assignment to a match-only key"),
        (
            r#"GROUP=="dialout""#,
            "comparison with an assignment-only key",
        ),
        (r#"GOTO=="end""#, "GOTO compared"),
        (r#"ATTRS=="12d1""#, "ATTRS without {attribute}"),
        (r#"KERNEL{x}=="y""#, "KERNEL takes no {attribute}"),
        (r#"KERNEL=="ttyUSB0" SUBSYSTEM=="tty""#, "missing comma"),
        (r#"KERNEL=="ttyUSB0, GROUP="dialout""#, "unbalanced quote"),
        (r#"KERNEL=="ttyUSB0", GROUP=dialout"#, "value not quoted"),
        (r#"KERNEL=<"ttyUSB0""#, "unknown operator"),
        (r#"KERNEL=="ttyUSB0", GOTO="nowhere""#, "GOTO without LABEL"),
        (r#"MODE="660x""#, "mode not octal"),
        (r#"IMPORT{builtins}="usb_id""#, "unknown IMPORT type"),
        (r#"KERNEL=="ttyUSB0","#, "trailing comma"),
    ] {
        assert!(parse(bad).is_err(), "accepted ({why}): {bad}");
    }
    // A GOTO may only jump forward, as in udev.
    assert!(parse("LABEL=\"x\"\nKERNEL==\"a\", GOTO=\"x\"\n").is_err());
    assert!(parse("KERNEL==\"a\", GOTO=\"x\"\nLABEL=\"x\"\n").is_ok());
}

#[test]
fn usb_ids_are_written_as_sysfs_prints_them() {
    // sysfs prints idVendor/idProduct as four lower-case hex digits and bInterfaceNumber as
    // two; "12D1" or "2" would silently never match.
    let rules = parse(&read_rules("70-smsbridge-modems.rules")).expect("parses");
    for rule in &rules {
        for t in &rule.tokens {
            let digits = match (t.key.as_str(), t.attr.as_deref()) {
                ("ATTR" | "ATTRS", Some("idVendor" | "idProduct"))
                | ("ENV", Some("ID_VENDOR_ID" | "ID_MODEL_ID")) => 4,
                ("ENV", Some("ID_USB_INTERFACE_NUM")) => 2,
                _ => continue,
            };
            if matches!(t.op, Op::Match | Op::NoMatch) {
                for alt in t.value.split('|') {
                    assert!(
                        alt.len() == digits
                            && alt
                                .chars()
                                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
                        "line {}: {}={:?} is not {digits} lower-case hex digits",
                        rule.line,
                        t.key,
                        alt
                    );
                }
            }
        }
    }
}

/// One row per port of each supported modem: which interface it is and whether it is the
/// AT port the rules must name.
#[test]
fn each_listed_modem_gets_its_names_and_only_on_its_at_port() {
    let rules = ours();
    let mut checked = 0;
    for (socket, m) in MODEMS.iter().enumerate() {
        for port in m.ports {
            let dev = usb_tty(m.vid, m.pid, port, m.acm, socket as u8 + 1);
            let out = run(&rules, &dev);
            let what = format!("{} {}:{} if{:02x}", m.model, m.vid, m.pid, port.ifnum);
            if port.at {
                let tag = dev.env.get("ID_PATH_TAG").cloned().unwrap_or_default();
                assert_named(&out, m.model, &tag, &what);
                checked += 1;
            } else {
                assert_untouched(&out, &what);
            }
        }
    }
    assert_eq!(
        checked,
        MODEMS.len(),
        "every listed modem has exactly one AT port"
    );
}

#[test]
fn each_listed_modem_is_hidden_from_modemmanager_as_a_whole() {
    let rules = ours();
    for m in MODEMS {
        let out = run(&rules, &usb_device(m.vid, m.pid));
        assert_eq!(
            out.env.get("ID_MM_DEVICE_IGNORE").map(String::as_str),
            Some("1"),
            "{} {}:{}: the USB device lacks ID_MM_DEVICE_IGNORE=1",
            m.model,
            m.vid,
            m.pid
        );
    }
    // Huawei modes reached with usb_modeswitch from HiLink firmware (README.md, "A Huawei stick in HiLink mode"):
    // their port layout is not published, but ModemManager must still keep away.
    for pid in ["155e", "1442"] {
        let out = run(&rules, &usb_device("12d1", pid));
        assert_eq!(
            out.env.get("ID_MM_DEVICE_IGNORE").map(String::as_str),
            Some("1"),
            "12d1:{pid}"
        );
    }
    for &(vid, pid, what) in UNRELATED_USB_DEVICES {
        let out = run(&rules, &usb_device(vid, pid));
        assert_eq!(
            out.env.get("ID_MM_DEVICE_IGNORE"),
            None,
            "{what} {vid}:{pid}"
        );
    }
}

#[test]
fn unrelated_serial_ports_are_left_alone() {
    let rules = ours();
    for &(vid, pid, class, acm, what) in UNRELATED_TTYS {
        let port = Port {
            ifnum: 0,
            class,
            at: false,
        };
        let out = run(&rules, &usb_tty(vid, pid, &port, acm, 2));
        assert_untouched(&out, what);
    }
    // Not USB at all: a Raspberry Pi UART and a network interface of a supported modem.
    assert_untouched(&run(&rules, &platform_tty("ttyAMA0")), "ttyAMA0");
    let mut net = usb_tty(
        "2c7c",
        "0125",
        &Port {
            ifnum: 4,
            class: VS,
            at: false,
        },
        false,
        1,
    );
    net.subsystem = "net".into();
    net.kernel = "wwan0".into();
    assert_untouched(&run(&rules, &net), "EC25 wwan0");
}

/// SIM800 boards sit behind a generic USB-serial bridge; the example local rules name them
/// by socket, by the bridge's serial number, or by UART, and nothing else with the same ids.
#[test]
fn local_rules_name_a_sim800_behind_a_bridge_and_nothing_else() {
    let mut rules = parse(&read_rules("69-smsbridge-local.rules.example")).expect("parses");
    rules.extend(ours());
    let ch340 = Port {
        ifnum: 0,
        class: ("ff", "01", "02"),
        at: true,
    };
    // The example's socket is usb-0:1.3 on a Pi 4.
    let named = usb_tty("1a86", "7523", &ch340, false, 3);
    let tag = named.env["ID_PATH_TAG"].clone();
    assert_named(
        &run(&rules, &named),
        "simcom-sim800",
        &tag,
        "CH340 in the listed socket",
    );
    let other = usb_tty("1a86", "7523", &ch340, false, 2);
    assert_untouched(&run(&rules, &other), "CH340 in another socket");

    let cp2102 = Port {
        ifnum: 0,
        class: ("ff", "00", "00"),
        at: true,
    };
    let mut dev = usb_tty("10c4", "ea60", &cp2102, false, 4);
    dev.env
        .insert("ID_SERIAL_SHORT".into(), "0123456789abcdef".into());
    let tag = dev.env["ID_PATH_TAG"].clone();
    assert_named(
        &run(&rules, &dev),
        "simcom-sim800",
        &tag,
        "CP2102 with its serial",
    );
    dev.env.insert("ID_SERIAL_SHORT".into(), "0001".into());
    assert_untouched(&run(&rules, &dev), "CP2102 with another serial");

    let uart = run(&rules, &platform_tty("ttyS0"));
    assert_named(
        &uart,
        "simcom-sim800",
        "platform-fe215040_serial",
        "SIM800 HAT on ttyS0",
    );
}

#[test]
fn evaluator_follows_udev_semantics() {
    // Parent keys must all match on one parent: idVendor (device) and bInterfaceNumber
    // (interface) never match together, which is why the rules use ID_USB_INTERFACE_NUM.
    let dev = usb_tty(
        "2c7c",
        "0125",
        &Port {
            ifnum: 2,
            class: VS,
            at: true,
        },
        false,
        1,
    );
    let split = parse(
        "ATTRS{idVendor}==\"2c7c\", ATTRS{bInterfaceNumber}==\"02\", SYMLINK+=\"both\"\n\
         ATTRS{idVendor}==\"2c7c\", SYMLINK+=\"vendor\"\n\
         ATTRS{bInterfaceNumber}==\"02\", SYMLINK+=\"iface\"\n",
    )
    .expect("parses");
    assert_eq!(run(&split, &dev).symlinks, ["vendor", "iface"]);

    // Patterns, alternatives, negation, empty values, := and GOTO.
    let rules = parse(
        "KERNEL==\"ttyUSB[0-9]*|ttyACM?\", ENV{A}=\"1\"\n\
         KERNEL!=\"tty*\", ENV{B}=\"1\"\n\
         ENV{MISSING}==\"\", ENV{C}=\"$env{A}-%n-$attr{bInterfaceClass}\"\n\
         GROUP:=\"first\"\n\
         GROUP=\"second\"\n\
         GOTO=\"skip\"\n\
         SYMLINK+=\"never\"\n\
         LABEL=\"skip\"\n\
         KERNEL==\"[!t]*\", SYMLINK+=\"never-either\"\n",
    )
    .expect("parses");
    let out = run(&rules, &dev);
    assert_eq!(out.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(out.env.get("B"), None);
    assert_eq!(out.env.get("C").map(String::as_str), Some("1-2-"));
    assert_eq!(out.group.as_deref(), Some("first"));
    assert!(out.symlinks.is_empty());
}

#[test]
fn udevadm_verify_accepts_the_rules_when_available() {
    let help = Command::new("udevadm").args(["verify", "--help"]).output();
    match help {
        Ok(out) if out.status.success() => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("udev");
            // Syntax and semantic errors fail the test; style remarks (systemd 254 and later
            // report them and exit non-zero unless told not to) are left to the built-in
            // checker above, since no udevadm with that check was available to write them
            // against.
            let mut args = vec!["verify", "--resolve-names=never"];
            if String::from_utf8_lossy(&out.stdout).contains("--no-style") {
                args.push("--no-style");
            }
            let out = Command::new("udevadm")
                .args(&args)
                .arg(dir.join("70-smsbridge-modems.rules"))
                .arg(dir.join("69-smsbridge-local.rules.example"))
                .output()
                .expect("run udevadm verify");
            assert!(
                out.status.success(),
                "udevadm verify:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(_) => eprintln!(
            "note: this udevadm has no `verify` verb (it came with systemd 253); \
             only the built-in syntax check ran"
        ),
        Err(_) => eprintln!("note: udevadm is not installed; only the built-in syntax check ran"),
    }
}

// ---------------------------------------------------------------------------------------
// The device table.

/// A USB interface: its number, its class/subclass/protocol, and whether it is the AT port.
struct Port {
    ifnum: u8,
    class: Class,
    at: bool,
}

struct Modem {
    model: &'static str,
    vid: &'static str,
    pid: &'static str,
    /// cdc_acm (ttyACM) rather than a usb-serial driver (ttyUSB).
    acm: bool,
    ports: &'static [Port],
}

/// A USB interface's class, subclass and protocol, as sysfs prints them.
type Class = (&'static str, &'static str, &'static str);

/// Vendor-specific interface class, as option/qcserial devices use on every port.
const VS: Class = ("ff", "ff", "ff");
const ACM: Class = ("02", "02", "01");

const fn p(ifnum: u8, at: bool) -> Port {
    Port {
        ifnum,
        class: VS,
        at,
    }
}
const fn c(ifnum: u8, class: Class, at: bool) -> Port {
    Port { ifnum, class, at }
}

/// Quectel-style layout: 0 diag, 1 NMEA, 2 AT, 3 PPP.
const QUECTEL: &[Port] = &[p(0, false), p(1, false), p(2, true), p(3, false)];
/// Sierra QCSERIAL_SWI layout: 0 diag, 2 NMEA, 3 AT.
const SIERRA: &[Port] = &[p(0, false), p(2, false), p(3, true)];
/// u-blox ACM functions: 0 primary AT, 2 and 4 further AT ports, 6 GNSS, 8 SAP, 10 log.
const UBLOX: &[Port] = &[
    c(0, ACM, true),
    c(2, ACM, false),
    c(4, ACM, false),
    c(6, ACM, false),
    c(8, ACM, false),
    c(10, ACM, false),
];

#[rustfmt::skip]
const MODEMS: &[Modem] = &[
    // Huawei E3372 in stick mode, four published layouts of 12d1:1506.
    Modem { model: "huawei-1506", vid: "12d1", pid: "1506", acm: false,
        ports: &[c(0, ("ff", "02", "12"), true)] },
    Modem { model: "huawei-1506", vid: "12d1", pid: "1506", acm: false,
        ports: &[c(0, ("ff", "03", "10"), false), c(1, ("ff", "03", "12"), true)] },
    Modem { model: "huawei-1506", vid: "12d1", pid: "1506", acm: false,
        ports: &[c(0, ("ff", "01", "01"), false), c(3, ("ff", "01", "03"), false), c(4, ("ff", "01", "02"), true)] },
    Modem { model: "huawei-1506", vid: "12d1", pid: "1506", acm: false,
        ports: &[c(0, ("ff", "03", "01"), false), c(2, ("ff", "03", "03"), false), c(3, ("ff", "03", "02"), true)] },
    // Huawei E1750 (12d1:1001): modem, diag, PCUI.
    Modem { model: "huawei-e1750", vid: "12d1", pid: "1001", acm: false,
        ports: &[p(0, false), p(1, false), p(2, true)] },
    Modem { model: "huawei-e1750", vid: "12d1", pid: "1406", acm: false,
        ports: &[p(0, true), p(1, false)] },
    // Huawei E173 variants: the modem port at interface 0.
    Modem { model: "huawei-e173", vid: "12d1", pid: "1436", acm: false,
        ports: &[p(0, true), p(3, false), p(4, false)] },
    Modem { model: "huawei-e173", vid: "12d1", pid: "140c", acm: false,
        ports: &[p(0, true), p(2, false), p(3, false)] },
    Modem { model: "huawei-e173", vid: "12d1", pid: "1c07", acm: false,
        ports: &[p(0, true), p(2, false)] },
    // SIMCom SIM7600: diag, NMEA, AT, PPP, audio; and the RNDIS composition.
    Modem { model: "simcom-sim7600", vid: "1e0e", pid: "9001", acm: false,
        ports: &[p(0, false), p(1, false), p(2, true), p(3, false), p(4, false)] },
    Modem { model: "simcom-sim7600", vid: "1e0e", pid: "9011", acm: false,
        ports: &[p(2, false), p(3, false), p(4, true), p(5, false), p(6, false)] },
    Modem { model: "quectel-ec25", vid: "2c7c", pid: "0125", acm: false, ports: QUECTEL },
    Modem { model: "quectel-ec21", vid: "2c7c", pid: "0121", acm: false, ports: QUECTEL },
    Modem { model: "quectel-bg96", vid: "2c7c", pid: "0296", acm: false, ports: QUECTEL },
    Modem { model: "quectel-eg91", vid: "2c7c", pid: "0191", acm: false, ports: QUECTEL },
    Modem { model: "quectel-eg95", vid: "2c7c", pid: "0195", acm: false, ports: QUECTEL },
    Modem { model: "quectel-ec20", vid: "05c6", pid: "9215", acm: false, ports: QUECTEL },
    Modem { model: "zte-mf622", vid: "19d2", pid: "0001", acm: false,
        ports: &[p(0, true), p(1, false), p(2, false)] },
    Modem { model: "zte-mf628", vid: "19d2", pid: "0015", acm: false,
        ports: &[p(0, false), p(1, true), p(3, false)] },
    Modem { model: "zte-mf626", vid: "19d2", pid: "0031", acm: false,
        ports: &[p(0, false), p(1, false), p(3, true)] },
    Modem { model: "zte-mf190", vid: "19d2", pid: "0117", acm: false,
        ports: &[p(0, false), p(1, false), p(2, true)] },
    Modem { model: "zte-mf190", vid: "19d2", pid: "0124", acm: false,
        ports: &[p(0, false), p(1, false), p(3, false), p(4, true)] },
    Modem { model: "sierra-mc7304", vid: "1199", pid: "68c0", acm: false, ports: SIERRA },
    Modem { model: "sierra-mc7305", vid: "1199", pid: "9041", acm: false, ports: SIERRA },
    Modem { model: "sierra-mc7710", vid: "1199", pid: "68a2", acm: false, ports: SIERRA },
    Modem { model: "sierra-mc7455", vid: "1199", pid: "9071", acm: false, ports: SIERRA },
    Modem { model: "sierra-em7455", vid: "1199", pid: "9079", acm: false, ports: SIERRA },
    Modem { model: "sierra-em7565", vid: "1199", pid: "9091", acm: false, ports: SIERRA },
    Modem { model: "ublox-sara-u2", vid: "1546", pid: "1102", acm: true, ports: UBLOX },
    Modem { model: "ublox-sara-u2", vid: "1546", pid: "1104", acm: true,
        ports: &[c(0, ACM, true), c(2, ACM, false), c(4, ACM, false), c(6, ACM, false)] },
    Modem { model: "ublox-toby-r2", vid: "1546", pid: "1107", acm: true, ports: UBLOX },
    Modem { model: "ublox-lara-r2", vid: "1546", pid: "110a", acm: true, ports: UBLOX },
    Modem { model: "ublox-lara-r6", vid: "05c6", pid: "908b", acm: false,
        ports: &[p(0, false), p(1, true), p(2, false), p(3, false)] },
];

/// Serial ports of devices that are not modems smsbridge knows, with the interface class
/// their USB descriptors report.
const UNRELATED_TTYS: &[(&str, &str, Class, bool, &str)] = &[
    (
        "1a86",
        "7523",
        ("ff", "01", "02"),
        false,
        "CH340 USB-serial (ff/01/02, like a Huawei PCUI)",
    ),
    (
        "10c4",
        "ea60",
        ("ff", "00", "00"),
        false,
        "CP2102 USB-serial",
    ),
    ("0403", "6001", ("ff", "ff", "ff"), false, "FTDI FT232R"),
    ("067b", "2303", ("ff", "00", "00"), false, "PL2303"),
    ("2341", "0043", ("02", "02", "01"), true, "Arduino Uno"),
    (
        "1546",
        "01a8",
        ("02", "02", "00"),
        true,
        "u-blox GNSS receiver",
    ),
    (
        "12d1",
        "1001",
        ("ff", "ff", "ff"),
        false,
        "Huawei E1750 modem port (if00)",
    ),
];

const UNRELATED_USB_DEVICES: &[(&str, &str, &str)] = &[
    ("1a86", "7523", "CH340"),
    ("12d1", "14dc", "Huawei E3372 in HiLink mode"),
    ("12d1", "1f01", "Huawei E3372 in mass-storage mode"),
    ("2341", "0043", "Arduino Uno"),
];

fn ours() -> Vec<Rule> {
    parse(&read_rules("70-smsbridge-modems.rules")).expect("70-smsbridge-modems.rules parses")
}

fn read_rules(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("udev")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn assert_named(out: &Outcome, model: &str, path_tag: &str, what: &str) {
    let want = [
        "gsm-modem0".to_string(),
        format!("gsm-{model}"),
        format!("gsm-by-path/{path_tag}"),
    ];
    assert_eq!(out.symlinks, want, "{what}: symlinks");
    assert_eq!(out.group.as_deref(), Some("dialout"), "{what}: group");
    assert_eq!(out.mode.as_deref(), Some("0660"), "{what}: mode");
    assert_eq!(
        out.env.get("ID_MM_DEVICE_IGNORE").map(String::as_str),
        Some("1"),
        "{what}: ID_MM_DEVICE_IGNORE"
    );
    assert_eq!(
        out.env.get("SMSBRIDGE_MODEM").map(String::as_str),
        Some(model),
        "{what}: SMSBRIDGE_MODEM"
    );
}

fn assert_untouched(out: &Outcome, what: &str) {
    assert!(
        out.symlinks.is_empty(),
        "{what}: got symlinks {:?}",
        out.symlinks
    );
    assert_eq!(out.group, None, "{what}: group");
    assert_eq!(out.mode, None, "{what}: mode");
    assert_eq!(
        out.env.get("ID_MM_DEVICE_IGNORE"),
        None,
        "{what}: ID_MM_DEVICE_IGNORE"
    );
    assert_eq!(
        out.env.get("SMSBRIDGE_MODEM"),
        None,
        "{what}: SMSBRIDGE_MODEM"
    );
}

/// The tty of one interface of a USB device in socket `1.<socket>` of a Raspberry Pi 4, with
/// the properties 60-serial.rules (usb_id, path_id) has already set when our rules run.
fn usb_tty(vid: &str, pid: &str, port: &Port, acm: bool, socket: u8) -> Device {
    let usb_path = format!("1-1.{socket}");
    let iface = format!("{usb_path}:1.{}", port.ifnum);
    let kernel = if acm {
        format!("ttyACM{}", port.ifnum)
    } else {
        format!("ttyUSB{}", port.ifnum)
    };
    let id_path = format!(
        "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.{socket}:1.{}",
        port.ifnum
    );
    let id_path_tag: String = id_path
        .chars()
        .map(|c| if c == ':' || c == '.' { '_' } else { c })
        .collect();
    let ifnum = format!("{:02x}", port.ifnum);
    let driver = if acm { "cdc_acm" } else { "option" };

    let usb_id: BTreeMap<String, String> = [
        ("ID_BUS", "usb"),
        ("ID_VENDOR_ID", vid),
        ("ID_MODEL_ID", pid),
        ("ID_USB_INTERFACE_NUM", ifnum.as_str()),
        ("ID_USB_DRIVER", driver),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let path_id: BTreeMap<String, String> = [
        ("ID_PATH".to_string(), id_path),
        ("ID_PATH_TAG".to_string(), id_path_tag),
    ]
    .into();

    let mut parents = Vec::new();
    if !acm {
        parents.push(Parent {
            subsystem: "usb-serial".into(),
            kernel: kernel.clone(),
            driver: Some(driver.into()),
            attrs: [("port_number".to_string(), "0".to_string())].into(),
        });
    }
    parents.push(Parent {
        subsystem: "usb".into(),
        kernel: iface,
        driver: Some(driver.into()),
        attrs: [
            ("bInterfaceNumber", ifnum.as_str()),
            ("bInterfaceClass", port.class.0),
            ("bInterfaceSubClass", port.class.1),
            ("bInterfaceProtocol", port.class.2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    });
    parents.push(Parent {
        subsystem: "usb".into(),
        kernel: usb_path,
        driver: Some("usb".into()),
        attrs: [
            ("idVendor", vid),
            ("idProduct", pid),
            ("bConfigurationValue", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    });

    let mut env = usb_id.clone();
    env.extend(path_id.clone());
    Device {
        subsystem: "tty".into(),
        kernel,
        driver: None,
        attrs: BTreeMap::new(),
        env,
        parents,
        builtins: [
            ("usb_id".to_string(), usb_id),
            ("path_id".to_string(), path_id),
        ]
        .into(),
    }
}

/// The uevent of the USB device itself (DEVTYPE=usb_device).
fn usb_device(vid: &str, pid: &str) -> Device {
    Device {
        subsystem: "usb".into(),
        kernel: "1-1.3".into(),
        driver: Some("usb".into()),
        attrs: [("idVendor", vid), ("idProduct", pid)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        env: [("DEVTYPE".to_string(), "usb_device".to_string())].into(),
        parents: Vec::new(),
        builtins: BTreeMap::new(),
    }
}

/// A UART of the Raspberry Pi 4 (no USB parent, so no usb_id properties).
fn platform_tty(kernel: &str) -> Device {
    let path_id: BTreeMap<String, String> = [
        (
            "ID_PATH".to_string(),
            "platform-fe215040.serial".to_string(),
        ),
        (
            "ID_PATH_TAG".to_string(),
            "platform-fe215040_serial".to_string(),
        ),
    ]
    .into();
    Device {
        subsystem: "tty".into(),
        kernel: kernel.into(),
        driver: None,
        attrs: BTreeMap::new(),
        env: BTreeMap::new(),
        parents: vec![Parent {
            subsystem: "platform".into(),
            kernel: "fe215040.serial".into(),
            driver: Some("serial8250".into()),
            attrs: BTreeMap::new(),
        }],
        builtins: [("path_id".to_string(), path_id)].into(),
    }
}

// ---------------------------------------------------------------------------------------
// The syntax checker.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Match,
    NoMatch,
    Assign,
    Add,
    Remove,
    AssignFinal,
}

#[derive(Debug, Clone)]
struct Token {
    key: String,
    attr: Option<String>,
    op: Op,
    value: String,
}

#[derive(Debug, Clone)]
struct Rule {
    line: usize,
    tokens: Vec<Token>,
}

/// How udev(7) lets a key be used.
#[derive(PartialEq, Eq)]
enum Kind {
    MatchOnly,
    AssignOnly,
    Both,
}

/// (kind, attribute: None = forbidden, Some(true) = required, Some(false) = optional)
fn key_kind(key: &str) -> Option<(Kind, Option<bool>)> {
    use Kind::*;
    Some(match key {
        "ACTION" | "DEVPATH" | "KERNEL" | "KERNELS" | "SUBSYSTEM" | "SUBSYSTEMS" | "DRIVER"
        | "DRIVERS" | "TAGS" | "PROGRAM" | "RESULT" => (MatchOnly, None),
        "ATTRS" | "CONST" => (MatchOnly, Some(true)),
        "TEST" => (MatchOnly, Some(false)),
        "OWNER" | "GROUP" | "MODE" | "LABEL" | "GOTO" | "OPTIONS" => (AssignOnly, None),
        "SECLABEL" | "IMPORT" => (AssignOnly, Some(true)),
        "RUN" => (AssignOnly, Some(false)),
        "NAME" | "SYMLINK" | "TAG" => (Both, None),
        "ENV" | "ATTR" | "SYSCTL" => (Both, Some(true)),
        _ => return None,
    })
}

fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    let mut pending = String::new();
    let mut first_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if pending.is_empty() {
            first_line = line_no;
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
        }
        // A backslash at the end continues the rule on the next line.
        if let Some(head) = raw.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(raw);
        let tokens =
            parse_line(&pending).map_err(|e| format!("line {first_line}: {e}: {pending}"))?;
        rules.push(Rule {
            line: first_line,
            tokens,
        });
        pending.clear();
    }
    if !pending.is_empty() {
        return Err(format!("line {first_line}: continuation at end of file"));
    }
    // Every GOTO must find its LABEL further down (udev only jumps forward).
    for (i, rule) in rules.iter().enumerate() {
        for t in rule.tokens.iter().filter(|t| t.key == "GOTO") {
            let found = rules[i + 1..].iter().any(|r| {
                r.tokens
                    .iter()
                    .any(|l| l.key == "LABEL" && l.value == t.value)
            });
            if !found {
                return Err(format!(
                    "line {}: GOTO=\"{}\" has no LABEL below it",
                    rule.line, t.value
                ));
            }
        }
    }
    Ok(rules)
}

fn parse_line(line: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = line.trim();
    loop {
        let key_len = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(rest.len());
        if key_len == 0 {
            return Err("expected a key".into());
        }
        let key = &rest[..key_len];
        rest = &rest[key_len..];
        let attr = if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}').ok_or("unclosed {")?;
            let attr = &after[..end];
            if attr.is_empty() || attr.contains(['"', ' ', ',']) {
                return Err(format!("bad attribute {{{attr}}}"));
            }
            rest = &after[end + 1..];
            Some(attr.to_string())
        } else {
            None
        };
        let (op, op_len) = if rest.starts_with("==") {
            (Op::Match, 2)
        } else if rest.starts_with("!=") {
            (Op::NoMatch, 2)
        } else if rest.starts_with("+=") {
            (Op::Add, 2)
        } else if rest.starts_with("-=") {
            (Op::Remove, 2)
        } else if rest.starts_with(":=") {
            (Op::AssignFinal, 2)
        } else if rest.starts_with('=') {
            (Op::Assign, 1)
        } else {
            return Err(format!("unknown operator after {key}"));
        };
        rest = &rest[op_len..];
        let body = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("value of {key} is not quoted"))?;
        let end = body
            .find('"')
            .ok_or_else(|| format!("unbalanced quote in the value of {key}"))?;
        let value = body[..end].to_string();
        rest = &body[end + 1..];
        check_token(key, attr.as_deref(), op, &value)?;
        tokens.push(Token {
            key: key.to_string(),
            attr,
            op,
            value,
        });

        let after = rest.trim_start();
        if after.is_empty() {
            return Ok(tokens);
        }
        let next = after
            .strip_prefix(',')
            .ok_or("pairs must be separated by commas")?;
        rest = next.trim_start();
        if rest.is_empty() {
            return Err("trailing comma".into());
        }
    }
}

fn check_token(key: &str, attr: Option<&str>, op: Op, value: &str) -> Result<(), String> {
    let (kind, attr_rule) = key_kind(key).ok_or_else(|| format!("unknown key {key}"))?;
    match (attr_rule, attr) {
        (None, Some(a)) => return Err(format!("{key} takes no {{{a}}}")),
        (Some(true), None) => return Err(format!("{key} needs an {{attribute}}")),
        _ => {}
    }
    let is_match = matches!(op, Op::Match | Op::NoMatch);
    match kind {
        Kind::MatchOnly if !is_match => return Err(format!("{key} can only be compared")),
        Kind::AssignOnly if is_match => return Err(format!("{key} can only be assigned")),
        _ => {}
    }
    if matches!(key, "LABEL" | "GOTO" | "IMPORT") && op != Op::Assign {
        return Err(format!("{key} takes only ="));
    }
    if key == "IMPORT"
        && !matches!(
            attr,
            Some("program" | "builtin" | "file" | "db" | "cmdline" | "parent")
        )
    {
        return Err(format!("unknown IMPORT type {attr:?}"));
    }
    if key == "MODE"
        && !(value.len() <= 4
            && !value.is_empty()
            && value.chars().all(|c| ('0'..='7').contains(&c)))
    {
        return Err(format!("MODE {value:?} is not octal"));
    }
    if matches!(key, "LABEL" | "GOTO") && value.is_empty() {
        return Err(format!("empty {key}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The evaluator.

struct Parent {
    subsystem: String,
    kernel: String,
    driver: Option<String>,
    attrs: BTreeMap<String, String>,
}

struct Device {
    subsystem: String,
    kernel: String,
    driver: Option<String>,
    attrs: BTreeMap<String, String>,
    /// The properties as they stand when the first rule runs.
    env: BTreeMap<String, String>,
    /// Parents from the nearest up.
    parents: Vec<Parent>,
    /// What IMPORT{builtin}="name" adds for this device (absent: the builtin finds nothing).
    builtins: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Default)]
struct Outcome {
    env: BTreeMap<String, String>,
    symlinks: Vec<String>,
    group: Option<String>,
    mode: Option<String>,
}

/// Runs `rules` (already concatenated in the order udev would read them) for an "add" event.
fn run(rules: &[Rule], dev: &Device) -> Outcome {
    let mut out = Outcome {
        env: dev.env.clone(),
        ..Outcome::default()
    };
    let mut final_keys: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < rules.len() {
        let rule = &rules[i];
        i += 1;
        let Some(parent) = matches(rule, dev, &out.env) else {
            continue;
        };
        for t in &rule.tokens {
            if matches!(t.op, Op::Match | Op::NoMatch) {
                continue;
            }
            let value = substitute(&t.value, dev, parent, &out.env)
                .unwrap_or_else(|e| panic!("line {}: {e}", rule.line));
            let key = t.key.as_str();
            if final_keys.contains(&key) {
                continue;
            }
            if t.op == Op::AssignFinal {
                final_keys.push(match key {
                    "GROUP" => "GROUP",
                    "MODE" => "MODE",
                    "SYMLINK" => "SYMLINK",
                    other => panic!("line {}: := on {other} is not modelled", rule.line),
                });
            }
            match key {
                "ENV" => {
                    let name = t.attr.clone().unwrap_or_default();
                    if value.is_empty() {
                        out.env.remove(&name);
                    } else {
                        out.env.insert(name, value);
                    }
                }
                "GROUP" => out.group = Some(value),
                "MODE" => out.mode = Some(value),
                "SYMLINK" => {
                    if matches!(t.op, Op::Assign | Op::AssignFinal) {
                        out.symlinks.clear();
                    }
                    out.symlinks
                        .extend(value.split_whitespace().map(str::to_string));
                }
                "IMPORT" => match (t.attr.as_deref(), value.as_str()) {
                    (Some("builtin"), "usb_id" | "path_id") => {
                        if let Some(props) = dev.builtins.get(&value) {
                            out.env.extend(props.clone());
                        }
                    }
                    other => panic!("line {}: IMPORT {other:?} is not modelled", rule.line),
                },
                "GOTO" => {
                    let target = rules[i..]
                        .iter()
                        .position(|r| {
                            r.tokens
                                .iter()
                                .any(|l| l.key == "LABEL" && l.value == value)
                        })
                        .unwrap_or_else(|| panic!("line {}: no LABEL {value}", rule.line));
                    i += target;
                }
                "LABEL" | "TAG" | "OPTIONS" | "RUN" => {}
                other => panic!("line {}: assignment to {other} is not modelled", rule.line),
            }
        }
    }
    out
}

/// Whether every match key of `rule` holds. On success, returns the parent the parent keys
/// (KERNELS, SUBSYSTEMS, DRIVERS, ATTRS) matched on, for $attr{} lookups.
fn matches<'d>(
    rule: &Rule,
    dev: &'d Device,
    env: &BTreeMap<String, String>,
) -> Option<Option<&'d Parent>> {
    let mut parent_keys = Vec::new();
    for t in rule
        .tokens
        .iter()
        .filter(|t| matches!(t.op, Op::Match | Op::NoMatch))
    {
        let actual: Option<String> = match t.key.as_str() {
            "ACTION" => Some("add".into()),
            "KERNEL" => Some(dev.kernel.clone()),
            "SUBSYSTEM" => Some(dev.subsystem.clone()),
            "DRIVER" => dev.driver.clone(),
            "ATTR" => dev
                .attrs
                .get(t.attr.as_deref().unwrap_or_default())
                .cloned(),
            "ENV" => env.get(t.attr.as_deref().unwrap_or_default()).cloned(),
            "KERNELS" | "SUBSYSTEMS" | "DRIVERS" | "ATTRS" => {
                parent_keys.push(t);
                continue;
            }
            other => panic!("line {}: matching on {other} is not modelled", rule.line),
        };
        if !compare(t, actual.as_deref()) {
            return None;
        }
    }
    if parent_keys.is_empty() {
        return Some(None);
    }
    // udev walks up from the device itself; all parent keys must hold on one device.
    let itself = Parent {
        subsystem: dev.subsystem.clone(),
        kernel: dev.kernel.clone(),
        driver: dev.driver.clone(),
        attrs: dev.attrs.clone(),
    };
    if parent_keys
        .iter()
        .all(|t| compare(t, parent_value(&itself, t).as_deref()))
    {
        return Some(None);
    }
    dev.parents
        .iter()
        .find(|p| {
            parent_keys
                .iter()
                .all(|t| compare(t, parent_value(p, t).as_deref()))
        })
        .map(Some)
}

fn parent_value(p: &Parent, t: &Token) -> Option<String> {
    match t.key.as_str() {
        "KERNELS" => Some(p.kernel.clone()),
        "SUBSYSTEMS" => Some(p.subsystem.clone()),
        "DRIVERS" => p.driver.clone(),
        "ATTRS" => p.attrs.get(t.attr.as_deref().unwrap_or_default()).cloned(),
        _ => None,
    }
}

fn compare(t: &Token, actual: Option<&str>) -> bool {
    let hit = match actual {
        // A missing ATTRS/DRIVER never matches, not even "" or "*"; a missing ENV is "".
        None if t.key == "ENV" => pattern_matches(&t.value, ""),
        None => false,
        Some(a) => pattern_matches(&t.value, a),
    };
    if t.op == Op::Match {
        hit
    } else {
        !hit && (actual.is_some() || t.key == "ENV")
    }
}

/// udev patterns: alternatives separated by `|`, each a shell glob.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    pattern
        .split('|')
        .any(|alt| glob(alt.as_bytes(), text.as_bytes()))
}

fn glob(p: &[u8], t: &[u8]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some((b'*', rest)) => (0..=t.len()).any(|i| glob(rest, &t[i..])),
        Some((b'?', rest)) => !t.is_empty() && glob(rest, &t[1..]),
        Some((b'[', rest)) => {
            let Some(close) = rest.iter().skip(1).position(|&b| b == b']').map(|i| i + 1) else {
                return t.first() == Some(&b'[') && glob(rest, &t[1..]);
            };
            let Some((&c, t_rest)) = t.split_first() else {
                return false;
            };
            let (negate, set) = match rest[..close].split_first() {
                Some((b'!' | b'^', set)) => (true, set),
                _ => (false, &rest[..close]),
            };
            let mut hit = false;
            let mut j = 0;
            while j < set.len() {
                if j + 2 < set.len() && set[j + 1] == b'-' {
                    hit |= set[j] <= c && c <= set[j + 2];
                    j += 3;
                } else {
                    hit |= set[j] == c;
                    j += 1;
                }
            }
            hit != negate && glob(&rest[close + 1..], t_rest)
        }
        Some((&b, rest)) => t.first() == Some(&b) && glob(rest, &t[1..]),
    }
}

/// `$env{KEY}`, `$attr{file}`, `%n`/`$number`, `%k`/`$kernel`, `%%` and `$$`.
fn substitute(
    value: &str,
    dev: &Device,
    parent: Option<&Parent>,
    env: &BTreeMap<String, String>,
) -> Result<String, String> {
    let number: String = {
        let digits = dev.kernel.len()
            - dev
                .kernel
                .trim_end_matches(|c: char| c.is_ascii_digit())
                .len();
        dev.kernel[dev.kernel.len() - digits..].to_string()
    };
    let mut out = String::new();
    let mut rest = value;
    while let Some(pos) = rest.find(['$', '%']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let (text, used) = if let Some(body) = tail.strip_prefix("$env{") {
            let end = body.find('}').ok_or("unclosed $env{")?;
            (
                env.get(&body[..end]).cloned().unwrap_or_default(),
                5 + end + 1,
            )
        } else if let Some(body) = tail.strip_prefix("$attr{") {
            let end = body.find('}').ok_or("unclosed $attr{")?;
            let name = &body[..end];
            let v = dev
                .attrs
                .get(name)
                .or_else(|| parent.and_then(|p| p.attrs.get(name)));
            (v.cloned().unwrap_or_default(), 6 + end + 1)
        } else if tail.starts_with("%n") {
            (number.clone(), 2)
        } else if tail.starts_with("$number") {
            (number.clone(), 7)
        } else if tail.starts_with("%k") {
            (dev.kernel.clone(), 2)
        } else if tail.starts_with("$kernel") {
            (dev.kernel.clone(), 7)
        } else if tail.starts_with("%%") || tail.starts_with("$$") {
            (tail[..1].to_string(), 2)
        } else {
            return Err(format!("substitution not modelled in {value:?}"));
        };
        out.push_str(&text);
        rest = &tail[used..];
    }
    out.push_str(rest);
    Ok(out)
}
