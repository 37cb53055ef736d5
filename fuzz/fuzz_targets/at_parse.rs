//! Arbitrary modem output in arbitrary chunks: the AT parser must never panic, must give the
//! same events however the bytes are cut, and the answer readers must never panic on what
//! it produces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsbridge::at::command::{
    self, Operator, Response, SignalQuality, StorageUsage, StoredMessage,
};
use smsbridge::at::parse::{Decoder, Event, Pending, RegistrationKind, SimState};

fn feed<'a>(chunks: impl Iterator<Item = &'a [u8]>, ctx: &Pending<'_>) -> Vec<Event> {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event(ctx) {
            events.push(event);
        }
    }
    events
}

/// Cuts `input` into pieces whose lengths come from `sizes`, cycling.
fn chunks<'a>(input: &'a [u8], sizes: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .map_or(1, |&s| usize::from(s) % 64 + 1);
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(head);
        rest = tail;
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (sizes, input) = rest.split_at(rest.len().min(usize::from(selector >> 4)));
    let contexts = [
        Pending::IDLE,
        Pending {
            echo: "AT+CMGS=23",
            info_prefixes: &["+CMGS:"],
            bare_lines: false,
            expects_prompt: true,
        },
        Pending {
            echo: "AT+CMGL=4",
            info_prefixes: &[
                "+CMGL:", "+CMGR:", "+CSQ:", "+COPS:", "+CPMS:", "+CREG:", "+CPIN:",
            ],
            bare_lines: true,
            expects_prompt: false,
        },
        Pending {
            echo: "AT+CSQ",
            info_prefixes: &["+CSQ:"],
            bare_lines: false,
            expects_prompt: false,
        },
    ];
    let ctx = contexts[usize::from(selector) % contexts.len()];

    let whole = feed(std::iter::once(input), &ctx);
    let chunked = feed(chunks(input, sizes).into_iter(), &ctx);
    assert_eq!(whole, chunked, "chunking changed the events");
    let bytewise = feed(input.chunks(1), &ctx);
    assert_eq!(whole, bytewise, "byte-by-byte feeding changed the events");

    let lines: Vec<String> = whole
        .iter()
        .filter_map(|event| match event {
            Event::Info(line) | Event::Unrecognised(line) => Some(line.clone()),
            _ => None,
        })
        .collect();
    let response = Response::new(lines);
    let _ = SignalQuality::from_response(&response);
    let _ = Operator::from_response(&response);
    let _ = StorageUsage::from_response(&response);
    let _ = SimState::from_response(&response);
    let _ = StoredMessage::list_from_response(&response);
    let _ = StoredMessage::read_from_response(&response, 1);
    let _ = smsbridge::at::parse::Registration::from_response(&response, RegistrationKind::Eps);
    let _ = command::message_reference(&response);
    let _ = command::text_answer(&response);
    let _ = command::imei(&response);
    let _ = command::iccid(&response);
    for line in response.lines() {
        let _ = smsbridge::at::parse::redact_line(line);
    }
    for event in &whole {
        let _ = format!("{event:?}");
    }
});
