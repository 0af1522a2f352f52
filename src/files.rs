//! Writing files so that a reader never sees half of one: reports, failure
//! files and shrunk plans all go through [`write_atomically`].

use std::io::{self, Write};
use std::path::Path;

/// Write a report to `path` through a temporary file renamed into place, so
/// a reader never sees half a report.
pub fn write_atomically(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = io::BufWriter::new(std::fs::File::create(&tmp)?);
    render(&mut file)?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}
