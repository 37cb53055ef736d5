//! The simulated modem: a pure model (bytes in, bytes out, injected clock) and a runner
//! that serves it on a pseudo-terminal.
