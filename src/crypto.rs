//! TEMPORARY STUB until the crypto branch lands.
pub fn parse_recipient(_s: &str) -> Result<(), String> { Ok(()) }
