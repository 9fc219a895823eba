//! Helpers for binary-level tests: an isolated folder, the bundled simulator
//! on an ephemeral loopback port, inventories, and runs of the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use taurus_audit::sim::{Scenario, Simulator};

pub const TOKEN: &str = "test-token-7f3c9a1e5b2d4c6e8a0b";
pub const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
pub const PROJECT_B: &str = "11112222333344445555666677778888";

/// Builds a plausible instance id from a short name, e.g. `off1` -> `off1...in07`.
pub fn instance(name: &str) -> String {
    format!("{name:0>32}in07")
}

/// A test's own folder; every path the binary writes is inside it.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn out_dir(&self) -> PathBuf {
        self.path().join("reports")
    }

    /// Writes an inventory with a label column `owner`; returns its path.
    pub fn inventory(&self, name: &str, rows: &[(&str, &str)]) -> PathBuf {
        let mut text = String::from("project_id,instance_id,owner\n");
        for (project, instance) in rows {
            text.push_str(&format!(
                "{project},{instance},owner-of-{}\n",
                &instance[..6.min(instance.len())]
            ));
        }
        self.write(name, &text)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }
}

/// Starts the simulator with `scenario` JSON plus the test token.
pub fn simulator(scenario: &str) -> Simulator {
    let mut scenario = Scenario::from_json(scenario).expect("valid scenario");
    scenario.tokens.push(taurus_audit::sim::TokenGrant {
        token: TOKEN.to_string(),
        projects: None,
    });
    Simulator::start("127.0.0.1:0".parse().unwrap(), scenario).expect("simulator starts")
}

/// Builds a command for the binary with a clean environment: no inherited credentials, proxies or
/// home folder, so nothing outside the test can change what it does.
pub fn command(dir: &TestDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taurus-audit"));
    command.env_clear();
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command.env("HOME", dir.path());
    command.current_dir(dir.path());
    command
}

/// Runs `scan` against `sim` with the test token and the given extra flags.
pub fn scan(dir: &TestDir, sim: &Simulator, inventory: &Path, extra: &[&str]) -> Run {
    let mut command = command(dir);
    command
        .env("TAURUS_AUDIT_TOKEN", TOKEN)
        .arg("scan")
        .arg("--inventory")
        .arg(inventory)
        .arg("--endpoint")
        .arg(sim.url())
        .arg("--out-dir")
        .arg(dir.out_dir())
        .args(["--rate", "500", "--backoff-scale", "0.001"])
        .args(extra);
    Run::from(
        command.output().expect("binary runs"),
        format!("{command:?}"),
    )
}

/// A finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub command: String,
}

impl Run {
    pub fn from(output: Output, command: String) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            command,
        }
    }

    /// Fails with the command and its output when the exit code differs.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code of {}\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.stdout, self.stderr
        );
        self
    }

    /// Returns the run folder printed on stdout.
    pub fn run_dir(&self) -> PathBuf {
        let line = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no run folder on stdout; stderr:\n{}", self.stderr));
        PathBuf::from(line.trim())
    }

    pub fn report(&self) -> Value {
        read_report(&self.run_dir())
    }
}

pub fn read_report(run_dir: &Path) -> Value {
    let text = std::fs::read_to_string(run_dir.join("report.json")).expect("report.json exists");
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("report.json is not JSON ({err}):\n{text}"))
}

/// Reads a CSV report into rows of cells, header first.
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .expect("CSV report exists");
    reader
        .records()
        .map(|r| r.expect("valid CSV").iter().map(str::to_string).collect())
        .collect()
}

/// Returns the result object for an instance id, failing if it is not there exactly once.
pub fn result_for<'a>(report: &'a Value, instance_id: &str) -> &'a Value {
    let matches: Vec<&Value> = report["results"]
        .as_array()
        .expect("results array")
        .iter()
        .filter(|r| r["instance_id"] == instance_id)
        .collect();
    assert_eq!(
        matches.len(),
        1,
        "instance {instance_id} should appear once in results"
    );
    matches[0]
}
