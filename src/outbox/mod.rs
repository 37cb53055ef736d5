//! The durable outbox on SQLite: message states, retries, TTL, redaction, delivery reports.
