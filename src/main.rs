//! The `taurus-audit` binary: parses flags, sets up logging and signals,
//! runs a command and maps its outcome to the exit code.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use taurus_audit::cli::{Cli, Command};
use taurus_audit::credentials::Lookup;
use taurus_audit::exit::Exit;
use taurus_audit::scan::shutdown::{Shutdown, Stop};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let shutdown = Arc::new(Shutdown::new());
    let is_scan = matches!(cli.command, Command::Scan(_) | Command::Demo(_));
    if let Err(err) = watch_signals(Arc::clone(&shutdown), is_scan) {
        eprintln!("taurus-audit: error: cannot install signal handlers: {err}");
        return ExitCode::from(Exit::Failed.code());
    }
    let result = match &cli.command {
        Command::Scan(args) => {
            let lookup = Lookup::from_env(args.token_file.clone(), args.token_map.clone());
            taurus_audit::app::scan(args, &lookup, &shutdown, cli.quiet)
        }
        Command::Simulate(args) => taurus_audit::app::simulate(args, &shutdown),
        Command::Demo(args) => taurus_audit::app::demo(args, &shutdown, cli.quiet),
    };
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            eprintln!("taurus-audit: error: {err:#}");
            ExitCode::from(Exit::Failed.code())
        }
    }
}

/// Logs go to stderr: warnings by default, more with -v, only errors with -q.
/// `RUST_LOG` overrides the level for debugging.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) => log::LevelFilter::Warn,
        (false, 1) => log::LevelFilter::Info,
        (false, 2) => log::LevelFilter::Debug,
        (false, _) => log::LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    // Dependencies' own debug output is noise at -vv.
    builder.filter_module("rustls", log::LevelFilter::Warn);
    builder.filter_module("ureq", log::LevelFilter::Warn);
    builder.filter_module("ureq_proto", log::LevelFilter::Warn);
    builder.filter_module("hyper", log::LevelFilter::Warn);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    // Messages read like the tool's own lines; -v and more add a timestamp for logs.
    builder.format(move |buf, record| {
        use std::io::Write;
        let level = match record.level() {
            log::Level::Warn => "warning".to_string(),
            other => other.as_str().to_ascii_lowercase(),
        };
        if verbose > 0 {
            writeln!(
                buf,
                "[{}] taurus-audit: {level}: {}",
                buf.timestamp_seconds(),
                record.args()
            )
        } else {
            writeln!(buf, "taurus-audit: {level}: {}", record.args())
        }
    });
    builder.target(env_logger::Target::Stderr).init();
}

/// Stops the command on the first SIGINT or SIGTERM, so a scan writes its
/// reports. A second SIGINT exits at once, and a scan's journal still allows a resume.
fn watch_signals(shutdown: Arc<Shutdown>, is_scan: bool) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for signal in signals.forever() {
            if shutdown.is_triggered() && signal == SIGINT {
                if let Some(hint) = taurus_audit::app::RESUME_HINT.get() {
                    eprintln!("taurus-audit: second interrupt, exiting now. To check the remaining rows, run:\n  {hint}");
                } else if is_scan {
                    eprintln!("taurus-audit: second interrupt, exiting now; the journal in the run folder allows --resume");
                } else {
                    eprintln!("taurus-audit: second interrupt, exiting now");
                }
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
            let stop = if signal == SIGINT { Stop::Interrupt } else { Stop::Terminate };
            if is_scan {
                let again = if signal == SIGINT { " (Ctrl-C again exits at once)" } else { "" };
                eprintln!(
                    "taurus-audit: {} received: finishing requests in flight, then writing the reports{again}",
                    stop.signal_name().unwrap_or("signal")
                );
            }
            shutdown.trigger(stop);
        }
    })?;
    Ok(())
}
