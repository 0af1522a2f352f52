use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    sagasim::cli::main_with(sagasim::cli::Cli::parse())
}
