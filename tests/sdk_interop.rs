//! Compares the signer with the official Huawei Cloud Python SDK.
//!
//! `tests/interop/sdk_sign.py` signs pseudo-random requests with the SDK's
//! own `Signer`, and this test checks that [`authorization`] returns the same
//! header byte for byte for each of them. `tests/interop/setup.sh` creates the
//! Python environment, and `TAURUS_AUDIT_SDK_PYTHON` can point at another
//! interpreter that has the SDK installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use taurus_audit::api::signer::{SigningRequest, authorization, canonical_request};

/// Number of requests that the SDK signs for the comparison.
const REQUEST_COUNT: usize = 300;

/// One request and the SDK's signature, as `sdk_sign.py` prints it.
#[derive(Deserialize)]
struct SdkSignedRequest {
    method: String,
    host: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: String,
    ak: String,
    sk: String,
    authorization: String,
    canonical_request: String,
}

fn package_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the Python interpreter that has the SDK installed.
fn sdk_python() -> PathBuf {
    let python = match std::env::var_os("TAURUS_AUDIT_SDK_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => package_root().join(".venv/bin/python"),
    };
    assert!(
        python.exists(),
        "Python with the Huawei Cloud SDK not found at {}. Run tests/interop/setup.sh \
         or set TAURUS_AUDIT_SDK_PYTHON to an interpreter that has huaweicloudsdkcore installed.",
        python.display()
    );
    python
}

fn sign_with_sdk(count: usize) -> Vec<SdkSignedRequest> {
    let python = sdk_python();
    let script = package_root().join("tests/interop/sdk_sign.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(count.to_string())
        .output()
        .unwrap_or_else(|error| panic!("failed to run {}: {error}", python.display()));
    assert!(
        output.status.success(),
        "{} {} failed with {}:\n{}",
        python.display(),
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let stdout = String::from_utf8(output.stdout).expect("sdk_sign.py prints UTF-8");
    stdout
        .lines()
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).unwrap_or_else(|error| {
                panic!(
                    "invalid JSON on line {} of sdk_sign.py output: {error}\n{line}",
                    index + 1
                )
            })
        })
        .collect()
}

#[test]
#[ignore = "needs the official Python SDK; .ci/run installs it"]
fn signer_matches_python_sdk() {
    let signed = sign_with_sdk(REQUEST_COUNT);
    assert_eq!(
        signed.len(),
        REQUEST_COUNT,
        "sdk_sign.py printed the wrong number of requests"
    );

    let mut mismatches = 0;
    for (index, sdk) in signed.iter().enumerate() {
        let query: Vec<(&str, &str)> = sdk
            .query
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        let headers: Vec<(&str, &str)> = sdk
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let request = SigningRequest {
            method: &sdk.method,
            path: &sdk.path,
            query: &query,
            headers: &headers,
            body: sdk.body.as_bytes(),
        };

        let ours = authorization(&sdk.ak, sdk.sk.as_bytes(), &request);
        if ours == sdk.authorization {
            continue;
        }
        mismatches += 1;
        if mismatches == 1 {
            eprintln!(
                "first mismatch, request {index} ({} {}{}):\n  SDK:  {}\n  ours: {}\n\
                 SDK canonical request:\n{}\n\nour canonical request:\n{}\n",
                sdk.method,
                sdk.host,
                sdk.path,
                sdk.authorization,
                ours,
                sdk.canonical_request,
                canonical_request(&request).text,
            );
        }
    }

    println!(
        "compared {} requests signed by the Python SDK, {mismatches} mismatched",
        signed.len()
    );
    assert_eq!(
        mismatches, 0,
        "Authorization differs from the SDK's for {mismatches} requests"
    );
}

/// Stops the `simulate` child when the test ends, pass or fail.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `sdk_client.py` and parses its JSON lines, one per instance in order.
fn sdk_client(
    url: &str,
    ak: &str,
    sk: &str,
    project: &str,
    instances: &[&str],
) -> Vec<serde_json::Value> {
    let mut command = Command::new(sdk_python());
    command
        .arg(package_root().join("tests/interop/sdk_client.py"))
        .args([
            "--endpoint",
            url,
            "--ak",
            ak,
            "--sk",
            sk,
            "--project",
            project,
            "--timeout",
            "10",
        ]);
    for instance in instances {
        command.args(["--instance", instance]);
    }
    let output = command.output().expect("sdk_client.py runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.trim().is_empty(),
        "sdk_client.py printed nothing; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
#[ignore = "needs the official Python SDK; .ci/run installs it"]
fn sdk_client_reads_simulator() {
    use std::io::BufRead;

    let ak = "HPUAINTEROPAK0000001";
    let sk = "InteropSecretKey0123456789abcdefghijKLMN";
    let project = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let (on, off, gone) = (
        "61a4ea66210545909d74a05c27a7179ein07",
        "7033e7c3cf93438797d44ad7ae0a7d95in07",
        "f2b81ad3a7bd4b1e8fcd76a3c1b5c8c9in07",
    );
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.json");
    let text = format!(
        r#"{{"keys": [{{"ak": "{ak}", "sk": "{sk}"}}], "instances": {{"{off}": "off", "{gone}": "not_found"}}}}"#
    );
    std::fs::write(&scenario, text).unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_taurus-audit"))
        .args(["simulate", "--listen", "127.0.0.1:0", "--scenario"])
        .arg(&scenario)
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("taurus-audit simulate starts");
    let mut child = ChildGuard(child);
    let mut first_line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let url = first_line
        .trim()
        .strip_prefix("listening on ")
        .expect("simulate prints its URL")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let answers = sdk_client(&url, ak, sk, project, &[on, off, gone]);
    println!("SDK client, right SK:");
    for answer in &answers {
        println!("  {answer}");
    }
    assert_eq!(answers[0]["encryption_status"], "on");
    assert_eq!(answers[1]["encryption_status"], "off");
    assert_eq!(answers[2]["error"]["status_code"], 404);
    assert!(
        answers[2]["error"]["error_code"]
            .as_str()
            .unwrap()
            .starts_with("DBS.")
    );

    let rejected = sdk_client(&url, ak, "WrongSecretKey", project, &[on]);
    println!("SDK client, wrong SK:\n  {}", rejected[0]);
    assert_eq!(rejected[0]["error"]["status_code"], 401);
    assert_eq!(rejected[0]["error"]["error_code"], "APIGW.0301");
}
