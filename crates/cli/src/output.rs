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
