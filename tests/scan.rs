//! Binary-level tests: the real `taurus-audit` against the bundled simulator
//! over loopback, asserting exit codes, reports and what the simulator saw.

mod common;

use common::*;

#[test]
fn mixed_inventory_exact_offenders() {
    let dir = TestDir::new();
    let (on1, off1, off2, gone) = (
        instance("on1"),
        instance("off1"),
        instance("off2"),
        instance("gone"),
    );
    let sim = simulator(&format!(
        r#"{{"instances": {{"{off1}": "off", "{off2}": "off", "{gone}": "not_found"}}}}"#
    ));
    let inventory = dir.inventory(
        "inv.csv",
        &[
            (PROJECT, &on1),
            (PROJECT, &off1),
            (PROJECT_B, &gone),
            (PROJECT_B, &off2),
        ],
    );

    let run = scan(&dir, &sim, &inventory, &[]);
    run.expect_code(1);

    let report = run.report();
    let statuses: Vec<(&str, &str)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["instance_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            (on1.as_str(), "on"),
            (off1.as_str(), "off"),
            (gone.as_str(), "not_found"),
            (off2.as_str(), "off")
        ]
    );
    assert_eq!(report["summary"]["total"], 4);
    assert_eq!(report["summary"]["off"], 2);
    assert_eq!(report["summary"]["not_found"], 1);

    let off_rows = read_csv(&run.run_dir().join("encryption-off.csv"));
    assert_eq!(
        off_rows[0],
        [
            "project_id",
            "instance_id",
            "region",
            "owner",
            "checked_at",
            "request_id"
        ]
    );
    let offenders: Vec<&str> = off_rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(offenders, vec![off1.as_str(), off2.as_str()]);
    assert_eq!(off_rows[1][3], format!("owner-of-{}", &off1[..6]));
    assert_eq!(off_rows[1][5].len(), 32, "request id as evidence");

    let error_rows = read_csv(&run.run_dir().join("errors.csv"));
    assert_eq!(error_rows.len(), 2);
    assert_eq!(error_rows[1][1], gone);
    assert_eq!(error_rows[1][4], "not_found");
    assert!(
        run.stderr.contains("4 instances: 1 on, 2 off, 1 not found"),
        "{}",
        run.stderr
    );
}

#[test]
fn all_on_exits_zero() {
    let dir = TestDir::new();
    let sim = simulator("{}");
    let rows: Vec<String> = (0..20).map(|i| instance(&format!("ok{i}"))).collect();
    let pairs: Vec<(&str, &str)> = rows.iter().map(|i| (PROJECT, i.as_str())).collect();
    let run = scan(&dir, &sim, &dir.inventory("inv.csv", &pairs), &[]);
    run.expect_code(0);
    let report = run.report();
    assert_eq!(report["summary"]["on"], 20);
    assert_eq!(report["run"]["complete"], true);
    assert_eq!(
        report["run"]["simulator"], true,
        "reports made against the simulator say so"
    );
    assert_eq!(
        read_csv(&run.run_dir().join("encryption-off.csv")).len(),
        1,
        "header only"
    );
    assert_eq!(sim.stats().requests, 20);
}

#[test]
fn only_unchecked_rows_exit_three() {
    let dir = TestDir::new();
    let (gone, broken, ok) = (instance("gone"), instance("broken"), instance("ok"));
    let sim = simulator(&format!(
        r#"{{"instances": {{"{gone}": "not_found", "{broken}": {{"encryption_status": "ON"}}}}}}"#
    ));
    let run = scan(
        &dir,
        &sim,
        &dir.inventory(
            "inv.csv",
            &[(PROJECT, &ok), (PROJECT, &gone), (PROJECT, &broken)],
        ),
        &[],
    );
    run.expect_code(3);
    let report = run.report();
    assert_eq!(
        result_for(&report, &broken)["error_kind"],
        "unexpected-value"
    );
    assert_eq!(result_for(&report, &ok)["status"], "on");
}

#[test]
fn invalid_inventory_sends_nothing() {
    let dir = TestDir::new();
    let sim = simulator("{}");
    let ok = instance("ok");
    let text = format!("project_id,instance_id\n{PROJECT},{ok}\n{PROJECT},../../v3/other\n,{ok}\n");
    let run = scan(&dir, &sim, &dir.write("bad.csv", &text), &[]);
    run.expect_code(2);
    assert_eq!(
        sim.stats().requests,
        0,
        "no request may be sent for an invalid inventory"
    );
    assert!(run.stderr.contains("bad.csv:3:"), "{}", run.stderr);
    assert!(run.stderr.contains("\"../../v3/other\""), "{}", run.stderr);
    assert!(run.stderr.contains("bad.csv:4:"), "{}", run.stderr);
    assert!(
        !dir.out_dir().exists(),
        "no run folder for a scan that could not run"
    );
}

#[test]
fn report_lists_every_row_once_in_order() {
    let dir = TestDir::new();
    let ids: Vec<String> = (0..60).map(|i| instance(&format!("r{i:02}"))).collect();
    // Slow responses for early rows make later rows finish first.
    let scripted: Vec<String> = ids[..5]
        .iter()
        .map(|id| format!(r#""{id}": {{"encryption_status": "on", "delay_ms": 150}}"#))
        .collect();
    let sim = simulator(&format!(r#"{{"instances": {{{}}}}}"#, scripted.join(",")));
    let mut pairs: Vec<(&str, &str)> = ids.iter().map(|i| (PROJECT, i.as_str())).collect();
    pairs.push((PROJECT, ids[3].as_str())); // a duplicate row
    let run = scan(
        &dir,
        &sim,
        &dir.inventory("inv.csv", &pairs),
        &["--concurrency", "16"],
    );
    run.expect_code(0);
    let report = run.report();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 61);
    for (index, result) in results.iter().enumerate().take(60) {
        assert_eq!(result["instance_id"], ids[index].as_str(), "row {index}");
        assert_eq!(
            result["source"],
            format!("{}:{}", dir.path().join("inv.csv").display(), index + 2)
        );
    }
    assert_eq!(results[60]["instance_id"], ids[3].as_str());
    assert_eq!(
        results[60]["duplicate_of"],
        format!("{}:5", dir.path().join("inv.csv").display())
    );
    assert_eq!(report["summary"]["total"], 60);
    assert_eq!(report["summary"]["rows"], 61);
    assert_eq!(report["summary"]["duplicates"], 1);
    assert_eq!(sim.stats().requests, 60, "the duplicate pair is asked once");
}

#[test]
fn token_never_written_anywhere() {
    let dir = TestDir::new();
    let (off1, denied) = (instance("off1"), instance("denied"));
    let sim = simulator(&format!(
        r#"{{"instances": {{"{off1}": "off", "{denied}": {{"status": 403, "error_code": "DBS.0403", "error_msg": "denied"}}}}}}"#
    ));
    let run = scan(
        &dir,
        &sim,
        &dir.inventory("inv.csv", &[(PROJECT, &off1), (PROJECT, &denied)]),
        &["-vvv"],
    );
    run.expect_code(1);
    assert!(!run.stdout.contains(TOKEN));
    assert!(!run.stderr.contains(TOKEN), "the token leaked to stderr");
    assert!(
        run.stderr
            .contains("credentials: token from TAURUS_AUDIT_TOKEN"),
        "-vvv should log the credential source: {}",
        run.stderr
    );
    for entry in std::fs::read_dir(run.run_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(TOKEN),
            "the token leaked into {}",
            path.display()
        );
    }
}

#[test]
fn headers_sent_as_documented() {
    let dir = TestDir::new();
    let sim = simulator("{}");
    let run = scan(
        &dir,
        &sim,
        &dir.inventory("inv.csv", &[(PROJECT, &instance("a"))]),
        &["--language", "zh-cn"],
    );
    run.expect_code(0);
    let stats = sim.stats();
    let request = stats.recent.last().expect("one request recorded");
    assert_eq!(request.header("x-language"), Some("zh-cn"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-auth-token"), Some(TOKEN));
    let agent = request.header("user-agent").unwrap();
    assert!(agent.starts_with("taurus-audit/"), "{agent}");
    assert_eq!(
        request.path,
        format!(
            "/v3/{PROJECT}/instances/{}/backups/encryption",
            instance("a")
        )
    );
}

#[test]
fn no_credentials_lists_sources() {
    let dir = TestDir::new();
    let inventory = dir.inventory("inv.csv", &[(PROJECT, &instance("a"))]);
    let run = Run::from(
        command(&dir)
            .args(["scan", "--endpoint", "http://127.0.0.1:9", "--inventory"])
            .arg(&inventory)
            .output()
            .unwrap(),
        "scan without credentials".into(),
    );
    run.expect_code(2);
    for source in [
        "--token-map",
        "--token-file",
        "TAURUS_AUDIT_TOKEN",
        "HUAWEICLOUD_SDK_AK",
        "credentials",
    ] {
        assert!(
            run.stderr.contains(source),
            "missing {source} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn wrong_token_sends_at_most_two() {
    let dir = TestDir::new();
    let sim = simulator("{}");
    let ids: Vec<String> = (0..50).map(|i| instance(&format!("w{i}"))).collect();
    let pairs: Vec<(&str, &str)> = ids.iter().map(|i| (PROJECT, i.as_str())).collect();
    let inventory = dir.inventory("inv.csv", &pairs);
    let mut command = command(&dir);
    command
        .env("TAURUS_AUDIT_TOKEN", "not-the-right-token")
        .args([
            "scan",
            "--concurrency",
            "64",
            "--rate",
            "1000",
            "--endpoint",
            &sim.url(),
            "--inventory",
        ])
        .arg(&inventory)
        .arg("--out-dir")
        .arg(dir.out_dir());
    let run = Run::from(command.output().unwrap(), "scan with a wrong token".into());
    run.expect_code(2);
    assert!(
        sim.stats().requests <= 5,
        "sent {} requests with a rejected credential",
        sim.stats().requests
    );
    assert!(sim.stats().requests <= taurus_audit::scan::gate::MAX_TRIALS_IN_FLIGHT as u64);
    assert!(
        run.stderr.contains("rejected the credentials"),
        "{}",
        run.stderr
    );
    let report = run.report();
    assert_eq!(report["summary"]["error"], 50);
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["error_kind"] == "auth-failed")
    );
}

#[test]
fn permission_denied_names_iam_action() {
    let dir = TestDir::new();
    let denied = instance("denied");
    let sim = simulator(&format!(
        r#"{{"instances": {{"{denied}": {{"status": 403, "error_code": "DBS.200019", "error_msg": "Insufficient permissions."}}}}}}"#
    ));
    let run = scan(
        &dir,
        &sim,
        &dir.inventory("inv.csv", &[(PROJECT, &denied)]),
        &[],
    );
    run.expect_code(3);
    let result = result_for(&run.report(), &denied).clone();
    assert_eq!(result["error_kind"], "permission-denied");
    assert_eq!(result["http_status"], 403);
    assert_eq!(result["error_code"], "DBS.200019");
    assert!(
        result["error_msg"]
            .as_str()
            .unwrap()
            .contains("gaussdbformysql:backup:encrypt")
    );
}

#[test]
fn csv_cells_neutralised() {
    let dir = TestDir::new();
    let off1 = instance("off1");
    let sim = simulator(&format!(r#"{{"instances": {{"{off1}": "off"}}}}"#));
    let text = format!(
        "project_id,instance_id,owner,note\n{PROJECT},{off1},=HYPERLINK(\"http://x\"),\"@x, y\"\n"
    );
    let run = scan(&dir, &sim, &dir.write("inv.csv", &text), &[]);
    run.expect_code(1);
    let rows = read_csv(&run.run_dir().join("encryption-off.csv"));
    assert_eq!(rows[1][3], "'=HYPERLINK(\"http://x\")");
    assert_eq!(rows[1][4], "'@x, y");
    // The JSON report keeps the label as the inventory had it.
    assert_eq!(
        result_for(&run.report(), &off1)["labels"]["owner"],
        "=HYPERLINK(\"http://x\")"
    );
}

#[test]
fn run_folders_never_overwritten() {
    let dir = TestDir::new();
    let sim = simulator("{}");
    let inventory = dir.inventory("inv.csv", &[(PROJECT, &instance("a"))]);
    let first = scan(&dir, &sim, &inventory, &[]);
    let second = scan(&dir, &sim, &inventory, &[]);
    first.expect_code(0);
    second.expect_code(0);
    assert_ne!(first.run_dir(), second.run_dir());
    assert!(first.run_dir().join("report.json").exists());
    assert!(second.run_dir().join("report.json").exists());
}

#[test]
fn unwritable_out_dir_exits_two() {
    let dir = TestDir::new();
    let sim = simulator("{}");
    let inventory = dir.inventory("inv.csv", &[(PROJECT, &instance("a"))]);
    let blocker = dir.write("not-a-folder", "x");
    let mut command = command(&dir);
    command
        .env("TAURUS_AUDIT_TOKEN", TOKEN)
        .args(["scan", "--endpoint", &sim.url(), "--inventory"])
        .arg(&inventory)
        .arg("--out-dir")
        .arg(blocker.join("reports"));
    let run = Run::from(command.output().unwrap(), "scan into a file".into());
    run.expect_code(2);
    assert!(run.stderr.contains("not-a-folder"), "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains("not a directory"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats().requests, 0);
}

#[test]
fn flags_and_exit_codes_documented() {
    let dir = TestDir::new();
    let help = command(&dir).args(["scan", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let flags = [
        "--inventory",
        "--region",
        "--endpoint",
        "--rate",
        "--concurrency",
        "--timeout",
        "--max-attempts",
        "--row-budget",
        "--out-dir",
        "--token-file",
        "--token-map",
        "--language",
        "--resume",
        "--no-progress",
    ];
    for flag in flags {
        assert!(help.contains(flag), "scan --help lacks {flag}");
        assert!(readme.contains(flag), "README lacks {flag}");
    }
    for (code, meaning) in [
        ("0", "every row was checked"),
        ("1", "at least one row"),
        ("2", "could not run"),
        ("3", "no row is off"),
        ("130", "SIGINT"),
        ("143", "SIGTERM"),
    ] {
        assert!(
            help.contains(&format!("  {code} ")),
            "scan --help lacks exit code {code}"
        );
        assert!(help.contains(meaning), "scan --help lacks {meaning:?}");
        assert!(
            readme.contains(&format!("| {code} |")),
            "README lacks exit code {code}"
        );
    }
    for file in ["report.json", "encryption-off.csv", "errors.csv"] {
        assert!(readme.contains(file), "README lacks {file}");
    }
}
