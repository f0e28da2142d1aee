//! Starts the test slapd (crates/testkit/src/slapd.rs) for `scripts/bench --ldap`, optionally
//! bulk-loaded with slapadd, prints its URL, and stops it when standard input closes.
//!
//! Usage: bench-slapd DIR [PRELOAD.ldif]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::PathBuf;

use scimbridge_testkit::slapd::{Slapd, SlapdOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: bench-slapd DIR [PRELOAD.ldif]"));
    let preload = args.next().map(PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    let slapd = Slapd::start_with(
        &dir,
        SlapdOptions {
            preload: preload.as_deref(),
            ..SlapdOptions::default()
        },
    );
    println!("{}", slapd.url);
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(slapd);
}
