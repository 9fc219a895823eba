//! Interruption and resume: SIGINT, SIGTERM and `kill -9` in the middle of a
//! scan, then `--resume`. The tests wait for the journal to show progress
//! (a condition, polled with a generous bound), never for a fixed time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const ROWS: usize = 120;

fn rows() -> Vec<String> {
    (0..ROWS).map(|i| instance(&format!("row{i:03}"))).collect()
}

/// Starts a simulator slow enough that a scan of `ROWS` rows takes several seconds.
fn slow_simulator(ids: &[String]) -> taurus_audit::sim::Simulator {
    let offs: Vec<String> = ids
        .iter()
        .step_by(10)
        .map(|id| format!(r#""{id}": "off""#))
        .collect();
    simulator(&format!(
        r#"{{"latency_ms": 40, "instances": {{{}}}}}"#,
        offs.join(",")
    ))
}

fn scan_command(
    dir: &TestDir,
    sim: &taurus_audit::sim::Simulator,
    inventory: &Path,
    extra: &[&str],
) -> Command {
    let mut command = command(dir);
    command
        .env("TAURUS_AUDIT_TOKEN", TOKEN)
        .args([
            "scan",
            "--endpoint",
            &sim.url(),
            "--rate",
            "40",
            "--concurrency",
            "4",
        ])
        .arg("--inventory")
        .arg(inventory)
        .arg("--out-dir")
        .arg(dir.out_dir())
        .args(extra);
    command
}

/// Runs `--resume RUN_DIR` of the same scan against `sim`.
fn resume(
    dir: &TestDir,
    sim: &taurus_audit::sim::Simulator,
    inventory: &Path,
    run_dir: &Path,
) -> Run {
    let mut command = scan_command(
        dir,
        sim,
        inventory,
        &["--resume", run_dir.to_str().unwrap()],
    );
    Run::from(command.output().unwrap(), format!("{command:?}"))
}

/// Starts a scan, kills it with SIGKILL once `lines` rows are journaled, and returns its run folder.
fn kill_after(
    dir: &TestDir,
    sim: &taurus_audit::sim::Simulator,
    inventory: &Path,
    lines: usize,
) -> PathBuf {
    let mut child = scan_command(dir, sim, inventory, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = wait_for_journal(dir, &mut child, lines);
    child.kill().unwrap();
    child.wait().unwrap();
    run_dir
}

/// Waits until the only run folder's journal has at least `lines` lines.
fn wait_for_journal(dir: &TestDir, child: &mut Child, lines: usize) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the scan ended early with {status}");
        }
        if let Some(run_dir) = std::fs::read_dir(dir.out_dir())
            .ok()
            .and_then(|mut e| e.next())
            .map(|e| e.unwrap().path())
        {
            let text = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap_or_default();
            if text.lines().count() >= lines {
                return run_dir;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the journal did not reach {lines} lines within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

/// Results with the fields that legitimately differ between runs removed.
fn comparable(report: &Value) -> Vec<Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let object = r.as_object_mut().unwrap();
            object.remove("checked_at");
            object.remove("request_id");
            r
        })
        .collect()
}

fn csv_without_evidence(path: &Path) -> Vec<Vec<String>> {
    let rows = read_csv(path);
    let header = rows[0].clone();
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .zip(&header)
                .filter(|(_, name)| *name != "checked_at" && *name != "request_id")
                .map(|(cell, _)| cell)
                .collect()
        })
        .collect()
}

#[test]
fn sigint_writes_incomplete_reports_then_resume_completes() {
    let dir = TestDir::new();
    let ids = rows();
    // Only the last rows are off, so none is found before the interrupt and the exit code is 130.
    let offs: Vec<String> = ids[ROWS - 10..]
        .iter()
        .map(|id| format!(r#""{id}": "off""#))
        .collect();
    let sim = simulator(&format!(
        r#"{{"latency_ms": 40, "instances": {{{}}}}}"#,
        offs.join(",")
    ));
    let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (PROJECT, i.as_str())).collect();
    let inventory = dir.inventory("inv.csv", &pairs);

    let mut child = scan_command(&dir, &sim, &inventory, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_dir = wait_for_journal(&dir, &mut child, 10);
    signal(&child, "INT");
    let run = Run::from(child.wait_with_output().unwrap(), "interrupted scan".into());
    let report = read_report(&run_dir);
    run.expect_code(130);
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["run"]["interrupted_by"], "SIGINT");
    let not_checked = report["summary"]["not_checked"].as_u64().unwrap();
    assert!(not_checked > 0, "the interrupt came before the end");
    assert_eq!(
        report["results"].as_array().unwrap().len(),
        ROWS,
        "every row once, checked or not"
    );
    assert!(run.stderr.contains("--resume"), "{}", run.stderr);
    let errors = read_csv(&run_dir.join("errors.csv"));
    assert_eq!(
        errors.iter().filter(|r| r[4] == "not_checked").count() as u64,
        not_checked
    );

    let before = sim.stats().requests;
    let resumed = resume(&dir, &sim, &inventory, &run_dir);
    resumed.expect_code(1);
    assert_eq!(resumed.run_dir(), run_dir);
    let report = read_report(&run_dir);
    assert_eq!(report["run"]["complete"], true);
    assert_eq!(report["summary"]["not_checked"], 0);
    assert_eq!(report["summary"]["off"], 10);
    let requests_again = sim.stats().requests - before;
    assert!(
        requests_again <= not_checked + 4,
        "resume asked {requests_again} rows, {not_checked} were unchecked"
    );
}

#[test]
fn sigterm_exits_143() {
    let dir = TestDir::new();
    let ids: Vec<String> = rows();
    let sim = simulator(r#"{"latency_ms": 40}"#);
    let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (PROJECT, i.as_str())).collect();
    let inventory = dir.inventory("inv.csv", &pairs);
    let mut child = scan_command(&dir, &sim, &inventory, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_dir = wait_for_journal(&dir, &mut child, 5);
    signal(&child, "TERM");
    let run = Run::from(child.wait_with_output().unwrap(), "terminated scan".into());
    run.expect_code(143);
    let report = read_report(&run_dir);
    assert_eq!(report["run"]["interrupted_by"], "SIGTERM");
    assert_eq!(report["results"].as_array().unwrap().len(), ROWS);
}

#[test]
fn kill_nine_then_resume_matches_uninterrupted_run() {
    let dir = TestDir::new();
    let ids = rows();
    let sim = slow_simulator(&ids);
    let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (PROJECT, i.as_str())).collect();
    let inventory = dir.inventory("inv.csv", &pairs);

    let run_dir = kill_after(&dir, &sim, &inventory, ROWS / 2);
    assert!(
        !run_dir.join("report.json").exists(),
        "a killed run leaves no report under its final name"
    );
    let journaled = std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    let sent_before = sim.stats().requests;

    let resumed = resume(&dir, &sim, &inventory, &run_dir);
    resumed.expect_code(1);
    let sent_total = sim.stats().requests;
    assert!(
        sent_total <= ROWS as u64 + (sent_before - journaled),
        "sent {sent_total} requests for {ROWS} rows; only requests in flight at the kill may repeat"
    );

    // An uninterrupted run of the same inventory for comparison.
    let other = TestDir::new();
    let inventory_copy = other.inventory("inv.csv", &pairs);
    let full = Run::from(
        scan_command(&other, &sim, &inventory_copy, &[])
            .output()
            .unwrap(),
        "full run".into(),
    );
    full.expect_code(1);

    let resumed_report = read_report(&run_dir);
    let full_report = full.report();
    assert_eq!(resumed_report["summary"], full_report["summary"]);
    let mut resumed_results = comparable(&resumed_report);
    let mut full_results = comparable(&full_report);
    // The inventories sit in different folders, so sources differ by folder only.
    for result in resumed_results.iter_mut().chain(full_results.iter_mut()) {
        let source = result["source"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        result["source"] = Value::String(source);
    }
    assert_eq!(resumed_results, full_results);
    for name in ["encryption-off.csv", "errors.csv"] {
        let a = csv_without_evidence(&run_dir.join(name));
        let b = csv_without_evidence(&full.run_dir().join(name));
        assert_eq!(a.len(), b.len(), "{name}");
        let strip = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|r| r.into_iter().filter(|c| !c.contains(".csv:")).collect())
                .collect()
        };
        assert_eq!(strip(a), strip(b), "{name}");
    }
}

#[test]
fn resume_refuses_changed_inventory() {
    let dir = TestDir::new();
    let sim = simulator("{}");
    let a = instance("a");
    let inventory = dir.inventory("inv.csv", &[(PROJECT, &a)]);
    let first = scan(&dir, &sim, &inventory, &[]);
    first.expect_code(0);
    dir.inventory("inv.csv", &[(PROJECT, &a), (PROJECT, &instance("b"))]);
    let before = sim.stats().requests;
    let run = scan(
        &dir,
        &sim,
        &inventory,
        &["--resume", first.run_dir().to_str().unwrap()],
    );
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("differs from the one the run started with"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats().requests, before);
}

#[test]
fn resume_refuses_complete_run() {
    let dir = TestDir::new();
    let sim = simulator("{}");
    let inventory = dir.inventory("inv.csv", &[(PROJECT, &instance("a"))]);
    let first = scan(&dir, &sim, &inventory, &[]);
    first.expect_code(0);
    let report_before = std::fs::read_to_string(first.run_dir().join("report.json")).unwrap();
    let run = scan(
        &dir,
        &sim,
        &inventory,
        &["--resume", first.run_dir().to_str().unwrap()],
    );
    run.expect_code(2);
    assert!(run.stderr.contains("already complete"), "{}", run.stderr);
    let report_after = std::fs::read_to_string(first.run_dir().join("report.json")).unwrap();
    assert_eq!(
        report_before, report_after,
        "a complete run's report must stay as it was"
    );
}

#[test]
fn resume_keeps_simulator_marker() {
    let dir = TestDir::new();
    let ids = rows();
    let sim = slow_simulator(&ids);
    let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (PROJECT, i.as_str())).collect();
    let inventory = dir.inventory("inv.csv", &pairs);
    let run_dir = kill_after(&dir, &sim, &inventory, 10);

    // A different endpoint is refused: the journal's evidence came from the first one.
    let other = simulator("{}");
    let moved = resume(&dir, &other, &inventory, &run_dir);
    moved.expect_code(2);
    assert!(
        moved.stderr.contains("the endpoints now are"),
        "{}",
        moved.stderr
    );
    assert_eq!(other.stats().requests, 0);

    let resumed = resume(&dir, &sim, &inventory, &run_dir);
    resumed.expect_code(1);
    assert!(
        resumed.stderr.contains("already checked"),
        "{}",
        resumed.stderr
    );
    let report = read_report(&run_dir);
    assert_eq!(report["run"]["simulator"], true);
    assert!(report["run"]["resumed_rows"].as_u64().unwrap() >= 10);
}

#[test]
fn full_disk_stops_scan_without_partial_reports() {
    use taurus_audit::api::endpoint::EndpointResolver;
    use taurus_audit::credentials::{Credentials, Lookup};
    use taurus_audit::inventory::Inventory;
    use taurus_audit::scan::shutdown::Shutdown;

    let dir = TestDir::new();
    let sim = simulator(r#"{"latency_ms": 40}"#);
    let ids = rows();
    let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (PROJECT, i.as_str())).collect();
    let path = dir.inventory("inv.csv", &pairs);
    let args = taurus_audit::cli::ScanArgs {
        inventory: vec![path],
        region: None,
        endpoint: Some(sim.url()),
        rate: 500.0,
        concurrency: 8,
        timeout: 10.0,
        max_attempts: 3,
        row_budget: 60.0,
        out_dir: dir.out_dir(),
        token_file: None,
        token_map: None,
        language: taurus_audit::api::Language::EnUs,
        resume: None,
        no_progress: true,
        backoff_scale: 0.001,
    };
    let inventory = Inventory::load(
        &args.inventory,
        EndpointResolver::new(args.endpoint.as_deref(), None).unwrap(),
    )
    .unwrap();
    let lookup = Lookup {
        env: [("TAURUS_AUDIT_TOKEN".to_string(), TOKEN.to_string())].into(),
        ..Lookup::default()
    };
    let credentials = Credentials::load(&lookup, &inventory.projects).unwrap();
    let config = taurus_audit::config::scan_config(&args, false).unwrap();
    let prepared = taurus_audit::scan::prepare(&config, &inventory).unwrap();
    let run_dir = prepared.run_dir.clone();
    // Every journal write now fails with "No space left on device".
    std::os::unix::fs::symlink("/dev/full", run_dir.join("journal.jsonl")).unwrap();

    let result = taurus_audit::scan::execute(
        prepared,
        &config,
        &inventory,
        &credentials,
        &Shutdown::new(),
    );
    let err = format!("{:#}", result.expect_err("a full disk must fail the scan"));
    assert!(err.contains("journal.jsonl"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        sim.stats().requests < ROWS as u64 / 2,
        "sent {} requests after results could not be recorded",
        sim.stats().requests
    );
    for name in ["report.json", "encryption-off.csv", "errors.csv"] {
        assert!(
            !run_dir.join(name).exists(),
            "{name} must not exist after a failed write"
        );
    }
}
