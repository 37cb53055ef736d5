//! The pure core stays pure: the modules below compute and decide but import no tokio,
//! read no clock and do no I/O (files, network, processes, environment, terminals, logs),
//! so they can be tested exhaustively and reasoned about alone. Read from the source text
//! (their test modules excluded, as tests may use what they like).

use std::path::{Path, PathBuf};

/// The pure modules: a file, or a directory whose every file is pure.
const PURE: &[&str] = &[
    "sms",
    "ownid.rs",
    "policy.rs",
    "ratelimit.rs",
    "backoff.rs",
    "at/parse.rs",
    "at/command",
    "sim/model.rs",
    "dispatch/plan.rs",
    "outbox/retry.rs",
    "endpoint/verify.rs",
    "endpoint/map.rs",
];

/// What pure code must not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio", "an async runtime"),
    ("SystemTime", "the wall clock"),
    ("Instant::now", "the monotonic clock"),
    ("Utc::now", "the wall clock"),
    ("std::fs", "files"),
    ("File::", "files"),
    ("std::net", "the network"),
    ("std::process", "processes"),
    ("std::env", "the environment"),
    ("std::io::std", "the terminal"),
    ("std::thread", "threads and sleeping"),
    ("println!", "the terminal"),
    ("eprintln!", "the terminal"),
    ("tracing::", "logs"),
    ("rand::", "randomness from the system"),
];

/// The code of a file before its `#[cfg(test)]` module, without line comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut code = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    code
}

fn violations(code: &str) -> Vec<String> {
    FORBIDDEN
        .iter()
        .filter(|(needle, _)| code.contains(needle))
        .map(|(needle, what)| format!("`{needle}` ({what})"))
        .collect()
}

fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

#[test]
fn pure_modules_import_no_runtime_read_no_clock_and_do_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = Vec::new();
    for module in PURE {
        files(&src.join(module), &mut checked);
    }
    // The list names real files: a renamed module must not silently drop out of the check.
    for must in [
        "sms/mod.rs",
        "ownid.rs",
        "dispatch/plan.rs",
        "sim/model.rs",
        "at/parse.rs",
    ] {
        assert!(checked.contains(&src.join(must)), "{must} is not checked");
    }
    let mut failures = Vec::new();
    for file in &checked {
        if file.ends_with("model_tests.rs") {
            continue;
        }
        for v in violations(&code_of(file)) {
            failures.push(format!(
                "{}: {v}",
                file.strip_prefix(&src).unwrap().display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "pure modules doing impure things:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_check_catches_what_it_forbids() {
    assert!(violations("pub fn f() -> u64 { 1 }\n").is_empty());
    let bad = "use tokio::time::sleep;\nfn f() { let _ = std::time::SystemTime::now(); }\n";
    assert_eq!(violations(bad).len(), 2);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "// tokio is mentioned in a comment only\nfn f() {}\n#[cfg(test)]\nmod tests { use tokio::time; }\n").unwrap();
    assert!(
        violations(&code_of(file.path())).is_empty(),
        "comments and test modules are allowed"
    );
}
