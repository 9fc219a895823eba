//! The fault suite: one scan against a simulator that scripts every fault
//! kind for its own instance, asserting each row's final status, error kind
//! and attempts, and that every row is reported exactly once.

mod common;

use common::*;

/// Flags shared by the fault scans: three attempts, one-second timeout, and
/// backoff scaled down so retries do not wait (Retry-After is never scaled).
const FLAGS: &[&str] = &[
    "--max-attempts",
    "3",
    "--timeout",
    "1",
    "--concurrency",
    "8",
];

struct Case {
    name: &'static str,
    /// The scripted answer(s) for the instance, as scenario JSON.
    answer: &'static str,
    status: &'static str,
    kind: Option<&'static str>,
    attempts: u64,
}

const CASES: &[Case] = &[
    Case {
        name: "healthy",
        answer: r#""on""#,
        status: "on",
        kind: None,
        attempts: 1,
    },
    Case {
        name: "throttled-retry-after",
        answer: r#"{"status": 429, "error_code": "APIGW.0308", "retry_after": "0"}"#,
        status: "error",
        kind: Some("throttled"),
        attempts: 3,
    },
    Case {
        name: "throttled-no-header",
        answer: r#"{"status": 429, "error_code": "APIGW.0308"}"#,
        status: "error",
        kind: Some("throttled"),
        attempts: 3,
    },
    Case {
        name: "throttled-then-on",
        answer: r#"[{"status": 429, "error_code": "APIGW.0308"}, "on"]"#,
        status: "on",
        kind: None,
        attempts: 2,
    },
    Case {
        name: "http-500",
        answer: r#"{"status": 500, "error_code": "SYS.0500", "error_msg": "internal"}"#,
        status: "error",
        kind: Some("server-error"),
        attempts: 3,
    },
    Case {
        name: "http-502",
        answer: r#"{"status": 502}"#,
        status: "error",
        kind: Some("server-error"),
        attempts: 3,
    },
    Case {
        name: "http-503",
        answer: r#"{"status": 503}"#,
        status: "error",
        kind: Some("server-error"),
        attempts: 3,
    },
    Case {
        name: "http-504",
        answer: r#"{"status": 504}"#,
        status: "error",
        kind: Some("server-error"),
        attempts: 3,
    },
    Case {
        name: "http-503-then-off",
        answer: r#"[{"status": 503}, "off"]"#,
        status: "off",
        kind: None,
        attempts: 2,
    },
    Case {
        name: "reset",
        answer: r#"{"reset": true}"#,
        status: "error",
        kind: Some("connection-failed"),
        attempts: 3,
    },
    Case {
        name: "reset-then-on",
        answer: r#"[{"reset": true}, "on"]"#,
        status: "on",
        kind: None,
        attempts: 2,
    },
    Case {
        name: "timeout",
        answer: r#"{"encryption_status": "on", "delay_ms": 2500}"#,
        status: "error",
        kind: Some("timeout"),
        attempts: 3,
    },
    Case {
        name: "slow-answer",
        answer: r#"{"encryption_status": "off", "delay_ms": 300}"#,
        status: "off",
        kind: None,
        attempts: 1,
    },
    Case {
        name: "bad-json",
        answer: r#"{"body": "{\"encryption_status\": \"on\""}"#,
        status: "error",
        kind: Some("invalid-json"),
        attempts: 1,
    },
    Case {
        name: "empty-body",
        answer: r#"{"body": ""}"#,
        status: "error",
        kind: Some("empty-body"),
        attempts: 1,
    },
    Case {
        name: "value-uppercase",
        answer: r#"{"encryption_status": "ON"}"#,
        status: "error",
        kind: Some("unexpected-value"),
        attempts: 1,
    },
    Case {
        name: "value-null",
        answer: r#"{"encryption_status": null}"#,
        status: "error",
        kind: Some("unexpected-body"),
        attempts: 1,
    },
    Case {
        name: "value-enabled",
        answer: r#"{"encryption_status": "enabled"}"#,
        status: "error",
        kind: Some("unexpected-value"),
        attempts: 1,
    },
    Case {
        name: "html-200",
        answer: r#"{"body": "<html><body>Welcome</body></html>", "content_type": "text/html"}"#,
        status: "error",
        kind: Some("invalid-json"),
        attempts: 1,
    },
    Case {
        name: "html-502",
        answer: r#"{"status": 502, "body": "<html><h1>502 Bad Gateway</h1></html>", "content_type": "text/html"}"#,
        status: "error",
        kind: Some("server-error"),
        attempts: 3,
    },
    Case {
        name: "oversized",
        answer: r#"{"oversized_bytes": 65536}"#,
        status: "error",
        kind: Some("body-too-large"),
        attempts: 1,
    },
    Case {
        name: "redirect",
        answer: r#"{"status": 302, "location": "https://elsewhere.example/login"}"#,
        status: "error",
        kind: Some("redirect"),
        attempts: 1,
    },
    Case {
        name: "http-400",
        answer: r#"{"status": 400, "error_code": "DBS.280234", "error_msg": "Invalid instance ID."}"#,
        status: "error",
        kind: Some("bad-request"),
        attempts: 1,
    },
    Case {
        name: "http-403",
        answer: r#"{"status": 403, "error_code": "DBS.200019", "error_msg": "No permission."}"#,
        status: "error",
        kind: Some("permission-denied"),
        attempts: 1,
    },
    Case {
        name: "http-404-instance",
        answer: r#""not_found""#,
        status: "not_found",
        kind: None,
        attempts: 1,
    },
    Case {
        name: "http-404-no-api",
        answer: r#"{"status": 404, "error_code": "APIGW.0101", "error_msg": "The API does not exist."}"#,
        status: "error",
        kind: Some("api-not-found"),
        attempts: 1,
    },
];

#[test]
fn every_fault_kind() {
    let dir = TestDir::new();
    let ids: Vec<String> = CASES
        .iter()
        .map(|c| instance(&c.name.replace('-', "")))
        .collect();
    let scripted: Vec<String> = CASES
        .iter()
        .zip(&ids)
        .map(|(case, id)| format!(r#""{id}": {}"#, case.answer))
        .collect();
    let sim = simulator(&format!(r#"{{"instances": {{{}}}}}"#, scripted.join(",")));
    let pairs: Vec<(&str, &str)> = ids.iter().map(|id| (PROJECT, id.as_str())).collect();

    let run = scan(&dir, &sim, &dir.inventory("faults.csv", &pairs), FLAGS);
    run.expect_code(1);
    let report = run.report();
    let stats = sim.stats();

    println!(
        "{:<24} {:<10} {:<18} attempts",
        "fault", "status", "error_kind"
    );
    for (case, id) in CASES.iter().zip(&ids) {
        let result = result_for(&report, id);
        println!(
            "{:<24} {:<10} {:<18} {}",
            case.name,
            result["status"].as_str().unwrap_or(""),
            result["error_kind"].as_str().unwrap_or("-"),
            result["attempts"]
        );
        assert_eq!(result["status"], case.status, "{}: {result}", case.name);
        match case.kind {
            Some(kind) => assert_eq!(result["error_kind"], kind, "{}: {result}", case.name),
            None => assert!(result["error_kind"].is_null(), "{}: {result}", case.name),
        }
        assert_eq!(result["attempts"], case.attempts, "{}: {result}", case.name);
        assert_eq!(
            stats.per_instance.get(id).copied().unwrap_or(0),
            case.attempts,
            "{}: requests the simulator saw",
            case.name
        );
    }
    assert_eq!(report["results"].as_array().unwrap().len(), CASES.len());
    assert_eq!(report["summary"]["total"], CASES.len());

    let message_of = |name: &str| {
        let index = CASES.iter().position(|c| c.name == name).unwrap();
        result_for(&report, &ids[index])["error_msg"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let redirect = message_of("redirect");
    assert!(redirect.contains("elsewhere.example"), "{redirect}");
    let html = message_of("html-502");
    assert!(html.contains("502 Bad Gateway"), "{html}");
    let errors = read_csv(&run.run_dir().join("errors.csv"));
    let unchecked = CASES
        .iter()
        .filter(|c| c.status == "error" || c.status == "not_found")
        .count();
    assert_eq!(
        errors.len(),
        unchecked + 1,
        "errors.csv lists each unchecked row once"
    );
}

#[test]
fn retry_after_waited_not_scaled() {
    let dir = TestDir::new();
    let id = instance("throttled");
    let sim = simulator(&format!(
        r#"{{"instances": {{"{id}": [{{"status": 429, "retry_after": "1"}}, "on"]}}}}"#
    ));
    let started = std::time::Instant::now();
    let run = scan(
        &dir,
        &sim,
        &dir.inventory("inv.csv", &[(PROJECT, &id)]),
        FLAGS,
    );
    run.expect_code(0);
    // A lower bound only: the scan must not retry before the Retry-After time.
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "retried before Retry-After"
    );
    assert_eq!(result_for(&run.report(), &id)["attempts"], 2);
}

#[test]
fn connection_refused_is_connection_failed() {
    let dir = TestDir::new();
    // Bind and drop a listener to get a loopback port with nothing behind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = instance("refused");
    let inventory = dir.inventory("inv.csv", &[(PROJECT, &id)]);
    let mut command = command(&dir);
    command
        .env("TAURUS_AUDIT_TOKEN", TOKEN)
        .args([
            "scan",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--backoff-scale",
            "0.001",
        ])
        .args(FLAGS)
        .arg("--inventory")
        .arg(&inventory)
        .arg("--out-dir")
        .arg(dir.out_dir());
    let run = Run::from(
        command.output().unwrap(),
        "scan against a closed port".into(),
    );
    run.expect_code(3);
    let report = run.report();
    let result = result_for(&report, &id);
    assert_eq!(result["error_kind"], "connection-failed");
    assert_eq!(result["attempts"], 3);
}
