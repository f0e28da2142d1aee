//! What the commands print on standard output.
//!
//! `println!` panics when the reader has gone (`scimbridge plan app | head`). These write the
//! same text and, when the pipe is closed, stop the process quietly with success, as Unix tools
//! do: the reader asked for no more. Any other failure to write is said on standard error. The
//! service is the exception: it keeps provisioning and drops what it cannot print.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the service: its standard output going away (a log collector restarted) must not
/// stop provisioning, so what it prints is then dropped, said once in the log.
static SERVICE: AtomicBool = AtomicBool::new(false);
static SAID: AtomicBool = AtomicBool::new(false);

/// From now on, a closed or failing standard output is ignored instead of ending the process.
pub fn keep_running_when_closed() {
    SERVICE.store(true, Ordering::Relaxed);
}

/// Prints a line on standard output (`println!` that stops quietly on a closed pipe).
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints on standard output without a newline (`print!` that stops quietly on a closed pipe).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// Writes and flushes, so that a line is seen as soon as it is printed (`serve`'s banner under a
/// pipe to a log collector).
pub fn write(text: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        stopped(&error);
    }
}

/// Writes `value` as indented JSON as it is serialised, without building the text or a JSON
/// tree first (a plan of a million operations), each line after the first indented by
/// `indent` spaces so that it can sit inside an object being printed.
pub fn write_json(value: &impl serde::Serialize, indent: usize) {
    write_indented(io::BufWriter::new(io::stdout().lock()), value, indent);
}

/// Writes `value` as indented JSON to `inner` (standard output, buffered) and flushes it.
fn write_indented(inner: impl Write, value: &impl serde::Serialize, indent: usize) {
    let mut writer = Indented { inner, indent };
    let result = serde_json::to_writer_pretty(&mut writer, value)
        .map_err(io::Error::from)
        .and_then(|()| writer.inner.flush());
    if let Err(error) = result {
        stopped(&error);
    }
}

/// Writes the fields of `object` (a JSON object, never empty) as [`write_json`] does, after
/// the fields of an object already open: its opening brace is written as a comma, and its
/// closing brace closes that object.
pub fn write_json_fields_after(object: &impl serde::Serialize, indent: usize) {
    let inner = OpeningBraceAsComma {
        inner: io::BufWriter::new(io::stdout().lock()),
        started: false,
    };
    write_indented(inner, object, indent);
}

/// Writes a comma for the first byte, an object's opening brace.
struct OpeningBraceAsComma<W: Write> {
    inner: W,
    started: bool,
}

impl<W: Write> Write for OpeningBraceAsComma<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match buf.split_first() {
            Some((b'{', rest)) if !self.started => {
                self.inner.write_all(b",")?;
                self.inner.write_all(rest)?;
            }
            _ => self.inner.write_all(buf)?,
        }
        self.started |= !buf.is_empty();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Indents every line after the first.
struct Indented<W: Write> {
    inner: W,
    indent: usize,
}

impl<W: Write> Write for Indented<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut lines = buf.split(|b| *b == b'\n');
        if let Some(first) = lines.next() {
            self.inner.write_all(first)?;
        }
        for line in lines {
            self.inner.write_all(b"\n")?;
            for _ in 0..self.indent {
                self.inner.write_all(b" ")?;
            }
            self.inner.write_all(line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn stopped(error: &io::Error) {
    if SERVICE.load(Ordering::Relaxed) {
        if !SAID.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, "standard output is gone; what the service prints is dropped");
        }
        return;
    }
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1);
}
