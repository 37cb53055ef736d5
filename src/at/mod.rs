//! AT commands: a pure parser of modem output (`parse`), pure command descriptions
//! (`command`), and the engine that runs one command at a time over a byte stream (`engine`).

pub mod command;
pub mod engine;
pub mod parse;
