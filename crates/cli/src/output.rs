//! What the commands print on standard output.
//!
//! `println!` panics when the reader has gone (`scimbridge plan app | head`). These write the
//! same text and, when the pipe is closed, stop the process quietly with success, as Unix tools
//! do: the reader asked for no more. Any other failure to write is said on standard error.

use std::fmt;
use std::io::{self, Write};

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

fn stopped(error: &io::Error) {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1);
}
