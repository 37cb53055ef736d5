//! The phone-number metadata's shape and a matcher for its patterns (pure).
//!
//! libphonenumber's patterns use a small part of regular-expression syntax: digits, `\d`,
//! character classes of digits with ranges, groups (`(?:…)` and capturing `(…)`),
//! alternation, the greedy quantifiers `?`, `*`, `+`, `{n}`, `{n,}`, `{n,m}`, and `$`.
//! A pattern is compiled when a decision needs it, into a short program run by a bounded
//! backtracker (every program position is tried at most once per input position), which
//! gives the leftmost-first match and captures a backtracking regex engine gives. Nothing
//! is kept between calls: a check costs microseconds and no memory stays behind, however
//! many countries are seen.

/// One number type's description: what its national numbers look like.
pub(crate) struct Desc {
    pub pattern: &'static str,
    /// Possible national lengths; empty means any.
    pub lengths: &'static [u16],
    pub local: &'static [u16],
}

/// One territory's metadata, as `scripts/gen-phone-metadata` keeps it.
pub(crate) struct Territory {
    /// The region (ISO 3166 code, or 001 for non-geographic numbers) and calling code, as
    /// the metadata names them (tests and debugging).
    #[allow(dead_code)]
    pub id: &'static str,
    #[allow(dead_code)]
    pub code: u16,
    pub leading_digits: Option<&'static str>,
    pub national_prefix: Option<&'static str>,
    pub prefix_for_parsing: Option<&'static str>,
    pub transform: Option<&'static str>,
    /// The fixed-line and mobile patterns are the same text: such a number's type is
    /// "fixed line or mobile".
    pub fixed_line_is_mobile: bool,
    pub general: Desc,
    pub fixed_line: Option<Desc>,
    pub mobile: Option<Desc>,
    pub toll_free: Option<Desc>,
    pub premium_rate: Option<Desc>,
    pub shared_cost: Option<Desc>,
    pub personal_number: Option<Desc>,
    pub voip: Option<Desc>,
    pub pager: Option<Desc>,
    pub uan: Option<Desc>,
    pub voicemail: Option<Desc>,
}

impl Desc {
    /// The length check, then the pattern matching a prefix of `value` (what the crate's
    /// `Descriptor::is_match` does: a match that starts at the beginning).
    pub fn is_match(&self, value: &str) -> bool {
        if !self.lengths.is_empty() && !self.lengths.contains(&(value.len() as u16)) {
            return false;
        }
        prefix_match(self.pattern, value)
    }
}

/// Whether `pattern` matches a prefix of `input`. A pattern outside the supported syntax
/// matches nothing (the generator's test makes sure none is).
pub(crate) fn prefix_match(pattern: &'static str, input: &str) -> bool {
    match program(pattern) {
        Some(program) => program.run(input.as_bytes()).is_some(),
        None => false,
    }
}

/// Compiled programs of the patterns used last, up to a byte budget: the patterns of the
/// countries a service sees are matched without compiling them again, and the memory
/// they take stays bounded however many countries it sees (the least recently used
/// program is dropped first; an unlisted pattern is compiled for the one decision).
struct Cache {
    entries: Vec<(usize, std::sync::Arc<Program>, u64)>,
    bytes: usize,
    clock: u64,
}

/// The cache's budget: about the programs of ten large countries.
const CACHE_BYTES: usize = 1 << 20;

static CACHE: std::sync::Mutex<Cache> = std::sync::Mutex::new(Cache {
    entries: Vec::new(),
    bytes: 0,
    clock: 0,
});

fn program(pattern: &'static str) -> Option<std::sync::Arc<Program>> {
    let key = pattern.as_ptr() as usize ^ (pattern.len() << 48);
    if let Ok(mut cache) = CACHE.lock() {
        cache.clock += 1;
        let now = cache.clock;
        if let Some(entry) = cache.entries.iter_mut().find(|e| e.0 == key) {
            entry.2 = now;
            return Some(std::sync::Arc::clone(&entry.1));
        }
    }
    let compiled = std::sync::Arc::new(Program::compile(pattern)?);
    let size = compiled.bytes();
    if size <= CACHE_BYTES / 4 {
        if let Ok(mut cache) = CACHE.lock() {
            while cache.bytes + size > CACHE_BYTES && !cache.entries.is_empty() {
                let oldest = (0..cache.entries.len())
                    .min_by_key(|&i| cache.entries[i].2)
                    .unwrap_or(0);
                let (_, gone, _) = cache.entries.swap_remove(oldest);
                cache.bytes -= gone.bytes();
            }
            let now = cache.clock;
            cache.bytes += size;
            cache
                .entries
                .push((key, std::sync::Arc::clone(&compiled), now));
        }
    }
    Some(compiled)
}

/// Whether `pattern` is in the syntax this matcher supports.
#[cfg(test)]
pub(crate) fn compiles(pattern: &str) -> bool {
    Program::compile(pattern).is_some()
}

/// The first (leftmost-first) match of `pattern` at the start of `input`: its end and the
/// capture groups' spans (group 0 is the whole match).
pub(crate) fn captures(pattern: &'static str, input: &str) -> Option<Captures> {
    let program = program(pattern)?;
    let slots = program.run(input.as_bytes())?;
    Some(Captures { slots })
}

pub(crate) struct Captures {
    slots: Vec<Option<usize>>,
}

impl Captures {
    /// Number of groups, the whole match included.
    pub fn len(&self) -> usize {
        self.slots.len() / 2
    }

    pub fn end(&self) -> usize {
        self.slots[1].unwrap_or(0)
    }

    pub fn get<'a>(&self, input: &'a str, group: usize) -> Option<&'a str> {
        match (self.slots.get(2 * group)?, self.slots.get(2 * group + 1)?) {
            (Some(a), Some(b)) => input.get(*a..*b),
            _ => None,
        }
    }

    /// `template` with `$n` replaced by group `n` (empty if it did not take part), then
    /// the input after the match: what replacing the first match gives.
    pub fn replace(&self, input: &str, template: &str) -> String {
        let mut out = String::new();
        let mut chars = template.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            if c == '$' {
                let mut group = None;
                while let Some(&(_, d)) = chars.peek() {
                    match d.to_digit(10) {
                        Some(v) => {
                            group = Some(group.unwrap_or(0) * 10 + v as usize);
                            chars.next();
                        }
                        None => break,
                    }
                }
                match group {
                    Some(g) => out.push_str(self.get(input, g).unwrap_or("")),
                    None => out.push('$'),
                }
            } else {
                out.push(c);
            }
        }
        out.push_str(&input[self.end()..]);
        out
    }
}

#[derive(Debug, Clone)]
enum Ast {
    /// One digit out of a set (bit `d` for digit `d`).
    Set(u16),
    Group(Box<Ast>, Option<usize>),
    Alt(Vec<Ast>),
    Concat(Vec<Ast>),
    Repeat(Box<Ast>, u32, Option<u32>),
    End,
}

#[derive(Debug, Clone, Copy)]
enum Inst {
    Set(u16),
    /// Try the first target, then the second.
    Split(u32, u32),
    Jmp(u32),
    Save(u16),
    End,
    Match,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    groups: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn alt(&mut self) -> Option<Ast> {
        let mut branches = vec![self.concat()?];
        while self.peek() == Some(b'|') {
            self.i += 1;
            branches.push(self.concat()?);
        }
        Some(if branches.len() == 1 {
            branches.pop()?
        } else {
            Ast::Alt(branches)
        })
    }

    fn concat(&mut self) -> Option<Ast> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == b'|' || c == b')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Some(Ast::Concat(items))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn quantified(&mut self, atom: Ast) -> Option<Ast> {
        let (min, max) = match self.peek() {
            Some(b'?') => (0, Some(1)),
            Some(b'*') => (0, None),
            Some(b'+') => (1, None),
            Some(b'{') => {
                self.i += 1;
                let min = self.number()?;
                let max = match self.peek()? {
                    b'}' => Some(min),
                    b',' => {
                        self.i += 1;
                        if self.peek()? == b'}' {
                            None
                        } else {
                            Some(self.number()?)
                        }
                    }
                    _ => return None,
                };
                if self.peek()? != b'}' {
                    return None;
                }
                (min, max)
            }
            _ => return Some(atom),
        };
        self.i += 1;
        if matches!(self.peek(), Some(b'?' | b'+' | b'*' | b'{')) {
            // Lazy or stacked quantifiers are not used by the metadata.
            return None;
        }
        if max.is_some_and(|m| m < min) {
            return None;
        }
        Some(Ast::Repeat(Box::new(atom), min, max))
    }

    fn atom(&mut self) -> Option<Ast> {
        let c = self.peek()?;
        self.i += 1;
        match c {
            b'0'..=b'9' => Some(Ast::Set(1 << (c - b'0'))),
            b'\\' => {
                let e = self.peek()?;
                self.i += 1;
                match e {
                    b'd' => Some(Ast::Set(0x3ff)),
                    _ => None,
                }
            }
            b'[' => {
                let mut set = 0u16;
                let negated = self.peek() == Some(b'^');
                if negated {
                    return None;
                }
                loop {
                    let c = self.peek()?;
                    self.i += 1;
                    match c {
                        b']' => break,
                        b'0'..=b'9' => {
                            if self.peek() == Some(b'-') && self.s.get(self.i + 1) != Some(&b']') {
                                self.i += 1;
                                let hi = self.peek()?;
                                self.i += 1;
                                if !hi.is_ascii_digit() || hi < c {
                                    return None;
                                }
                                for d in c..=hi {
                                    set |= 1 << (d - b'0');
                                }
                            } else {
                                set |= 1 << (c - b'0');
                            }
                        }
                        b'\\' if self.peek() == Some(b'd') => {
                            self.i += 1;
                            set |= 0x3ff;
                        }
                        _ => return None,
                    }
                }
                Some(Ast::Set(set))
            }
            b'(' => {
                let capture = if self.s[self.i..].starts_with(b"?:") {
                    self.i += 2;
                    None
                } else {
                    self.groups += 1;
                    Some(self.groups)
                };
                let inner = self.alt()?;
                if self.peek()? != b')' {
                    return None;
                }
                self.i += 1;
                Some(Ast::Group(Box::new(inner), capture))
            }
            b'$' => Some(Ast::End),
            _ => None,
        }
    }
}

struct Program {
    insts: Vec<Inst>,
    slots: usize,
}

/// Programs longer than this are refused rather than run (none of the metadata's is).
const MAX_PROGRAM: usize = 1 << 16;

impl Program {
    /// What the program occupies on the heap.
    fn bytes(&self) -> usize {
        self.insts.len() * std::mem::size_of::<Inst>() + std::mem::size_of::<Program>()
    }

    fn compile(pattern: &str) -> Option<Program> {
        let mut parser = Parser {
            s: pattern.as_bytes(),
            i: 0,
            groups: 0,
        };
        let ast = parser.alt()?;
        if parser.i != parser.s.len() {
            return None;
        }
        let mut insts = vec![Inst::Save(0)];
        emit(&ast, &mut insts)?;
        if insts.len() > MAX_PROGRAM {
            return None;
        }
        insts.push(Inst::Save(1));
        insts.push(Inst::Match);
        Some(Program {
            insts,
            slots: 2 * (parser.groups + 1),
        })
    }

    /// The leftmost-first match anchored at the start of `input`: its capture slots.
    fn run(&self, input: &[u8]) -> Option<Vec<Option<usize>>> {
        enum Frame {
            Explore(usize, usize),
            Restore(usize, Option<usize>),
        }
        let width = input.len() + 1;
        let mut visited = vec![0u64; (self.insts.len() * width).div_ceil(64)];
        let pc_of = |target: u32| target as usize;
        let mut slots = vec![None; self.slots];
        let mut stack = vec![Frame::Explore(0, 0)];
        while let Some(frame) = stack.pop() {
            let (mut pc, mut pos) = match frame {
                Frame::Explore(pc, pos) => (pc, pos),
                Frame::Restore(slot, old) => {
                    slots[slot] = old;
                    continue;
                }
            };
            loop {
                let bit = pc * width + pos;
                if visited[bit / 64] & (1 << (bit % 64)) != 0 {
                    break;
                }
                visited[bit / 64] |= 1 << (bit % 64);
                match self.insts[pc] {
                    Inst::Set(set) => match input.get(pos) {
                        Some(&c) if c.is_ascii_digit() && set & (1 << (c - b'0')) != 0 => {
                            pc += 1;
                            pos += 1;
                        }
                        _ => break,
                    },
                    Inst::Split(first, second) => {
                        stack.push(Frame::Explore(pc_of(second), pos));
                        pc = pc_of(first);
                    }
                    Inst::Jmp(to) => pc = pc_of(to),
                    Inst::Save(slot) => {
                        let slot = usize::from(slot);
                        if slot < slots.len() {
                            stack.push(Frame::Restore(slot, slots[slot]));
                            slots[slot] = Some(pos);
                        }
                        pc += 1;
                    }
                    Inst::End => {
                        if pos != input.len() {
                            break;
                        }
                        pc += 1;
                    }
                    Inst::Match => return Some(slots),
                }
            }
        }
        None
    }
}

/// A program position as stored (programs stay under `MAX_PROGRAM`).
fn at(pc: usize) -> u32 {
    pc as u32
}

fn emit(ast: &Ast, out: &mut Vec<Inst>) -> Option<()> {
    if out.len() > MAX_PROGRAM {
        return None;
    }
    match ast {
        Ast::Set(set) => out.push(Inst::Set(*set)),
        Ast::End => out.push(Inst::End),
        Ast::Concat(items) => {
            for item in items {
                emit(item, out)?;
            }
        }
        Ast::Group(inner, capture) => {
            let slot = |i: usize| u16::try_from(i).ok();
            if let Some(g) = capture {
                out.push(Inst::Save(slot(2 * g)?));
            }
            emit(inner, out)?;
            if let Some(g) = capture {
                out.push(Inst::Save(slot(2 * g + 1)?));
            }
        }
        Ast::Alt(branches) => {
            // split L1, next; L1: a; jmp end; next: split L2, ...; last: z; end:
            let mut jumps = Vec::new();
            for (i, branch) in branches.iter().enumerate() {
                if i + 1 < branches.len() {
                    let split = out.len();
                    out.push(Inst::Split(0, 0));
                    emit(branch, out)?;
                    jumps.push(out.len());
                    out.push(Inst::Jmp(0));
                    let next = out.len();
                    out[split] = Inst::Split(at(split + 1), at(next));
                } else {
                    emit(branch, out)?;
                }
            }
            let end = out.len();
            for j in jumps {
                out[j] = Inst::Jmp(at(end));
            }
        }
        Ast::Repeat(inner, min, max) => {
            for _ in 0..*min {
                emit(inner, out)?;
            }
            match max {
                Some(max) => {
                    // Greedy optional copies, nested: each is tried only after the one
                    // before it matched.
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(out.len());
                        out.push(Inst::Split(0, 0));
                        emit(inner, out)?;
                    }
                    let end = out.len();
                    for s in splits {
                        out[s] = Inst::Split(at(s + 1), at(end));
                    }
                }
                None => {
                    let start = out.len();
                    out.push(Inst::Split(0, 0));
                    emit(inner, out)?;
                    out.push(Inst::Jmp(at(start)));
                    let end = out.len();
                    out[start] = Inst::Split(at(start + 1), at(end));
                }
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_prefixes_with_the_metadata_syntax() {
        assert!(prefix_match("7\\d{9}", "7400123456"));
        assert!(prefix_match("7\\d{9}", "74001234567"), "a prefix match");
        assert!(!prefix_match("7\\d{9}", "740012345"));
        assert!(prefix_match("(?:1|6\\d)\\d{7}|[135-9]\\d{5}", "512345"));
        assert!(!prefix_match("[135-9]\\d{5}", "412345"));
        assert!(prefix_match("9(?:0[0-2]|1[1-4])?\\d{2}", "9012"));
        assert!(prefix_match("1{2,3}$", "111"));
        assert!(!prefix_match("1{2,3}$", "1111"));
        assert!(!prefix_match("(?", "1"), "bad syntax matches nothing");
    }

    #[test]
    fn captures_are_leftmost_first() {
        let c = captures("0(?:(11|343|3715)15)?", "0343151234").unwrap();
        assert_eq!(c.end(), 6);
        assert_eq!(c.get("0343151234", 1), Some("343"));
        assert_eq!(c.replace("0343151234", "9$1"), "9343".to_owned() + "1234");
        let c = captures("(\\d)?(\\d)", "5").unwrap();
        assert_eq!(c.get("5", 1), None);
        assert_eq!(c.get("5", 2), Some("5"));
    }
}
