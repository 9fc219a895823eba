//! The second stage of configuration: checked values built from the flags,
//! before anything is read or sent. Workers only ever see these.

use std::time::Duration;

use anyhow::bail;

use crate::api::ClientSettings;
use crate::cli::ScanArgs;
use crate::scan::ScanConfig;
use crate::scan::retry::RetryPolicy;

/// Highest accepted `--rate`, far above any per-user API quota.
const MAX_RATE: f64 = 10_000.0;
/// Highest accepted `--concurrency`.
const MAX_CONCURRENCY: usize = 512;
/// Longest accepted `--timeout`, in seconds.
const MAX_TIMEOUT: f64 = 600.0;
/// Maximum wait for a connection, however long `--timeout` is.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks the scan flags and builds the scan configuration. `use_env_proxy`
/// is true when any endpoint is off the machine.
pub fn scan_config(args: &ScanArgs, use_env_proxy: bool) -> anyhow::Result<ScanConfig> {
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= MAX_RATE) {
        bail!(
            "--rate {} is out of range; give requests per second above 0 and at most {MAX_RATE}",
            args.rate
        );
    }
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        bail!(
            "--concurrency {} is out of range; give 1 to {MAX_CONCURRENCY}",
            args.concurrency
        );
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= MAX_TIMEOUT) {
        bail!(
            "--timeout {} is out of range; give seconds above 0 and at most {MAX_TIMEOUT}",
            args.timeout
        );
    }
    if args.max_attempts == 0 || args.max_attempts > 20 {
        bail!(
            "--max-attempts {} is out of range; give 1 to 20",
            args.max_attempts
        );
    }
    if !(args.row_budget.is_finite() && args.row_budget >= args.timeout) {
        bail!(
            "--row-budget {} must be at least --timeout ({}), so a row has time for one whole request",
            args.row_budget,
            args.timeout
        );
    }
    if !(args.backoff_scale.is_finite() && args.backoff_scale >= 0.0) {
        bail!("--backoff-scale must be 0 or more");
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    Ok(ScanConfig {
        rate: args.rate,
        concurrency: args.concurrency,
        client: ClientSettings {
            timeout,
            connect_timeout: timeout.min(MAX_CONNECT_TIMEOUT),
            language: args.language,
            use_env_proxy,
        },
        retry: RetryPolicy {
            max_attempts: args.max_attempts,
            row_budget: Duration::from_secs_f64(args.row_budget),
            delay_scale: args.backoff_scale,
            ..RetryPolicy::default()
        },
        out_dir: args.out_dir.clone(),
        resume: args.resume.clone(),
        progress: !args.no_progress,
    })
}
