//! AK/SK signing, the credential chain and the key-lockout guard, end to end
//! against the simulator's signature checks.

mod common;

use std::path::Path;

use common::*;
use taurus_audit::scan::gate::MAX_TRIALS_IN_FLIGHT;
use taurus_audit::sim::{AccessKey, Scenario, Simulator};

const AK: &str = "HPUAEXAMPLEAK0000001";
const SK: &str = "ExampleSecretKey0123456789abcdefghijABCD";
const STS: &str = "ExampleSecurityToken+/=";

fn key_simulator(extra: &str, security_token: Option<&str>) -> Simulator {
    let mut scenario = Scenario::from_json(&format!("{{{extra}}}")).unwrap();
    scenario.keys.push(AccessKey {
        ak: AK.into(),
        sk: SK.into(),
        security_token: security_token.map(str::to_string),
    });
    Simulator::start("127.0.0.1:0".parse().unwrap(), scenario).unwrap()
}

fn ak_sk_scan(
    dir: &TestDir,
    sim: &Simulator,
    inventory: &Path,
    env: &[(&str, &str)],
    extra: &[&str],
) -> Run {
    let mut command = command(dir);
    command
        .args([
            "scan",
            "--endpoint",
            &sim.url(),
            "--rate",
            "500",
            "--backoff-scale",
            "0.001",
        ])
        .arg("--inventory")
        .arg(inventory)
        .arg("--out-dir")
        .arg(dir.out_dir())
        .args(extra);
    for (name, value) in env {
        command.env(name, value);
    }
    Run::from(command.output().unwrap(), format!("{command:?}"))
}

fn two_project_inventory(dir: &TestDir, count: usize) -> std::path::PathBuf {
    let ids: Vec<String> = (0..count).map(|i| instance(&format!("k{i}"))).collect();
    let pairs: Vec<(&str, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (if i % 2 == 0 { PROJECT } else { PROJECT_B }, id.as_str()))
        .collect();
    dir.inventory("inv.csv", &pairs)
}

#[test]
fn ak_sk_signed_across_projects() {
    let dir = TestDir::new();
    let sim = key_simulator("", None);
    let run = ak_sk_scan(
        &dir,
        &sim,
        &two_project_inventory(&dir, 40),
        &[("HUAWEICLOUD_SDK_AK", AK), ("HUAWEICLOUD_SDK_SK", SK)],
        &["-v"],
    );
    run.expect_code(0);
    let stats = sim.stats();
    assert_eq!(stats.requests, 40);
    assert_eq!(stats.auth_failures, 0);
    let request = stats.recent.last().unwrap();
    let authorization = request.header("authorization").unwrap();
    assert!(authorization.starts_with(&format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=")), "{authorization}");
    assert!(
        request
            .path
            .contains(request.header("x-project-id").unwrap())
    );
    assert!(
        run.stderr
            .contains("credentials: AK/SK from HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(SK));
}

#[test]
fn temporary_keys_send_security_token() {
    let dir = TestDir::new();
    let sim = key_simulator("", Some(STS));
    let inventory = two_project_inventory(&dir, 4);
    let env = [
        ("HUAWEICLOUD_SDK_AK", AK),
        ("HUAWEICLOUD_SDK_SK", SK),
        ("HUAWEICLOUD_SDK_SECURITY_TOKEN", STS),
    ];
    let run = ak_sk_scan(&dir, &sim, &inventory, &env, &[]);
    run.expect_code(0);
    assert_eq!(
        sim.stats()
            .recent
            .last()
            .unwrap()
            .header("x-security-token"),
        Some(STS)
    );
    for entry in std::fs::read_dir(run.run_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains(STS) && !text.contains(SK),
            "a secret reached the reports"
        );
    }

    // Without the security token the temporary key is rejected, once.
    let dir = TestDir::new();
    let before = sim.stats().requests;
    let run = ak_sk_scan(&dir, &sim, &two_project_inventory(&dir, 4), &env[..2], &[]);
    run.expect_code(2);
    assert!(sim.stats().requests - before <= MAX_TRIALS_IN_FLIGHT as u64);
}

#[test]
fn credentials_file_in_home() {
    let dir = TestDir::new();
    let sim = key_simulator("", None);
    std::fs::create_dir(dir.path().join(".huaweicloud")).unwrap();
    std::fs::write(
        dir.path().join(".huaweicloud/credentials"),
        format!("[basic]\nak = {AK}\nsk = {SK}\n"),
    )
    .unwrap();
    let run = ak_sk_scan(&dir, &sim, &two_project_inventory(&dir, 6), &[], &["-v"]);
    run.expect_code(0);
    assert!(run.stderr.contains("credentials file"), "{}", run.stderr);
}

#[test]
fn wrong_sk_sends_few_requests() {
    let dir = TestDir::new();
    let sim = key_simulator("", None);
    let env = [
        ("HUAWEICLOUD_SDK_AK", AK),
        ("HUAWEICLOUD_SDK_SK", "WrongSecretKey"),
    ];
    let run = ak_sk_scan(
        &dir,
        &sim,
        &two_project_inventory(&dir, 500),
        &env,
        &["--concurrency", "64"],
    );
    run.expect_code(2);
    let sent = sim.stats().requests;
    assert!(sent <= 5, "{sent} requests with a wrong SK");
    assert!(
        sent <= MAX_TRIALS_IN_FLIGHT as u64,
        "{sent} requests; {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("rejected the credentials (AK HPUAEXAMPLEAK0000001)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no row could be checked"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("WrongSecretKey"));
    let report = run.report();
    assert_eq!(report["summary"]["error"], 500);
}

#[test]
fn skewed_clock_named_in_message() {
    let dir = TestDir::new();
    let sim = key_simulator(r#""clock_skew_seconds": 3600"#, None);
    let env = [("HUAWEICLOUD_SDK_AK", AK), ("HUAWEICLOUD_SDK_SK", SK)];
    let run = ak_sk_scan(&dir, &sim, &two_project_inventory(&dir, 3), &env, &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("local clock differs"), "{}", run.stderr);
    assert!(run.stderr.contains("60 minutes"), "{}", run.stderr);
}

#[test]
fn token_map_per_project() {
    let dir = TestDir::new();
    let mut scenario = Scenario::from_json("{}").unwrap();
    scenario.tokens.push(taurus_audit::sim::TokenGrant {
        token: "token-a".into(),
        projects: Some(vec![PROJECT.into()]),
    });
    scenario.tokens.push(taurus_audit::sim::TokenGrant {
        token: "token-b".into(),
        projects: Some(vec![PROJECT_B.into()]),
    });
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), scenario).unwrap();
    let map = dir.write(
        "tokens.csv",
        &format!("project_id,token\n{PROJECT},token-a\n{PROJECT_B},token-b\n"),
    );
    let inventory = two_project_inventory(&dir, 10);
    let run = ak_sk_scan(
        &dir,
        &sim,
        &inventory,
        &[],
        &["--token-map", map.to_str().unwrap()],
    );
    run.expect_code(0);
    assert_eq!(sim.stats().requests, 10);

    // A wrong token for one project fails only that project's rows.
    let dir = TestDir::new();
    let map = dir.write(
        "tokens.csv",
        &format!("project_id,token\n{PROJECT},token-a\n{PROJECT_B},token-wrong\n"),
    );
    let run = ak_sk_scan(
        &dir,
        &sim,
        &two_project_inventory(&dir, 10),
        &[],
        &["--token-map", map.to_str().unwrap()],
    );
    run.expect_code(3);
    let report = run.report();
    assert_eq!(report["summary"]["on"], 5);
    assert_eq!(report["summary"]["error"], 5);
    assert!(!run.stderr.contains("token-wrong"));
}

#[test]
fn token_rejection_stays_within_project() {
    let dir = TestDir::new();
    let (a1, b1, a2) = (instance("a1"), instance("b1"), instance("a2"));
    let mut scenario =
        Scenario::from_json(&format!(r#"{{"instances": {{"{a2}": "off"}}}}"#)).unwrap();
    scenario.tokens.push(taurus_audit::sim::TokenGrant {
        token: "token-a".into(),
        projects: Some(vec![PROJECT.into()]),
    });
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), scenario).unwrap();
    let inventory = dir.inventory(
        "inv.csv",
        &[(PROJECT, &a1), (PROJECT_B, &b1), (PROJECT, &a2)],
    );
    let run = ak_sk_scan(
        &dir,
        &sim,
        &inventory,
        &[("TAURUS_AUDIT_TOKEN", "token-a")],
        &[],
    );
    // Project B's 401 must not stop project A's rows: the off instance is found.
    run.expect_code(1);
    assert!(
        run.stderr.contains("is used for 2 projects"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("for project {PROJECT_B}")),
        "{}",
        run.stderr
    );
    let report = run.report();
    assert_eq!(result_for(&report, &a1)["status"], "on");
    assert_eq!(result_for(&report, &a2)["status"], "off");
    assert_eq!(result_for(&report, &b1)["error_kind"], "auth-failed");
}
