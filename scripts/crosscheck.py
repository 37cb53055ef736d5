#!/usr/bin/python3
"""Cross-checks smsbridge's SMS codec against Gammu, an implementation nobody here wrote.

Run by tests/crosscheck.rs (cargo test --test crosscheck -- --nocapture shows the report);
needs Debian's python3-gammu (scripts/install-test-deps installs it) and /usr/bin/python3.

  crosscheck.py check CASES.jsonl
      Each line: {"name", "text", "number", "reference", "wide", "dcs", "validity",
      "pdus": [hex, ...], "part_texts": [...]} -- PDUs smsbridge encoded (SMSC field first)
      and the part texts smsbridge's own decoder read from them. Every PDU is decoded with
      gammu.DecodePDU; the parts are then linked with gammu.LinkSMS and reassembled with
      gammu.DecodeSMS. Compared: message type, destination number, coding (DCS), class,
      validity, the concatenation header (8/16-bit, reference, part number, part count),
      each part's text against smsbridge's decoder, the joined part texts and Gammu's
      reassembled text against the original. Prints a report; exit status 1 if any
      comparison disagrees.

  crosscheck.py encode TEXTS.jsonl
      Each line: {"name", "text", "number", "unicode", "wide"}. Gammu splits and encodes
      the text (gammu.EncodeSMS, then gammu.EncodePDU as SMS-SUBMIT and as SMS-DELIVER;
      "~" is doubled in Unicode texts, as Gammu's own escaping convention requires);
      prints one JSON line per text: {"name", "text", "number", "submit": [hex, ...],
      "deliver": [hex, ...]}, for smsbridge's decoder to read.

Known Gammu quirk handled here: python-gammu builds a 7-bit message's "Text" from
sms->Length, which libGammu sets to the number of septets (TP-UDL less the header), not
of characters. Every extension character (two septets, one character) therefore adds one
stray character after the C string's terminating NUL. The text is cut at the NUL (GSM
7-bit has no NUL character; "@" is septet 0 but decodes to U+0040), and the report counts
how often that happened.

Known Gammu bug modelled here: libGammu passes UCS-2 text through
DecodeUnicodeSpecialNOKIAChars, which doubles every "~" (its internal escape for U+0001),
and python-gammu then keeps only TP-UDL/2 units, so each "~" pushes one character off the
end of the part ("ж~a" reads "ж~~"). For a UCS-2 part containing "~" the expected Gammu
text is smsbridge's part text with "~" doubled and cut to its original length; the report
counts these parts. Every other part must match exactly.
"""

import datetime
import json
import sys

CODING = {0: "Default_No_Compression", 8: "Unicode_No_Compression"}


def main(argv):
    if len(argv) != 3 or argv[1] not in ("check", "encode"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import gammu
    except ImportError:
        print(
            "python3-gammu is missing: install it with `apt-get install python3-gammu` "
            "(scripts/install-test-deps does) and run with /usr/bin/python3",
            file=sys.stderr,
        )
        return 2
    with open(argv[2], encoding="utf-8") as lines:
        items = [json.loads(line) for line in lines if line.strip()]
    if argv[1] == "check":
        return check(gammu, items)
    return encode(gammu, items)


def short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "..." + text[-5:]


def gammu_ucs2_view(text):
    """What Gammu shows for a UCS-2 part: "~" doubled, cut to the part's UTF-16 length."""
    units = len(text.encode("utf-16-be")) // 2
    doubled = text.replace("~", "~~").encode("utf-16-be")[: 2 * units]
    return doubled.decode("utf-16-be", errors="replace")


def check(gammu, cases):
    disagreements = []
    comparisons = 0
    parts_total = 0
    nul_cuts = 0
    tilde_parts = 0
    scripts_seen = set()

    def compare(case, part, field, ours, theirs):
        nonlocal comparisons
        comparisons += 1
        if ours != theirs:
            disagreements.append((case["name"], part, field, ours, theirs))

    for case in cases:
        text = case["text"]
        pdus = case["pdus"]
        count = len(pdus)
        wide = case["wide"]
        parts_total += count
        scripts_seen.add(case["name"].split(" ")[0])
        messages = []
        part_texts = []
        expected_texts = []
        for index, hex_pdu in enumerate(pdus):
            part = index + 1
            try:
                message = gammu.DecodePDU(bytes.fromhex(hex_pdu), SMSC=True)
            except gammu.GSMError as error:
                compare(case, part, "gammu.DecodePDU", "decodable", str(error))
                continue
            messages.append(message)
            compare(case, part, "type", "Submit", message["Type"])
            compare(case, part, "number", case["number"], message["Number"])
            compare(case, part, "coding", CODING[case["dcs"]], message["Coding"])
            compare(case, part, "class", -1, message["Class"])
            compare(case, part, "validity", case["validity"], message["SMSC"]["Validity"])
            udh = message["UDH"]
            if count == 1:
                compare(case, part, "udh type", "NoUDH", udh["Type"])
            else:
                kind = "ConcatenatedMessages16bit" if wide else "ConcatenatedMessages"
                reference = udh["ID16bit"] if wide else udh["ID8bit"]
                expected_reference = case["reference"] if wide else case["reference"] & 0xFF
                compare(case, part, "udh type", kind, udh["Type"])
                compare(case, part, "concatenation reference", expected_reference, reference)
                compare(case, part, "part number", part, udh["PartNumber"])
                compare(case, part, "part count", count, udh["AllParts"])
            part_text = message["Text"]
            if case["dcs"] == 0 and "\x00" in part_text:
                nul_cuts += 1
                part_text = part_text.split("\x00", 1)[0]
            part_texts.append(part_text)
            ours = case["part_texts"][index]
            if case["dcs"] == 8 and "~" in ours:
                tilde_parts += 1
                ours = gammu_ucs2_view(ours)
            expected_texts.append(ours)
            compare(case, part, "part text (smsbridge decoder vs gammu)", ours, part_text)
        compare(case, "all", "smsbridge part texts joined", text, "".join(case["part_texts"]))
        compare(case, "all", "gammu part texts joined", "".join(expected_texts), "".join(part_texts))
        if count > 1 and len(messages) == count:
            linked = gammu.LinkSMS([[m] for m in messages])
            compare(case, "all", "gammu.LinkSMS groups", 1, len(linked))
            if len(linked) == 1:
                compare(case, "all", "gammu.LinkSMS parts", count, len(linked[0]))
                info = gammu.DecodeSMS(linked[0])
                buffers = [e["Buffer"] for e in (info or {}).get("Entries", []) if isinstance(e.get("Buffer"), str)]
                compare(case, "all", "gammu.DecodeSMS text", "".join(expected_texts), "".join(buffers))

    version = gammu.Version()
    print(
        f"gammu {version[0]} (python-gammu {version[1]}): {len(cases)} messages, {parts_total} PDUs, "
        f"{len(scripts_seen)} name groups, {comparisons} comparisons, {len(disagreements)} disagreements"
    )
    print(f"python-gammu 7-bit Text cut at its NUL terminator in {nul_cuts} parts (binding quirk, see the docstring)")
    print(f"UCS-2 parts with '~' compared against Gammu's '~'-doubling view: {tilde_parts} (Gammu bug, see the docstring)")
    for name, part, field, ours, theirs in disagreements:
        print(f"DISAGREE {name} part {part} {field}: smsbridge {short(ours)} gammu {short(theirs)}")
    return 1 if disagreements else 0


def encode(gammu, texts):
    for item in texts:
        entry = "ConcatenatedTextLong16bit" if item["wide"] else "ConcatenatedTextLong"
        buffer = item["text"]
        if item["unicode"]:
            # Gammu's EncodeUnicodeSpecialNOKIAChars reads a lone "~" in Unicode text as
            # its escape for U+0001 and "~~" as "~", so a literal "~" is passed doubled.
            buffer = buffer.replace("~", "~~")
        info = {"Class": -1, "Unicode": item["unicode"], "Entries": [{"ID": entry, "Buffer": buffer}]}
        submit = []
        deliver = []
        for message in gammu.EncodeSMS(info):
            message["SMSC"] = {"Location": 0, "Number": "", "Validity": "NA", "Format": "Text"}
            message["Number"] = item["number"]
            submit.append(gammu.EncodePDU(message, "Submit").hex().upper())
            # The first octet's TP-MTI follows the message's "Type", not the layout.
            message["Type"] = "Deliver"
            message["DateTime"] = datetime.datetime(2025, 11, 7, 12, 34, 7)
            deliver.append(gammu.EncodePDU(message, "Deliver").hex().upper())
        out = {"name": item["name"], "text": item["text"], "number": item["number"], "submit": submit, "deliver": deliver}
        print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
