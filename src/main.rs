//! The `sagasim` binary: parses the command line and hands it to
//! [`sagasim::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    sagasim::cli::main_with(sagasim::cli::Cli::parse())
}
