//! Cross-check of the SMS codec against Gammu (Debian's python3-gammu), a decoder and
//! encoder nobody here wrote, over texts in many scripts and at every part boundary.
//!
//! Both directions: PDUs smsbridge encodes are decoded by Gammu (scripts/crosscheck.py
//! `check` says exactly what is compared), and PDUs Gammu encodes (SMS-SUBMIT and
//! SMS-DELIVER) are decoded by smsbridge. Run with `-- --nocapture` to see the report.
//! National language shift tables are left out: Gammu does not implement them (it reads
//! IEI 0x24/0x25 texts with the default alphabet).

use std::io::Write as _;
use std::process::Command;

use smsbridge::sms::{
    Pdu, PhoneNumber, SubmitOptions, TextEncoding, UserDataHeader, decode_hex, decode_pdu,
    encode_submit, plan,
};

const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/crosscheck.py");
const NUMBER: &str = "+4915123456789";

struct Case {
    name: String,
    text: String,
    wide: bool,
}

fn case(name: impl Into<String>, text: impl Into<String>) -> Case {
    Case {
        name: name.into(),
        text: text.into(),
        wide: false,
    }
}

fn wide(name: impl Into<String>, text: impl Into<String>) -> Case {
    Case {
        name: name.into(),
        text: text.into(),
        wide: true,
    }
}

/// `len` characters cycled from `pattern`.
fn cycle(pattern: &str, len: usize) -> String {
    pattern.chars().cycle().take(len).collect()
}

fn cases() -> Vec<Case> {
    let templates = [
        (
            "latin-gsm",
            "Dein Bestätigungscode lautet 4821. Gib ihn nicht weiter. Gültig für 10 Minuten. Å bientôt?",
        ),
        (
            "latin-accents",
            "Votre code de vérification est 4821. Ne le partagez avec personne. Ça expire à 12 h — merci.",
        ),
        (
            "latin-spanish",
            "Tu código de verificación es 4821. No lo compartas con nadie. Válido por 10 minutos.",
        ),
        (
            "gsm-extension",
            "Code: {4821} [expires] ~10 min | costs €5 ^ back\\slash \u{0C}page",
        ),
        (
            "greek",
            "Ο κωδικός επαλήθευσης είναι 4821. Μην τον κοινοποιήσετε σε κανέναν.",
        ),
        ("greek-gsm", "ΔΦΓΛΩΠΨΣΘΞ 4821"),
        (
            "cyrillic",
            "Ваш код подтверждения: 4821. Никому его не сообщайте. Код действует 10 минут.",
        ),
        (
            "arabic",
            "رمز التحقق الخاص بك هو 4821. لا تشاركه مع أي شخص. صالح لمدة 10 دقائق.",
        ),
        (
            "hebrew",
            "קוד האימות שלך הוא 4821. אל תשתף אותו עם אף אחד. בתוקף ל-10 דקות.",
        ),
        (
            "devanagari",
            "आपका सत्यापन कोड 4821 है। इसे किसी के साथ साझा न करें। यह 10 मिनट के लिए मान्य है।",
        ),
        ("thai", "รหัสยืนยันของคุณคือ 4821 ห้ามแชร์รหัสนี้กับผู้อื่น รหัสมีอายุ 10 นาที"),
        (
            "chinese",
            "您的验证码是4821。请勿与任何人分享。验证码10分钟内有效。",
        ),
        (
            "japanese",
            "認証コードは4821です。誰にも教えないでください。有効期限は10分です。",
        ),
        (
            "korean",
            "인증 코드는 4821입니다. 다른 사람과 공유하지 마세요. 10분간 유효합니다.",
        ),
        ("cyrillic-tilde", "Код~4821~ действует ~10 минут ~"),
        (
            "emoji",
            "Your code 4821 🔐 family 👨‍👩‍👧‍👦 flags 🇩🇪🇫🇷🇯🇵 skin tone 👍🏽 heart ❤️ rainbow flag 🏳️‍🌈",
        ),
    ];
    let mut cases = Vec::new();
    // Every character of the default alphabet (the escape aside) and of its extension
    // table, so each mapping is compared one by one.
    let all_gsm = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                   ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    cases.push(case("gsm-all default", all_gsm));
    cases.push(case("gsm-all extension", "\u{0C}^{}\\[~]|€"));
    cases.push(case(
        "gsm-all mixed",
        format!("{all_gsm}\u{0C}^{{}}\\[~]|€").repeat(2),
    ));
    for (name, text) in templates {
        cases.push(case(format!("{name} short"), text));
        cases.push(case(format!("{name} long"), text.repeat(4)));
        cases.push(wide(format!("{name} long-16bit"), text.repeat(4)));
    }
    let gsm = "abcdefghijklmnopqrstuvwxyz0123456789 ";
    let ucs2 = "жщыэюяЖЩЫЭЮЯ";
    for len in [159, 160, 161, 305, 306, 307, 458, 459, 460] {
        cases.push(case(format!("boundary gsm {len}"), cycle(gsm, len)));
    }
    for len in [303, 304, 305, 455, 456, 457] {
        cases.push(wide(format!("boundary gsm-16bit {len}"), cycle(gsm, len)));
    }
    for len in [69, 70, 71, 133, 134, 135, 200, 201, 202] {
        cases.push(case(format!("boundary ucs2 {len}"), cycle(ucs2, len)));
    }
    for len in [131, 132, 133, 197, 198, 199] {
        cases.push(wide(format!("boundary ucs2-16bit {len}"), cycle(ucs2, len)));
    }
    // An extension character whose escape would be the last septet of a part.
    for (capacity, wide_reference) in [(160, false), (153, false), (152, true)] {
        for parts in 1..=2 {
            let prefix = cycle(gsm, capacity * parts - 1);
            for ext in ["€", "{", "\\"] {
                let text = format!("{prefix}{ext}{}", cycle(gsm, 20));
                let name = format!("boundary escape-at-{} {ext}", capacity * parts);
                cases.push(if wide_reference {
                    wide(name, text)
                } else {
                    case(name, text)
                });
            }
        }
    }
    // A surrogate pair whose high half would be the last unit of a part.
    for (capacity, wide_reference) in [(70, false), (67, false), (66, true)] {
        for parts in 1..=2 {
            let prefix = cycle(ucs2, capacity * parts - 1);
            for emoji in ["😀", "🇩🇪", "👨‍👩‍👧"] {
                let text = format!("{prefix}{emoji}{}", cycle(ucs2, 10));
                let name = format!("boundary surrogate-at-{} {emoji}", capacity * parts);
                cases.push(if wide_reference {
                    wide(name, text)
                } else {
                    case(name, text)
                });
            }
        }
    }
    cases.push(case("boundary emoji 35", "😀".repeat(35)));
    cases.push(case("boundary emoji 35+1", format!("ж{}", "😀".repeat(35))));
    cases.push(case("boundary extension 80", "€".repeat(80)));
    cases.push(case("boundary extension 81", "€".repeat(81)));
    cases
}

fn require_gammu() {
    let present = Command::new(PYTHON)
        .args(["-c", "import gammu"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        present,
        "python3-gammu is missing: the codec cross-check needs it. Install it with \
         `apt-get install python3-gammu` (scripts/install-test-deps does this); it must be \
         importable by {PYTHON}"
    );
}

fn run_script(mode: &str, lines: &[serde_json::Value]) -> (bool, String, String) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
    let output = Command::new(PYTHON)
        .arg(SCRIPT)
        .arg(mode)
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} {SCRIPT}: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Decodes parts with smsbridge and returns (number, text joined in part order), after
/// checking that the concatenation headers are consistent.
fn decode_parts(hex_parts: &[String]) -> Result<(String, String), String> {
    let mut parts = Vec::new();
    for (index, hex) in hex_parts.iter().enumerate() {
        let bytes = decode_hex(hex).map_err(|e| format!("part {}: {e}", index + 1))?;
        let pdu = decode_pdu(&bytes).map_err(|e| format!("part {}: {e}", index + 1))?;
        let (number, udh) = match &pdu {
            Pdu::Submit(s) => (s.destination.value.clone(), s.udh.as_ref()),
            Pdu::Deliver(d) => (d.originator.value.clone(), d.udh.as_ref()),
            Pdu::StatusReport(_) => return Err(format!("part {}: a status report", index + 1)),
        };
        let text = pdu
            .text()
            .ok_or(format!("part {}: not text", index + 1))?
            .to_owned();
        let concat = udh.and_then(UserDataHeader::concat);
        parts.push((number, concat, text));
    }
    let total = parts.len();
    let mut joined = vec![String::new(); total];
    let mut number = String::new();
    for (index, (part_number, concat, text)) in parts.into_iter().enumerate() {
        if total > 1 {
            let concat = concat.ok_or(format!("part {}: no concatenation header", index + 1))?;
            if usize::from(concat.total) != total {
                return Err(format!(
                    "part {}: says {} parts, there are {total}",
                    index + 1,
                    concat.total
                ));
            }
            let slot = usize::from(concat.sequence)
                .checked_sub(1)
                .filter(|&s| s < total)
                .ok_or(format!("part {}: sequence {}", index + 1, concat.sequence))?;
            joined[slot] = text;
        } else {
            joined[0] = text;
        }
        number = part_number;
    }
    Ok((number, joined.concat()))
}

#[test]
fn gammu_decodes_what_smsbridge_encodes() {
    require_gammu();
    let to = PhoneNumber::parse(NUMBER).unwrap();
    let cases = cases();
    let mut lines = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let reference = (0x1234 + index * 97) as u16;
        let opts = SubmitOptions {
            concat_16bit: case.wide,
            ..SubmitOptions::default()
        };
        let pdus = encode_submit(&to, &case.text, reference, &opts).unwrap();
        let part_texts: Vec<String> = pdus
            .iter()
            .map(|pdu| match decode_pdu(pdu.bytes()) {
                Ok(pdu) => pdu.text().unwrap_or_default().to_owned(),
                Err(err) => panic!("{}: smsbridge cannot decode its own PDU: {err}", case.name),
            })
            .collect();
        let dcs = match plan(&case.text, &opts).encoding {
            TextEncoding::Ucs2 => 8,
            TextEncoding::Gsm7 { .. } => 0,
        };
        lines.push(serde_json::json!({
            "name": case.name,
            "text": case.text,
            "number": NUMBER,
            "reference": reference,
            "wide": case.wide,
            "dcs": dcs,
            "validity": "10M",
            "pdus": pdus.iter().map(|p| p.hex()).collect::<Vec<_>>(),
            "part_texts": part_texts,
        }));
    }
    let (ok, stdout, stderr) = run_script("check", &lines);
    println!("{stdout}{stderr}");
    assert!(
        ok,
        "Gammu disagrees with smsbridge's encoder:\n{stdout}{stderr}"
    );
}

#[test]
fn smsbridge_decodes_what_gammu_encodes() {
    require_gammu();
    let cases = cases();
    let lines: Vec<serde_json::Value> = cases
        .iter()
        .map(|case| {
            let opts = SubmitOptions::default();
            serde_json::json!({
                "name": case.name,
                "text": case.text,
                "number": NUMBER,
                "unicode": plan(&case.text, &opts).encoding == TextEncoding::Ucs2,
                "wide": case.wide,
            })
        })
        .collect();
    let (ok, stdout, stderr) = run_script("encode", &lines);
    assert!(ok, "crosscheck.py encode failed:\n{stdout}{stderr}");
    let mut disagreements = Vec::new();
    let mut pdus = 0;
    let mut fewer_parts = Vec::new();
    for (line, case) in stdout.lines().zip(&cases) {
        let item: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = item["name"].as_str().unwrap_or_default();
        let text = item["text"].as_str().unwrap_or_default();
        // smsbridge's count is the minimum, so Gammu can only need as many parts or more.
        let opts = SubmitOptions {
            concat_16bit: case.wide,
            ..SubmitOptions::default()
        };
        let ours = plan(text, &opts).parts;
        let gammus = item["submit"].as_array().map_or(0, Vec::len);
        if gammus < ours {
            disagreements.push(format!(
                "{name}: Gammu needs {gammus} parts, smsbridge {ours}"
            ));
        } else if gammus > ours {
            fewer_parts.push(format!("{name} ({ours} < {gammus})"));
        }
        for layout in ["submit", "deliver"] {
            let hex: Vec<String> = item[layout]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            pdus += hex.len();
            match decode_parts(&hex) {
                Ok((number, decoded)) => {
                    if number != NUMBER {
                        disagreements.push(format!("{name} ({layout}): number {number:?}"));
                    }
                    if decoded != text {
                        disagreements.push(format!(
                            "{name} ({layout}): text {decoded:?}, want {text:?}"
                        ));
                    }
                }
                Err(err) => disagreements.push(format!("{name} ({layout}): {err}")),
            }
        }
    }
    println!(
        "smsbridge decoded {pdus} PDUs Gammu encoded for {} messages (SUBMIT and DELIVER): {} disagreements",
        cases.len(),
        disagreements.len()
    );
    println!(
        "smsbridge uses fewer parts than Gammu for {} messages: {}",
        fewer_parts.len(),
        fewer_parts.join(", ")
    );
    assert!(
        disagreements.is_empty(),
        "smsbridge disagrees with Gammu's encoder:\n{}",
        disagreements.join("\n")
    );
}
