//! Command-line flags as clap parses them. [`crate::config`] turns them into
//! a checked configuration; nothing here is trusted until then.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api::Language;
use crate::exit::EXIT_CODES_HELP;

/// Default `--rate`: requests per second across all workers.
pub const DEFAULT_RATE: f64 = 10.0;
/// Default `--concurrency`: parallel requests.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default `--timeout`: seconds for one whole request.
pub const DEFAULT_TIMEOUT: f64 = 30.0;
/// Default `--max-attempts`: requests per row, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default `--row-budget`: seconds per row, retries and waits included.
pub const DEFAULT_ROW_BUDGET: f64 = 300.0;

const CREDENTIALS_HELP: &str = "\
Credentials (never accepted as command-line values), first found wins:
  --token-map FILE                   CSV project_id,token: one token per project
  --token-file FILE                  one IAM token for every other project
  TAURUS_AUDIT_TOKEN                 an IAM token
  HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK [, HUAWEICLOUD_SDK_SECURITY_TOKEN]
  $HUAWEICLOUD_SDK_CREDENTIALS_FILE or ~/.huaweicloud/credentials, section [basic]";

/// Checks that encrypted backup is on for every TaurusDB instance in CSV inventories.
#[derive(Debug, Parser)]
#[command(name = "taurus-audit", version, about, after_help = EXIT_CODES_HELP, propagate_version = true)]
pub struct Cli {
    /// Log more: -v for stage timings and rate changes, -vv for every retry, -vvv for everything.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Log only errors and print no summary line or progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan inventories and write compliance reports into a new run folder.
    #[command(after_help = format!("{CREDENTIALS_HELP}\n\n{EXIT_CODES_HELP}"))]
    Scan(ScanArgs),
    /// Run the local TaurusDB API simulator on a loopback address until interrupted.
    ///
    /// It accepts the credentials listed in the scenario, and those in its own
    /// environment: TAURUS_AUDIT_TOKEN, HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK.
    Simulate(SimulateArgs),
    /// Scan the example inventory against the simulator and write real reports.
    Demo(DemoArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ScanArgs {
    /// Inventory CSV files, or folders whose *.csv files are read in name order.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub inventory: Vec<PathBuf>,

    /// Region for rows without a region or endpoint cell, e.g. cn-north-4.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// API endpoint for rows without an endpoint cell, e.g. https://gaussdb.cn-north-4.myhuaweicloud.com.
    /// Plain http:// only for loopback hosts.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Maximum requests per second across all workers, retries included (above 0, at
    /// most 10000). The API quota is per user and shared with every other tool on
    /// the account; the rate drops by itself when the API answers 429.
    #[arg(long, default_value_t = DEFAULT_RATE, value_name = "N")]
    pub rate: f64,

    /// Requests in flight at once (worker threads), 1 to 512.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_name = "N")]
    pub concurrency: usize,

    /// Seconds one request may take in all: connect (at most 10 s), send and read.
    /// At most 600.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT, value_name = "SECONDS")]
    pub timeout: f64,

    /// Requests per row at most, the first included, 1 to 20; 429, 5xx, resets and
    /// timeouts are retried.
    #[arg(long, default_value_t = DEFAULT_MAX_ATTEMPTS, value_name = "N")]
    pub max_attempts: u32,

    /// Seconds one row may take in all, retries and waits included; at least --timeout.
    #[arg(long, default_value_t = DEFAULT_ROW_BUDGET, value_name = "SECONDS")]
    pub row_budget: f64,

    /// Parent folder of run folders; each run writes into a new DIR/<UTC start time>/.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out_dir: PathBuf,

    /// File that contains one IAM token, sent as X-Auth-Token for the projects the
    /// token map does not list.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// CSV file with columns project_id,token: one IAM token per project.
    #[arg(long, value_name = "FILE")]
    pub token_map: Option<PathBuf>,

    /// Language of the API's error messages.
    #[arg(long, value_enum, default_value = "en-us")]
    pub language: Language,

    /// Complete an interrupted run: check only rows without a final result in
    /// RUN_DIR's journal and write its final reports. The inventory must be unchanged.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,

    /// Never draw a progress bar (it is drawn only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,

    /// Multiplies every backoff wait except Retry-After; for tests of the retry logic.
    #[arg(long, default_value_t = 1.0, hide = true)]
    pub backoff_scale: f64,
}

#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// Loopback address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Scenario JSON: credentials, quota, latency and per-instance responses (docs/simulator.md).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Requests per second per identity before responding with 429 (overrides the scenario).
    #[arg(long, value_name = "N")]
    pub quota: Option<u32>,

    /// Milliseconds added before every response (overrides the scenario).
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Parent folder of run folders.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out_dir: PathBuf,

    /// The example inventory to scan.
    #[arg(long, default_value = "inventories/example.csv", value_name = "PATH")]
    pub inventory: PathBuf,

    /// The simulator scenario that goes with the example inventory.
    #[arg(
        long,
        default_value = "inventories/example-scenario.json",
        value_name = "FILE"
    )]
    pub scenario: PathBuf,

    /// Requests per second (the simulator has no quota unless its scenario sets one).
    #[arg(long, default_value_t = 200.0, value_name = "N")]
    pub rate: f64,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
}
