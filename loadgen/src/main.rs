//! ringload: the bundled load generator (`ringload run`) and benchmark
//! origin (`ringload serve`) of ringway, and a plain TCP relay (`ringload
//! relay`) to measure the proxies against. Thread-per-core on monoio.

mod chunked;
mod cli;
mod fields;
mod relay;
mod run;
mod runtime;
mod serve;
mod units;
mod url;

use clap::error::ErrorKind as ClapErrorKind;
use clap::Parser;

use cli::{Cli, Command};

/// Exit code for bad arguments.
const USAGE: i32 = 2;

fn usage_error(message: &str) -> ! {
    eprintln!("ringload: error: {message}");
    std::process::exit(USAGE);
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ClapErrorKind::DisplayHelp
            | ClapErrorKind::DisplayVersion
            | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                // One line: clap's first paragraph, without "error: ".
                let text = e.render().to_string();
                let first = text.trim().split("\n\n").next().unwrap_or_default();
                let line = first.lines().map(str::trim).collect::<Vec<_>>().join(" ");
                usage_error(line.trim_start_matches("error: "))
            }
        },
    };
    let code = match cli.command {
        Command::Run(args) => match args.validate() {
            Ok(cfg) => run::run(cfg),
            Err(e) => usage_error(&e),
        },
        Command::Serve(args) => match args.validate() {
            Ok(cfg) => serve::serve(cfg),
            Err(e) => usage_error(&e),
        },
        Command::Relay(args) => match args.validate() {
            Ok(cfg) => relay::relay(cfg),
            Err(e) => usage_error(&e),
        },
    };
    std::process::exit(code);
}
