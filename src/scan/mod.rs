//! The scan: a dispatcher, a rayon pool of workers and one reporter.
//!
//! The dispatcher streams the validated inventory into a bounded work queue.
//! Each worker takes a row, passes the key-lockout guard and the shared rate
//! limiter before every attempt, sends the request through the one shared
//! HTTP agent, classifies the response and retries by the policy. Findings go
//! over a channel to the reporter on the calling thread, the only writer: it
//! journals each finding as it arrives, puts findings back in inventory order,
//! writes the reports, counts, and drives the progress bar.

pub mod gate;
pub mod journal;
pub mod rate;
pub mod retry;
pub mod shutdown;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use time::OffsetDateTime;

use crate::api::classify::{self, Verdict};
use crate::api::{ApiClient, ClientSettings, Exchange};
use crate::credentials::{Credential, Credentials};
use crate::finding::{ErrorKind, Finding, Status};
use crate::inventory::{Inventory, Row};
use crate::report::{ReportWriter, RunInfo, Summary};
use gate::{AuthGate, Pass};
use journal::{Journal, JournalEntry, Manifest};
use rate::AdaptiveRate;
use retry::{Decision, RetryPolicy};
use shutdown::{Shutdown, Stop};

/// The largest difference between the local clock and the API's that the
/// gateway accepts in `X-Sdk-Date`.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Everything the scan needs, resolved and checked before the first request.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Ceiling of requests per second across all workers.
    pub rate: f64,
    pub concurrency: usize,
    pub client: ClientSettings,
    pub retry: RetryPolicy,
    /// Parent folder of run folders.
    pub out_dir: PathBuf,
    /// The folder of an interrupted run to complete.
    pub resume: Option<PathBuf>,
    /// Whether to draw a progress bar (only ever on a terminal).
    pub progress: bool,
}

/// The result of a finished or stopped scan, for `main`.
#[derive(Debug)]
pub struct ScanOutcome {
    pub run_dir: PathBuf,
    pub summary: Summary,
    /// Set when a signal stopped the scan.
    pub interrupted: Option<Stop>,
    /// One message per credential the API rejected.
    pub rejected_credentials: Vec<String>,
    pub elapsed: Duration,
    /// Requests sent in this invocation, retries included.
    pub requests: u64,
    pub simulator: bool,
}

/// A row for a worker, with the index of its credential.
struct WorkItem {
    row: Row,
    credential: usize,
}

/// A message to the reporter.
enum Event {
    /// A row's finding; `journal` is false for findings already in the journal.
    Done {
        row: Row,
        finding: Finding,
        journal: bool,
        from_simulator: bool,
    },
    /// A row that repeats the pair of the row at `first_seq`.
    Duplicate { row: Row, first_seq: u64 },
    /// The inventory could not be read again; the scan must stop.
    Failed(anyhow::Error),
}

/// State shared by the workers.
struct Workers<'a> {
    client: ApiClient,
    credentials: &'a Credentials,
    gate: AuthGate,
    rate: AdaptiveRate,
    retry: RetryPolicy,
    shutdown: &'a Shutdown,
    requests: std::sync::atomic::AtomicU64,
}

/// A run folder ready for the scan: new, or an interrupted run's with its journal read.
pub struct PreparedRun {
    pub run_dir: PathBuf,
    manifest: Manifest,
    resumed: HashMap<u64, JournalEntry>,
}

impl PreparedRun {
    /// Returns how many rows already have a final result from an earlier attempt.
    pub fn resumed_rows(&self) -> usize {
        self.resumed.len()
    }
}

/// Creates the run folder and its manifest, or checks the one to resume.
pub fn prepare(config: &ScanConfig, inventory: &Inventory) -> anyhow::Result<PreparedRun> {
    let (run_dir, manifest, resumed) = prepare_run_dir(config, inventory)?;
    Ok(PreparedRun {
        run_dir,
        manifest,
        resumed,
    })
}

/// Scans into a prepared run folder and writes the reports. Errors are fatal
/// setup or output failures; rows that fail are findings inside the outcome.
pub fn execute(
    prepared: PreparedRun,
    config: &ScanConfig,
    inventory: &Inventory,
    credentials: &Credentials,
    shutdown: &Shutdown,
) -> anyhow::Result<ScanOutcome> {
    let started = Instant::now();
    let PreparedRun {
        run_dir,
        manifest,
        mut resumed,
    } = prepared;
    let resumed_rows = resumed.len() as u64;
    let mut journal = Journal::open(&run_dir)?;
    let mut writer = ReportWriter::create(&run_dir, &inventory.label_names)?;
    if resumed_rows > 0 {
        log::info!(
            "resume: {resumed_rows} rows already have a final result in the journal and are not asked again"
        );
    }

    let workers = Workers {
        client: ApiClient::new(&config.client),
        credentials,
        gate: AuthGate::new(),
        rate: AdaptiveRate::new(config.rate),
        retry: config.retry.clone(),
        shutdown,
        requests: Default::default(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.concurrency)
        .thread_name(|i| format!("worker-{i}"))
        .build()
        .context("cannot start the worker pool")?;
    let progress = progress_bar(config.progress, inventory.total_rows);

    let (work_tx, work_rx) = sync_channel::<WorkItem>(config.concurrency * 2);
    let (event_tx, event_rx) = sync_channel::<Event>(config.concurrency * 4);
    let work_rx = Mutex::new(work_rx);

    let mut simulator = false;
    let report_result = std::thread::scope(|scope| {
        let dispatcher_events = event_tx.clone();
        let resumed = &mut resumed;
        scope.spawn(move || {
            dispatch(
                inventory,
                credentials,
                resumed,
                shutdown,
                work_tx,
                dispatcher_events,
            )
        });
        let workers = &workers;
        let work_rx = &work_rx;
        let worker_events = event_tx;
        scope.spawn(move || {
            pool.scope(|pool_scope| {
                for _ in 0..config.concurrency {
                    let events = worker_events.clone();
                    pool_scope.spawn(move |_| work(workers, work_rx, events));
                }
            });
        });
        report(
            inventory,
            &mut writer,
            &mut journal,
            event_rx,
            &progress,
            &mut simulator,
            shutdown,
        )
    });
    progress.finish_and_clear();
    report_result?;

    let interrupted = shutdown.reason().filter(|s| *s != Stop::Abort);
    let run = RunInfo {
        id: manifest.run_id.clone(),
        started_at: manifest.started_at.clone(),
        finished_at: format_time(OffsetDateTime::now_utc()),
        complete: writer.summary().not_checked == 0,
        interrupted_by: interrupted.and_then(Stop::signal_name).map(str::to_string),
        resumed_rows,
        inventory: inventory.files.clone(),
        endpoints: inventory.endpoints.clone(),
        rate: config.rate,
        concurrency: config.concurrency,
        timeout_seconds: config.client.timeout.as_secs_f64(),
        max_attempts: config.retry.max_attempts,
        row_budget_seconds: config.retry.row_budget.as_secs_f64(),
        language: config.client.language.header_value().to_string(),
        credential_sources: credentials.describe_sources(),
        simulator,
    };
    let summary = writer.finish(&run)?;
    if run.complete {
        let manifest = Manifest {
            complete: true,
            ..manifest
        };
        manifest.write(&run_dir)?;
    }
    let rejected_credentials = workers.gate.rejections();
    Ok(ScanOutcome {
        run_dir,
        summary,
        interrupted,
        rejected_credentials,
        elapsed: started.elapsed(),
        requests: workers.requests.load(std::sync::atomic::Ordering::Relaxed),
        simulator,
    })
}

/// Creates a new run folder, or opens the one to resume after checking its manifest.
fn prepare_run_dir(
    config: &ScanConfig,
    inventory: &Inventory,
) -> anyhow::Result<(PathBuf, Manifest, HashMap<u64, JournalEntry>)> {
    if let Some(dir) = &config.resume {
        let manifest = Manifest::read(dir)?;
        manifest.check_inventory(&inventory.files)?;
        manifest.check_resumable(dir, &inventory.endpoints)?;
        remove_partial_files(dir);
        let resumed = journal::read_journal(dir)?;
        return Ok((dir.clone(), manifest, resumed));
    }
    let now = OffsetDateTime::now_utc();
    let run_dir = create_run_dir(&config.out_dir, &crate::api::signer::format_sdk_date(now))?;
    let manifest = Manifest {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        started_at: format_time(now),
        inventory: inventory.files.clone(),
        endpoints: inventory.endpoints.clone(),
        complete: false,
    };
    manifest.write(&run_dir)?;
    Ok((run_dir, manifest, HashMap::new()))
}

/// Removes the temporary files of an attempt that was killed while writing its reports.
fn remove_partial_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".partial-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates `out_dir/<id>`, adding `-2`, `-3`, ... when that folder exists, so
/// no run ever writes into another's folder.
pub fn create_run_dir(out_dir: &Path, id: &str) -> anyhow::Result<PathBuf> {
    if out_dir.exists() && !out_dir.is_dir() {
        bail!(
            "the output folder {} is a file, not a folder; give --out-dir a folder",
            out_dir.display()
        );
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create the output folder {}", out_dir.display()))?;
    for suffix in 1..10_000u32 {
        let name = if suffix == 1 {
            id.to_string()
        } else {
            format!("{id}-{suffix}")
        };
        let candidate = out_dir.join(name);
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot create the run folder {}", candidate.display())
                });
            }
        }
    }
    bail!(
        "cannot find a free run folder name for {id} in {}",
        out_dir.display()
    )
}

/// Formats a time as RFC 3339 UTC with whole seconds, e.g. `2026-12-04T19:40:22Z`.
pub fn format_time(at: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// Streams rows to the workers, or straight to the reporter when no request is needed.
fn dispatch(
    inventory: &Inventory,
    credentials: &Credentials,
    resumed: &mut HashMap<u64, JournalEntry>,
    shutdown: &Shutdown,
    work: SyncSender<WorkItem>,
    events: SyncSender<Event>,
) {
    for item in inventory.rows() {
        let row = match item {
            Ok(row) => row,
            Err(err) => {
                let _ = events.send(Event::Failed(err));
                return;
            }
        };
        let event = if let Some(&first_seq) = inventory.duplicate_of.get(&row.seq) {
            Event::Duplicate { row, first_seq }
        } else if let Some(entry) = resumed
            .remove(&row.seq)
            .filter(|e| e.project_id == row.project_id && e.instance_id == row.instance_id)
        {
            Event::Done {
                row,
                finding: entry.finding,
                journal: false,
                from_simulator: entry.simulator,
            }
        } else if shutdown.is_triggered() {
            Event::Done {
                row,
                finding: not_checked(0),
                journal: false,
                from_simulator: false,
            }
        } else {
            let credential = credentials
                .index_for(&row.project_id)
                .expect("credentials cover every project");
            if work.send(WorkItem { row, credential }).is_err() {
                return;
            }
            continue;
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

/// Checks rows from the queue until it is closed.
fn work(workers: &Workers, queue: &Mutex<Receiver<WorkItem>>, events: SyncSender<Event>) {
    let mut rng = rand::rng();
    loop {
        let item = match queue.lock().expect("work queue lock").recv() {
            Ok(item) => item,
            Err(_) => return,
        };
        let (finding, from_simulator) = workers.check(&item.row, item.credential, &mut rng);
        if events
            .send(Event::Done {
                row: item.row,
                finding,
                journal: true,
                from_simulator,
            })
            .is_err()
        {
            return;
        }
    }
}

impl Workers<'_> {
    /// Checks one row: every attempt passes the auth gate and the rate limiter first.
    fn check(
        &self,
        row: &Row,
        credential_index: usize,
        rng: &mut impl rand::Rng,
    ) -> (Finding, bool) {
        let identity = &self.credentials.identities[credential_index];
        // A token is scoped to one project, so a rejection for one project proves
        // nothing about another. An AK/SK is one key for every project.
        let gate_key = match identity.credential {
            Credential::Token(_) => (credential_index, row.project_id.clone()),
            Credential::AkSk { .. } => (credential_index, String::new()),
        };
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut from_simulator = false;
        loop {
            let trial = match self.gate.pass(&gate_key, self.shutdown) {
                Pass::Send { trial } => trial,
                Pass::Stopping => return (not_checked(attempts), from_simulator),
                Pass::Rejected(reason) => {
                    let finding = Finding::unsent(
                        Status::Error,
                        Some(ErrorKind::AuthFailed),
                        format!(
                            "not sent: the API rejected this row's credential on an earlier row ({reason})"
                        ),
                    );
                    return (
                        Finding {
                            attempts,
                            ..finding
                        },
                        from_simulator,
                    );
                }
            };
            let (exchange, verdict) = {
                // Gives the trial slot back once the response is in, on every way out.
                let _slot = TrialSlot {
                    gate: &self.gate,
                    key: &gate_key,
                    active: trial,
                };
                if !self.rate.acquire(self.shutdown) {
                    return (not_checked(attempts), from_simulator);
                }
                let exchange = self.client.get_encryption(
                    &row.endpoint,
                    &row.project_id,
                    &row.instance_id,
                    &identity.credential,
                );
                attempts += 1;
                self.requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                from_simulator |= exchange.from_simulator;
                let verdict = classify::classify(&exchange.answer);
                // Rejected or proven before the slot is given back, so no other
                // worker sends with a credential that has just failed.
                if classify::is_auth_rejection(&verdict) {
                    let reason = rejection_reason(
                        &identity.label,
                        &identity.credential,
                        &row.project_id,
                        &verdict,
                        &exchange,
                    );
                    if self.gate.reject(&gate_key, reason.clone()) {
                        // The summary repeats the reason at the end; this marks when it happened.
                        log::debug!("{reason}");
                    }
                    return (finding_from(&verdict, &exchange, attempts), from_simulator);
                }
                if classify::proves_credential(&verdict) {
                    self.gate.prove(&gate_key);
                }
                (exchange, verdict)
            };
            match verdict.error_kind {
                Some(ErrorKind::Throttled) => self.rate.on_throttled(),
                _ if verdict.http_status.is_some() => self.rate.on_success(),
                _ => {}
            }

            let decision = self
                .retry
                .decide(verdict.retry, attempts, started.elapsed(), rng);
            let wait = match decision {
                Decision::RetryAfter(wait) => wait,
                Decision::Final | Decision::AttemptsExhausted | Decision::BudgetExhausted => {
                    let reason = match decision {
                        Decision::AttemptsExhausted => Some("--max-attempts is reached"),
                        Decision::BudgetExhausted => Some("the next wait would pass --row-budget"),
                        _ => None,
                    };
                    if let Some(reason) = reason {
                        log::debug!(
                            "project {} instance {}: giving up after {attempts} attempts, because {reason}",
                            row.project_id,
                            row.instance_id
                        );
                    }
                    return (finding_from(&verdict, &exchange, attempts), from_simulator);
                }
            };
            log::debug!(
                "project {} instance {}: attempt {attempts} got {}, retrying in {:.2}s",
                row.project_id,
                row.instance_id,
                describe_verdict(&verdict),
                wait.as_secs_f64()
            );
            if !self.shutdown.sleep(wait) {
                return (not_checked(attempts), from_simulator);
            }
        }
    }
}

/// Gives back a trial slot of an unproven credential when dropped.
struct TrialSlot<'a> {
    gate: &'a AuthGate,
    key: &'a gate::GateKey,
    active: bool,
}

impl Drop for TrialSlot<'_> {
    fn drop(&mut self) {
        if self.active {
            self.gate.end_trial(self.key);
        }
    }
}

fn describe_verdict(verdict: &Verdict) -> String {
    match (verdict.http_status, verdict.error_kind) {
        (Some(status), Some(kind)) => format!("HTTP {status} ({})", kind.as_str()),
        (Some(status), None) => format!("HTTP {status}"),
        (None, Some(kind)) => format!(
            "{} ({})",
            kind.as_str(),
            verdict.error_msg.as_deref().unwrap_or("")
        ),
        (None, None) => "no answer".to_string(),
    }
}

/// Explains a rejected credential and how to check it, and names a skewed clock when the response shows one.
fn rejection_reason(
    label: &str,
    credential: &Credential,
    project_id: &str,
    verdict: &Verdict,
    exchange: &Exchange,
) -> String {
    let code = verdict.error_code.as_deref().unwrap_or("no error code");
    let mut reason = match credential {
        Credential::Token(_) => format!(
            "the API rejected the credentials ({label}) for project {project_id}: HTTP 401 {code}. The remaining rows of that project are not sent; check that the token is unexpired (tokens last 24 hours) and scoped to that project, or use AK/SK or --token-map for inventories that span projects"
        ),
        Credential::AkSk { .. } => format!(
            "the API rejected the credentials ({label}): HTTP 401 {code}. The remaining rows that use them are not sent, because the gateway locks an AK for 5 minutes after more than 5 consecutive failures; check that the AK and SK belong together, are active in IAM, and that temporary keys come with their security token"
        ),
    };
    if let Some(server_date) = exchange.server_date {
        let skew = match SystemTime::now().duration_since(server_date) {
            Ok(ahead) => ahead,
            Err(behind) => behind.duration(),
        };
        if skew > MAX_CLOCK_SKEW {
            reason.push_str(&format!(
                ". The local clock differs from the API's Date header by {} minutes, and signatures more than 15 minutes off are rejected: fix the clock (NTP) and try again",
                (skew.as_secs() + 30) / 60
            ));
        }
    }
    reason
}

fn not_checked(attempts: u32) -> Finding {
    let finding = Finding::unsent(
        Status::NotChecked,
        None,
        "the scan stopped before this row got a final answer; resume the run to check it"
            .to_string(),
    );
    Finding {
        attempts,
        ..finding
    }
}

fn finding_from(verdict: &Verdict, exchange: &Exchange, attempts: u32) -> Finding {
    Finding {
        status: verdict.status,
        error_kind: verdict.error_kind,
        http_status: verdict.http_status,
        error_code: verdict.error_code.clone(),
        error_msg: verdict.error_msg.clone(),
        checked_at: Some(format_time(exchange.finished_at)),
        request_id: exchange.request_id().map(str::to_string),
        attempts,
    }
}

/// Journals findings as they arrive and writes them in inventory order.
fn report(
    inventory: &Inventory,
    writer: &mut ReportWriter,
    journal: &mut Journal,
    events: Receiver<Event>,
    progress: &ProgressBar,
    simulator: &mut bool,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    // Findings that arrived ahead of their turn. Its size is about the rows
    // that finish while the oldest row in flight retries, not the inventory.
    let mut pending: BTreeMap<u64, (Row, Finding, Option<u64>)> = BTreeMap::new();
    let firsts_with_duplicates: HashSet<u64> = inventory.duplicate_of.values().copied().collect();
    let mut first_findings: HashMap<u64, (Finding, String)> = HashMap::new();
    let mut next_seq = 0u64;
    let mut max_pending = 0usize;
    let mut failure: Option<anyhow::Error> = None;

    for event in events {
        if failure.is_some() {
            // Stop sending at once, and drain so the workers can finish and exit.
            shutdown.trigger(Stop::Abort);
            continue;
        }
        match event {
            Event::Done {
                row,
                finding,
                journal: to_journal,
                from_simulator,
            } => {
                *simulator |= from_simulator;
                if to_journal && journal::is_final(&finding) {
                    let entry = JournalEntry {
                        seq: row.seq,
                        project_id: row.project_id.clone(),
                        instance_id: row.instance_id.clone(),
                        finding,
                        simulator: from_simulator,
                    };
                    if let Err(err) = journal.append(&entry) {
                        failure = Some(err);
                        continue;
                    }
                    pending.insert(row.seq, (row, entry.finding, None));
                } else {
                    pending.insert(row.seq, (row, finding, None));
                }
            }
            Event::Duplicate { row, first_seq } => {
                // The first row comes earlier in order, so its finding is written before
                // this row's turn comes. The finding here is a placeholder.
                pending.insert(
                    row.seq,
                    (
                        row,
                        Finding::unsent(Status::NotChecked, None, String::new()),
                        Some(first_seq),
                    ),
                );
            }
            Event::Failed(err) => {
                failure = Some(err);
                continue;
            }
        }
        max_pending = max_pending.max(pending.len());
        while let Some((row, finding, duplicate_of)) = pending.remove(&next_seq) {
            let source = format!("{}:{}", inventory.files[row.file].path.display(), row.line);
            let written = match duplicate_of {
                Some(first_seq) => {
                    let (first_finding, first_source) = first_findings
                        .get(&first_seq)
                        .expect("the first row of a duplicate is written before it");
                    writer.write(&row, &source, first_finding, Some(first_source))
                }
                None => {
                    if firsts_with_duplicates.contains(&row.seq) {
                        first_findings.insert(row.seq, (finding.clone(), source.clone()));
                    }
                    writer.write(&row, &source, &finding, None)
                }
            };
            if let Err(err) = written {
                failure = Some(err);
                break;
            }
            next_seq += 1;
            let summary = writer.summary();
            progress.set_position(summary.rows);
            progress.set_message(format!(
                "off {}  unchecked {}  {:.1} rows/s",
                summary.off,
                summary.unchecked(),
                progress.per_sec()
            ));
        }
    }
    log::debug!("reporter: at most {max_pending} findings waited for their turn");
    if let Some(err) = failure {
        shutdown.trigger(Stop::Abort);
        return Err(err);
    }
    if next_seq != inventory.total_rows {
        bail!(
            "internal error: {} of {} rows reached the reporter; the reports were not written",
            next_seq,
            inventory.total_rows
        );
    }
    Ok(())
}

fn progress_bar(enabled: bool, total: u64) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} rows  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
