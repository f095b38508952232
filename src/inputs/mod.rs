//! Floor 3, the inputs: files from outside (a checkout's `.escrc`), parsed once into bounded,
//! validated types. Everything above reads them through these types, never the text.

pub mod escrc;
