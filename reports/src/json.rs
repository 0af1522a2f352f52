//! JSON renderers: one pretty-printed object and a trailing newline.

use std::io::{self, Write};

use serde::Serialize;

pub fn write(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}
