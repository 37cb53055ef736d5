//! The TOML configuration: every key with a safe default, unknown keys refused.
