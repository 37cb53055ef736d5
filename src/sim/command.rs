//! The simulated modem's own AT command-line parser (ITU-T V.250 clause 5): a command line
//! (`AT` prefix, then basic commands such as `E0` and extended ones such as `+CMGS=23`,
//! separated by `;`) becomes a list of commands.
//!
//! It is deliberately separate from `crate::at`, which parses the other direction (what a
//! modem says), so a misunderstanding of the syntax in one can't hide in the other. Pure:
//! no I/O, no clock.

/// One command of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// A basic command: a letter (or `&` and a letter) and an optional number, e.g. `E0`,
    /// `Z`, `&F`. The letter is upper case.
    Basic {
        ampersand: bool,
        letter: char,
        value: Option<u32>,
    },
    /// An S-register access, `S7=60` or `S0?`.
    SRegister { register: u32, value: Option<u32> },
    /// An extended command, `+CMGS=23`, `^ICCID?`. The name includes its prefix character
    /// and is upper case.
    Extended { name: String, form: Form },
}

/// The form of an extended command (V.250 5.4.2 / 5.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// `AT+CMD`
    Exec,
    /// `AT+CMD?`
    Read,
    /// `AT+CMD=?`
    Test,
    /// `AT+CMD=a,b,...`
    Set(Vec<Arg>),
}

/// One argument of a set command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    /// Nothing between two commas.
    Empty,
    /// A decimal number.
    Int(i64),
    /// A quoted string, without its quotes.
    Str(String),
    /// Anything else, unquoted.
    Word(String),
}

impl Arg {
    /// The argument as a number, if it is one.
    pub(crate) fn int(&self) -> Option<i64> {
        match self {
            Arg::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The argument as text, quoted or not (numbers too, as some modems accept `AT+CPIN=1234`).
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Arg::Str(s) | Arg::Word(s) => Some(s.clone()),
            Arg::Int(n) => Some(n.to_string()),
            Arg::Empty => None,
        }
    }
}

/// Why a command line could not be parsed; the modem answers a plain `ERROR` (V.250 5.6:
/// a syntax error is reported before anything on the line is executed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError;

/// Parses one command line (without its terminating CR).
///
/// Returns `None` when the line holds no `AT` prefix: V.250 5.2.1 says characters before
/// the prefix are ignored, and a modem says nothing about a line of noise.
pub(crate) fn parse_line(line: &[u8]) -> Option<Result<Vec<Cmd>, SyntaxError>> {
    let start = line.windows(2).position(|w| w == b"AT" || w == b"at")?;
    let body = line.get(start + 2..).unwrap_or_default();
    Some(parse_body(body))
}

fn parse_body(body: &[u8]) -> Result<Vec<Cmd>, SyntaxError> {
    let mut cmds = Vec::new();
    let mut pos = 0;
    while let Some(&c) = body.get(pos) {
        match c {
            b' ' | b';' => pos += 1,
            b'+' | b'^' | b'%' | b'$' => {
                let (cmd, next) = parse_extended(body, pos)?;
                cmds.push(cmd);
                pos = next;
            }
            b'&' => {
                let letter = body.get(pos + 1).copied().ok_or(SyntaxError)?;
                if !letter.is_ascii_alphabetic() {
                    return Err(SyntaxError);
                }
                let (value, next) = parse_number(body, pos + 2);
                cmds.push(Cmd::Basic {
                    ampersand: true,
                    letter: char::from(letter.to_ascii_uppercase()),
                    value,
                });
                pos = next;
            }
            b'S' | b's' => {
                let (register, next) = parse_number(body, pos + 1);
                let register = register.ok_or(SyntaxError)?;
                match body.get(next) {
                    Some(b'?') => {
                        cmds.push(Cmd::SRegister {
                            register,
                            value: None,
                        });
                        pos = next + 1;
                    }
                    Some(b'=') => {
                        let (value, after) = parse_number(body, next + 1);
                        cmds.push(Cmd::SRegister {
                            register,
                            value: Some(value.ok_or(SyntaxError)?),
                        });
                        pos = after;
                    }
                    _ => return Err(SyntaxError),
                }
            }
            c if c.is_ascii_alphabetic() => {
                let (value, next) = parse_number(body, pos + 1);
                cmds.push(Cmd::Basic {
                    ampersand: false,
                    letter: char::from(c.to_ascii_uppercase()),
                    value,
                });
                pos = next;
            }
            _ => return Err(SyntaxError),
        }
    }
    Ok(cmds)
}

/// Parses decimal digits at `pos`; returns the number (if any digits) and the position after.
fn parse_number(body: &[u8], pos: usize) -> (Option<u32>, usize) {
    let mut end = pos;
    let mut value: Option<u32> = None;
    while let Some(&d) = body.get(end) {
        if !d.is_ascii_digit() {
            break;
        }
        let digit = u32::from(d - b'0');
        value = Some(value.unwrap_or(0).saturating_mul(10).saturating_add(digit));
        end += 1;
    }
    (value, end)
}

/// Parses an extended command starting at its prefix character; returns it and the
/// position after it (at a `;` or the end).
fn parse_extended(body: &[u8], pos: usize) -> Result<(Cmd, usize), SyntaxError> {
    let mut end = pos + 1;
    while let Some(&c) = body.get(end) {
        if c.is_ascii_alphanumeric() || c == b'_' {
            end += 1;
        } else {
            break;
        }
    }
    if end == pos + 1 {
        return Err(SyntaxError);
    }
    let name = String::from_utf8_lossy(body.get(pos..end).unwrap_or_default()).to_uppercase();
    let rest = body.get(end..).unwrap_or_default();
    let (form, used) = if rest.starts_with(b"=?") {
        (Form::Test, 2)
    } else if rest.starts_with(b"?") {
        (Form::Read, 1)
    } else if rest.starts_with(b"=") {
        let args_end = find_unquoted_semicolon(rest, 1);
        let args = parse_args(rest.get(1..args_end).unwrap_or_default())?;
        (Form::Set(args), args_end)
    } else {
        (Form::Exec, 0)
    };
    let next = end + used;
    match body.get(next) {
        None | Some(b';') => Ok((Cmd::Extended { name, form }, next)),
        // Spaces before the separator are ignored (V.250 5.2.1).
        Some(_)
            if body
                .get(next..)
                .unwrap_or_default()
                .iter()
                .all(|&c| c == b' ') =>
        {
            Ok((Cmd::Extended { name, form }, body.len()))
        }
        Some(_) => Err(SyntaxError),
    }
}

fn find_unquoted_semicolon(s: &[u8], from: usize) -> usize {
    let mut quoted = false;
    let mut i = from;
    while let Some(&c) = s.get(i) {
        match c {
            b'"' => quoted = !quoted,
            b';' if !quoted => return i,
            _ => {}
        }
        i += 1;
    }
    s.len()
}

fn parse_args(s: &[u8]) -> Result<Vec<Arg>, SyntaxError> {
    let mut args = Vec::new();
    let mut current = Vec::new();
    let mut quoted = false;
    for &c in s {
        match c {
            b'"' => {
                quoted = !quoted;
                current.push(c);
            }
            b',' if !quoted => args.push(parse_arg(&std::mem::take(&mut current))?),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err(SyntaxError);
    }
    args.push(parse_arg(&current)?);
    Ok(args)
}

fn parse_arg(raw: &[u8]) -> Result<Arg, SyntaxError> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.is_empty() {
        return Ok(Arg::Empty);
    }
    if let Some(inner) = text.strip_prefix('"') {
        let inner = inner.strip_suffix('"').ok_or(SyntaxError)?;
        if inner.contains('"') {
            return Err(SyntaxError);
        }
        return Ok(Arg::Str(inner.to_string()));
    }
    if text.contains('"') {
        return Err(SyntaxError);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Arg::Int).map_err(|_| SyntaxError);
    }
    Ok(Arg::Word(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, form: Form) -> Cmd {
        Cmd::Extended {
            name: name.to_string(),
            form,
        }
    }

    fn basic(letter: char, value: Option<u32>) -> Cmd {
        Cmd::Basic {
            ampersand: false,
            letter,
            value,
        }
    }

    fn check(line: &str, expected: Option<Result<Vec<Cmd>, SyntaxError>>) {
        assert_eq!(parse_line(line.as_bytes()), expected, "line {line:?}");
    }

    #[test]
    fn parses_command_lines() {
        check("AT", Some(Ok(vec![])));
        check("at", Some(Ok(vec![])));
        check("noise", None);
        check("xxAT", Some(Ok(vec![])));
        check("ATE0", Some(Ok(vec![basic('E', Some(0))])));
        check(
            "ATE0V1",
            Some(Ok(vec![basic('E', Some(0)), basic('V', Some(1))])),
        );
        check("ATZ", Some(Ok(vec![basic('Z', None)])));
        check(
            "AT&F",
            Some(Ok(vec![Cmd::Basic {
                ampersand: true,
                letter: 'F',
                value: None,
            }])),
        );
        check(
            "ATS0=0",
            Some(Ok(vec![Cmd::SRegister {
                register: 0,
                value: Some(0),
            }])),
        );
        check("AT+CSQ", Some(Ok(vec![ext("+CSQ", Form::Exec)])));
        check("at+csq", Some(Ok(vec![ext("+CSQ", Form::Exec)])));
        check("AT+CREG?", Some(Ok(vec![ext("+CREG", Form::Read)])));
        check("AT+CMGS=?", Some(Ok(vec![ext("+CMGS", Form::Test)])));
        check("AT^ICCID?", Some(Ok(vec![ext("^ICCID", Form::Read)])));
        check(
            "AT+CMGS=23",
            Some(Ok(vec![ext("+CMGS", Form::Set(vec![Arg::Int(23)]))])),
        );
        check(
            "AT+CNMI=2,1,,1",
            Some(Ok(vec![ext(
                "+CNMI",
                Form::Set(vec![Arg::Int(2), Arg::Int(1), Arg::Empty, Arg::Int(1)]),
            )])),
        );
        check(
            "AT+CPIN=\"12;34\"",
            Some(Ok(vec![ext(
                "+CPIN",
                Form::Set(vec![Arg::Str("12;34".to_string())]),
            )])),
        );
        check(
            "AT+CMEE=1;+CMGF=0",
            Some(Ok(vec![
                ext("+CMEE", Form::Set(vec![Arg::Int(1)])),
                ext("+CMGF", Form::Set(vec![Arg::Int(0)])),
            ])),
        );
        check(
            "AT+CPMS=SM",
            Some(Ok(vec![ext(
                "+CPMS",
                Form::Set(vec![Arg::Word("SM".to_string())]),
            )])),
        );
    }

    #[test]
    fn rejects_bad_syntax() {
        check("AT+", Some(Err(SyntaxError)));
        check("AT+CPIN=\"1234", Some(Err(SyntaxError)));
        check("AT+CSQ?x", Some(Err(SyntaxError)));
        check("AT#", Some(Err(SyntaxError)));
        check("ATS=1", Some(Err(SyntaxError)));
    }
}
