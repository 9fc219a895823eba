//! The run journal and manifest, which make an interrupted scan resumable.
//!
//! `manifest.json` records, when a run starts, the inventory files with their
//! SHA-256 so a resume can prove the inventory is unchanged. `journal.jsonl`
//! gets one line per finished row, in completion order, flushed to the
//! operating system as soon as the row is done: a `kill -9` loses at most the
//! requests in flight. (A power cut can lose more, since lines are not synced
//! one by one.)

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::finding::{ErrorKind, Finding, Status};
use crate::inventory::InventoryFile;

pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const MANIFEST_FILE: &str = "manifest.json";

/// The record a resume checks before it trusts the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub tool_version: String,
    pub run_id: String,
    pub started_at: String,
    pub inventory: Vec<InventoryFile>,
    /// Distinct endpoints the rows use; a resume must use the same ones.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Set when the run's final reports are complete, so a resume is refused.
    #[serde(default)]
    pub complete: bool,
}

impl Manifest {
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(MANIFEST_FILE);
        let mut file = tempfile::NamedTempFile::with_prefix_in(".partial-", dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        serde_json::to_writer_pretty(&mut file, self)?;
        file.write_all(b"\n")?;
        crate::report::persist(file, &path)?;
        Ok(())
    }

    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}; --resume needs the folder of a run that this tool started",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid manifest", path.display()))
    }

    /// Fails when the run is complete, or its endpoints differ from `endpoints`.
    pub fn check_resumable(&self, dir: &Path, endpoints: &[String]) -> anyhow::Result<()> {
        if self.complete {
            bail!(
                "the run in {} is already complete, so there is nothing to resume; start a new scan without --resume",
                dir.display()
            );
        }
        if !self.endpoints.is_empty() && self.endpoints != endpoints {
            bail!(
                "the run started against {} but the endpoints now are {}; resume with the same --endpoint and inventory, or start a new scan",
                self.endpoints.join(", "),
                endpoints.join(", ")
            );
        }
        Ok(())
    }

    /// Fails unless `current` has the same files, in the same order, with the same bytes.
    pub fn check_inventory(&self, current: &[InventoryFile]) -> anyhow::Result<()> {
        let mismatch = self.inventory.len() != current.len()
            || self
                .inventory
                .iter()
                .zip(current)
                .any(|(a, b)| a.sha256 != b.sha256);
        if mismatch {
            let describe = |files: &[InventoryFile]| {
                files
                    .iter()
                    .map(|f| format!("{} (sha256 {})", f.path.display(), f.sha256))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            bail!(
                "the inventory differs from the one the run started with, so its journal cannot be trusted.\n  run started with: {}\n  given now:        {}\nresume with the same inventory files, unchanged, or start a new scan without --resume",
                describe(&self.inventory),
                describe(current)
            );
        }
        Ok(())
    }
}

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub project_id: String,
    pub instance_id: String,
    pub finding: Finding,
    /// Whether the response came from the bundled simulator.
    #[serde(default)]
    pub simulator: bool,
}

/// Reports whether a finding is final, so a resume need not ask again. Rows that
/// were cut short, and credential rejections, are asked again by a resume.
pub fn is_final(finding: &Finding) -> bool {
    finding.status != Status::NotChecked && finding.error_kind != Some(ErrorKind::AuthFailed)
}

/// The append-only journal of one run.
pub struct Journal {
    path: PathBuf,
    file: File,
    line: Vec<u8>,
}

impl Journal {
    pub fn open(dir: &Path) -> anyhow::Result<Journal> {
        let path = dir.join(JOURNAL_FILE);
        let file = crate::report::open_append(&path)
            .with_context(|| format!("cannot open the journal {}", path.display()))?;
        Ok(Journal {
            path,
            file,
            line: Vec::with_capacity(512),
        })
    }

    /// Appends one entry with a single write, so a kill leaves at most one torn last line.
    pub fn append(&mut self, entry: &JournalEntry) -> anyhow::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, entry)?;
        self.line.push(b'\n');
        self.file
            .write_all(&self.line)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write the journal {}", self.path.display()))
    }
}

/// Reads the final findings of an earlier attempt, by `seq`. A torn last line
/// (from a kill during a write) is skipped; a torn line elsewhere is an error.
pub fn read_journal(dir: &Path) -> anyhow::Result<HashMap<u64, JournalEntry>> {
    let path = dir.join(JOURNAL_FILE);
    if path.exists() && !path.is_file() {
        bail!(
            "the journal {} is not a regular file; --resume needs the folder of a run that this tool started",
            path.display()
        );
    }
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read the journal {}", path.display()));
        }
    };
    let mut entries = HashMap::new();
    let mut lines = BufReader::new(file).lines().enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let line = line.with_context(|| format!("cannot read the journal {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<JournalEntry>(&line) {
            Ok(entry) => {
                if is_final(&entry.finding) {
                    entries.insert(entry.seq, entry);
                }
            }
            Err(_) if lines.peek().is_none() => {
                log::warn!(
                    "{}:{}: skipping a torn last line (the run was killed while writing it)",
                    path.display(),
                    index + 1
                );
            }
            Err(err) => bail!(
                "{}:{}: the journal is damaged ({err}); start a new scan without --resume",
                path.display(),
                index + 1
            ),
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, status: Status) -> JournalEntry {
        JournalEntry {
            seq,
            project_id: "p".into(),
            instance_id: format!("i{seq}"),
            finding: Finding {
                status,
                error_kind: None,
                http_status: Some(200),
                error_code: None,
                error_msg: None,
                checked_at: Some("2026-01-01T00:00:00Z".into()),
                request_id: Some("r".into()),
                attempts: 1,
            },
            simulator: true,
        }
    }

    #[test]
    fn journal_round_trip_skips_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.append(&entry(0, Status::On)).unwrap();
        journal.append(&entry(1, Status::Off)).unwrap();
        journal.append(&entry(2, Status::NotChecked)).unwrap();
        drop(journal);
        let mut file = crate::report::open_append(&dir.path().join(JOURNAL_FILE)).unwrap();
        file.write_all(b"{\"seq\":3,\"proj").unwrap();
        let entries = read_journal(dir.path()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[&1].finding.status, Status::Off);
        assert!(entries[&1].simulator);
        assert!(!entries.contains_key(&2));
    }

    #[test]
    fn journal_damage_in_middle_is_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), "garbage\n{}\n").unwrap();
        assert!(read_journal(dir.path()).is_err());
    }

    #[test]
    fn auth_failures_not_final() {
        let mut finding = entry(0, Status::Error).finding;
        finding.error_kind = Some(ErrorKind::AuthFailed);
        assert!(!is_final(&finding));
        finding.error_kind = Some(ErrorKind::ServerError);
        assert!(is_final(&finding));
    }
}
