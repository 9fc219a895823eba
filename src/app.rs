//! The commands: what `main` runs for `scan`, `simulate` and `demo`.
//!
//! Each returns the exit code to use or a fatal error; none calls `exit`.

use anyhow::{Context, bail};

use crate::api::endpoint::EndpointResolver;
use crate::cli::{DemoArgs, ScanArgs, SimulateArgs};
use crate::credentials::{self, Credentials, Lookup};
use crate::exit::Exit;
use crate::inventory::Inventory;
use crate::scan::shutdown::Shutdown;
use crate::scan::{self, ScanOutcome};
use crate::sim::{Scenario, Simulator};

/// The command that resumes the scan in progress, once its run folder exists.
pub static RESUME_HINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// How many inventory warnings are printed one by one before they are only counted.
const MAX_PRINTED_WARNINGS: usize = 20;

/// Runs `taurus-audit scan`.
pub fn scan(
    args: &ScanArgs,
    lookup: &Lookup,
    shutdown: &Shutdown,
    quiet: bool,
) -> anyhow::Result<Exit> {
    scan_into_run(args, lookup, shutdown, quiet).map(|(exit, _)| exit)
}

/// Runs a scan and returns its exit code and run folder.
fn scan_into_run(
    args: &ScanArgs,
    lookup: &Lookup,
    shutdown: &Shutdown,
    quiet: bool,
) -> anyhow::Result<(Exit, std::path::PathBuf)> {
    let resolver = EndpointResolver::new(args.endpoint.as_deref(), args.region.as_deref())?;
    let started = std::time::Instant::now();
    let inventory = Inventory::load(&args.inventory, resolver)?;
    log::info!(
        "inventory: {} rows in {} files, {} projects, {} endpoints, validated in {:.2}s",
        inventory.total_rows,
        inventory.files.len(),
        inventory.projects.len(),
        inventory.endpoints.len(),
        started.elapsed().as_secs_f64()
    );
    print_warnings(&inventory);
    let credentials = Credentials::load(lookup, &inventory.projects)?;
    let use_env_proxy = inventory.endpoints.iter().any(|e| {
        crate::api::endpoint::Endpoint::parse(e)
            .map(|e| !e.is_loopback())
            .unwrap_or(true)
    });
    let mut config = crate::config::scan_config(args, use_env_proxy)?;
    config.progress &= !quiet;
    let prepared = scan::prepare(&config, &inventory)?;
    // Kept for a second Ctrl-C, which exits before the summary is printed.
    let _ = RESUME_HINT.set(resume_command(args, &prepared.run_dir));
    if !quiet {
        // Printed first, so a run that is killed can still be found and resumed.
        let resumed = prepared.resumed_rows();
        let already = if resumed > 0 {
            format!(" ({resumed} already checked)")
        } else {
            String::new()
        };
        eprintln!(
            "taurus-audit: scanning {} rows{already} into {}",
            inventory.total_rows,
            prepared.run_dir.display()
        );
    }
    let outcome = scan::execute(prepared, &config, &inventory, &credentials, shutdown)?;
    Ok((finish(&outcome, quiet, args), outcome.run_dir.clone()))
}

fn print_warnings(inventory: &Inventory) {
    for warning in inventory.warnings.iter().take(MAX_PRINTED_WARNINGS) {
        log::warn!("{warning}");
    }
    if inventory.warnings.len() > MAX_PRINTED_WARNINGS {
        log::warn!(
            "{} more inventory warnings not shown; they do not stop the scan",
            inventory.warnings.len() - MAX_PRINTED_WARNINGS
        );
    }
}

/// Prints the run folder on stdout and the summary on stderr, and picks the exit code.
fn finish(outcome: &ScanOutcome, quiet: bool, args: &ScanArgs) -> Exit {
    let summary = &outcome.summary;
    println!("{}", outcome.run_dir.display());
    let seconds = outcome.elapsed.as_secs_f64();
    if !quiet {
        let source = if outcome.simulator {
            " (answers from the simulator)"
        } else {
            ""
        };
        eprintln!(
            "taurus-audit: {}: {} on, {} off, {} not found, {}, {} not checked; {} in {:.1}s ({:.1}/s){source}",
            count(summary.total, "instance"),
            summary.on,
            summary.off,
            summary.not_found,
            count(summary.error, "error"),
            summary.not_checked,
            count(outcome.requests, "request"),
            seconds,
            outcome.requests as f64 / seconds.max(0.001),
        );
    }
    for reason in &outcome.rejected_credentials {
        eprintln!("taurus-audit: {reason}");
    }
    if let Some(stop) = outcome.interrupted {
        let signal = stop.signal_name().unwrap_or("a stop request");
        eprintln!(
            "taurus-audit: interrupted by {signal}; {} rows are not_checked. The reports in {} are marked incomplete.",
            summary.not_checked,
            outcome.run_dir.display()
        );
        eprintln!(
            "To check the remaining rows, run:\n  {}",
            resume_command(args, &outcome.run_dir)
        );
    }
    if !outcome.rejected_credentials.is_empty()
        && summary.on + summary.off == 0
        && summary.total > 0
    {
        eprintln!("taurus-audit: no row could be checked because the credentials were rejected");
        return Exit::Failed;
    }
    Exit::from_scan(summary, outcome.interrupted)
}

/// Formats a count with its noun, in the singular for one.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Builds the command that resumes this scan, from its settings, quoting
/// what a shell would split. Credentials come from the environment as before.
fn resume_command(args: &ScanArgs, run_dir: &std::path::Path) -> String {
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "taurus-audit".to_string());
    let mut words: Vec<String> = vec![program, "scan".into(), "--inventory".into()];
    words.extend(args.inventory.iter().map(|p| p.display().to_string()));
    let mut flag = |name: &str, value: String| {
        words.push(name.to_string());
        words.push(value);
    };
    if let Some(region) = &args.region {
        flag("--region", region.clone());
    }
    if let Some(endpoint) = &args.endpoint {
        flag("--endpoint", endpoint.clone());
    }
    if let Some(path) = &args.token_file {
        flag("--token-file", path.display().to_string());
    }
    if let Some(path) = &args.token_map {
        flag("--token-map", path.display().to_string());
    }
    flag("--rate", args.rate.to_string());
    flag("--concurrency", args.concurrency.to_string());
    flag("--timeout", args.timeout.to_string());
    flag("--max-attempts", args.max_attempts.to_string());
    flag("--row-budget", args.row_budget.to_string());
    flag("--language", args.language.header_value().to_string());
    flag("--resume", run_dir.display().to_string());
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `taurus-audit simulate` until a stop is requested.
pub fn simulate(args: &SimulateArgs, shutdown: &Shutdown) -> anyhow::Result<Exit> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::from_json("{}")?,
    };
    if let Some(quota) = args.quota {
        scenario.quota_per_second = Some(quota);
    }
    if let Some(latency) = args.latency_ms {
        scenario.latency_ms = latency;
    }
    add_env_credentials(&mut scenario);
    if scenario.tokens.is_empty() && scenario.keys.is_empty() {
        bail!(
            "the simulator needs at least one credential to accept: list tokens or keys in the scenario file, or set {} (or {} and {}) in its environment",
            credentials::TOKEN_ENV,
            credentials::AK_ENV,
            credentials::SK_ENV
        );
    }
    let simulator = Simulator::start(args.listen, scenario)?;
    println!("listening on {}", simulator.url());
    while !shutdown.is_triggered() {
        shutdown.sleep(std::time::Duration::from_secs(3600));
    }
    let stats = simulator.stats();
    eprintln!(
        "taurus-audit simulate: served {} requests ({} throttled)",
        stats.requests, stats.throttled
    );
    simulator.shutdown();
    Ok(Exit::Compliant)
}

/// Lets the simulator accept the credentials in its environment, so a scan
/// started from the same shell authenticates without a scenario file.
fn add_env_credentials(scenario: &mut Scenario) {
    if let Ok(token) = std::env::var(credentials::TOKEN_ENV)
        && !token.trim().is_empty()
    {
        scenario.tokens.push(crate::sim::TokenGrant {
            token: token.trim().to_string(),
            projects: None,
        });
    }
    if let (Ok(ak), Ok(sk)) = (
        std::env::var(credentials::AK_ENV),
        std::env::var(credentials::SK_ENV),
    ) {
        let security_token = std::env::var(credentials::SECURITY_TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty());
        scenario.keys.push(crate::sim::AccessKey {
            ak,
            sk,
            security_token,
        });
    }
}

/// Runs `taurus-audit demo`: the simulator on an ephemeral loopback port and a
/// scan of the example inventory. Exits 0 whatever the scan found.
pub fn demo(args: &DemoArgs, shutdown: &Shutdown, quiet: bool) -> anyhow::Result<Exit> {
    let mut scenario = Scenario::from_file(&args.scenario).with_context(|| {
        format!(
            "the demo needs {}; run it from the repository root",
            args.scenario.display()
        )
    })?;
    // The demo signs with a throwaway AK/SK, as a nightly audit of many projects would.
    let ak = format!(
        "DEMO{}",
        crate::sim::random_request_id()[..16].to_ascii_uppercase()
    );
    let sk = crate::sim::random_request_id();
    scenario.keys.push(crate::sim::AccessKey {
        ak: ak.clone(),
        sk: sk.clone(),
        security_token: None,
    });
    let simulator = Simulator::start("127.0.0.1:0".parse().expect("valid address"), scenario)?;
    if !quiet {
        eprintln!("demo: simulator listening on {}", simulator.url());
    }

    let scan_args = ScanArgs {
        inventory: vec![args.inventory.clone()],
        region: None,
        endpoint: Some(simulator.url()),
        rate: args.rate,
        concurrency: args.concurrency,
        timeout: crate::cli::DEFAULT_TIMEOUT,
        max_attempts: crate::cli::DEFAULT_MAX_ATTEMPTS,
        row_budget: crate::cli::DEFAULT_ROW_BUDGET,
        out_dir: args.out_dir.clone(),
        token_file: None,
        token_map: None,
        language: crate::api::Language::EnUs,
        resume: None,
        no_progress: false,
        backoff_scale: 1.0,
    };
    let lookup = Lookup {
        env: [
            (credentials::AK_ENV.to_string(), ak),
            (credentials::SK_ENV.to_string(), sk),
        ]
        .into_iter()
        .collect(),
        ..Lookup::default()
    };
    let result = scan_into_run(&scan_args, &lookup, shutdown, quiet);
    simulator.shutdown();
    let (code, run_dir) = result?;
    if !quiet {
        eprintln!(
            "demo: `taurus-audit scan` would exit with {} here; offenders are listed in {}",
            code.code(),
            run_dir.join(crate::report::OFF_CSV).display()
        );
    }
    Ok(Exit::Compliant)
}
