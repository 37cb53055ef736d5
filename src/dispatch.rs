//! The dispatcher: turns outbox and modem events into sends.
