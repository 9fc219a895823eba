//! Report files: `report.json`, `encryption-off.csv` and `errors.csv`.
//!
//! The reporter writes results in inventory order as they become available,
//! into temporary files in the run folder, and renames each into place only
//! when it is complete, so a crash never leaves a half-written file under a
//! final name. `report.json` puts one result object on each line inside a
//! normal JSON document, so it stays greppable. The format is documented in
//! `docs/report-format.md`; it only ever gains fields.

pub mod csv_cell;

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde::ser::SerializeMap;
use tempfile::NamedTempFile;

use crate::finding::{ErrorKind, Finding, Status};
use crate::inventory::{InventoryFile, Row};

pub const SCHEMA_VERSION: u32 = 1;
pub const REPORT_JSON: &str = "report.json";
pub const OFF_CSV: &str = "encryption-off.csv";
pub const ERRORS_CSV: &str = "errors.csv";

/// Counts over distinct (project, instance) pairs; `rows` also counts duplicates.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub total: u64,
    pub on: u64,
    pub off: u64,
    pub not_found: u64,
    pub error: u64,
    pub not_checked: u64,
    /// Inventory rows, duplicates included.
    pub rows: u64,
    /// Rows that repeat an earlier (project, instance) pair.
    pub duplicates: u64,
}

impl Summary {
    pub fn count(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::On => self.on += 1,
            Status::Off => self.off += 1,
            Status::NotFound => self.not_found += 1,
            Status::Error => self.error += 1,
            Status::NotChecked => self.not_checked += 1,
        }
    }

    /// Returns the rows that did not get an `on` or `off` response.
    pub fn unchecked(&self) -> u64 {
        self.not_found + self.error + self.not_checked
    }
}

/// The run's metadata in `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub id: String,
    pub started_at: String,
    pub finished_at: String,
    /// False when the scan was interrupted and some rows are `not_checked`.
    pub complete: bool,
    /// `SIGINT` or `SIGTERM` when a signal stopped the scan.
    pub interrupted_by: Option<String>,
    /// Rows whose result came from the journal of an earlier, interrupted attempt.
    pub resumed_rows: u64,
    pub inventory: Vec<InventoryFile>,
    pub endpoints: Vec<String>,
    /// The `--rate` ceiling, requests per second.
    pub rate: f64,
    pub concurrency: usize,
    pub timeout_seconds: f64,
    pub max_attempts: u32,
    pub row_budget_seconds: f64,
    pub language: String,
    pub credential_sources: Vec<String>,
    /// True when any response came from the bundled simulator, not the real API.
    pub simulator: bool,
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

/// One row's entry in `report.json`.
struct ResultEntry<'a> {
    row: &'a Row,
    label_names: &'a [String],
    source: &'a str,
    finding: &'a Finding,
    duplicate_of: Option<&'a str>,
}

impl Serialize for ResultEntry<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let finding = self.finding;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("project_id", &self.row.project_id)?;
        map.serialize_entry("instance_id", &self.row.instance_id)?;
        map.serialize_entry("region", &self.row.region)?;
        map.serialize_entry(
            "labels",
            &Labels {
                names: self.label_names,
                values: &self.row.labels,
            },
        )?;
        map.serialize_entry("status", &finding.status)?;
        map.serialize_entry("checked_at", &finding.checked_at)?;
        map.serialize_entry("request_id", &finding.request_id)?;
        map.serialize_entry("attempts", &finding.attempts)?;
        map.serialize_entry("error_kind", &finding.error_kind)?;
        map.serialize_entry("http_status", &finding.http_status)?;
        map.serialize_entry("error_code", &finding.error_code)?;
        map.serialize_entry("error_msg", &finding.error_msg)?;
        map.serialize_entry("source", self.source)?;
        map.serialize_entry("duplicate_of", &self.duplicate_of)?;
        map.end()
    }
}

/// Labels as a JSON object in column order, with only the row's own file's columns.
struct Labels<'a> {
    names: &'a [String],
    values: &'a [Option<String>],
}

impl Serialize for Labels<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.names.iter().zip(self.values) {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// Writes the three report files of one run.
pub struct ReportWriter {
    dir: PathBuf,
    label_names: Vec<String>,
    results: BufWriter<NamedTempFile>,
    first_result: bool,
    off: csv::Writer<NamedTempFile>,
    errors: csv::Writer<NamedTempFile>,
    summary: Summary,
}

impl ReportWriter {
    /// Opens temporary files in `dir` and writes the CSV headers.
    pub fn create(dir: &Path, label_names: &[String]) -> anyhow::Result<ReportWriter> {
        let temp = || {
            NamedTempFile::with_prefix_in(".partial-", dir)
                .with_context(|| format!("cannot create a file in {}", dir.display()))
        };
        // A UTF-8 byte-order mark makes Excel read non-ASCII labels as UTF-8;
        // LibreOffice and the csv crate skip it.
        let with_bom = || -> anyhow::Result<NamedTempFile> {
            let mut file = temp()?;
            file.write_all(b"\xEF\xBB\xBF")
                .with_context(|| format!("cannot write a file in {}", dir.display()))?;
            Ok(file)
        };
        let mut off = csv::Writer::from_writer(with_bom()?);
        let mut errors = csv::Writer::from_writer(with_bom()?);
        let mut off_header = vec!["project_id", "instance_id", "region"];
        off_header.extend(label_names.iter().map(String::as_str));
        let mut errors_header = off_header.clone();
        off_header.extend(["checked_at", "request_id"]);
        errors_header.extend([
            "status",
            "error_kind",
            "http_status",
            "error_code",
            "error_msg",
            "attempts",
            "checked_at",
            "request_id",
            "source",
        ]);
        write_csv_row(&mut off, off_header.iter().copied())?;
        write_csv_row(&mut errors, errors_header.iter().copied())?;
        Ok(ReportWriter {
            dir: dir.to_path_buf(),
            label_names: label_names.to_vec(),
            results: BufWriter::new(temp()?),
            first_result: true,
            off,
            errors,
            summary: Summary::default(),
        })
    }

    /// Writes one row's result; rows must come in inventory order.
    /// A duplicate row appears in `report.json` only, pointing at its first place.
    pub fn write(
        &mut self,
        row: &Row,
        source: &str,
        finding: &Finding,
        duplicate_of: Option<&str>,
    ) -> anyhow::Result<()> {
        self.summary.rows += 1;
        let entry = ResultEntry {
            row,
            label_names: &self.label_names,
            source,
            finding,
            duplicate_of,
        };
        if !self.first_result {
            self.results
                .write_all(b",\n")
                .map_err(|e| self.io_error(e))?;
        }
        self.first_result = false;
        serde_json::to_writer(&mut self.results, &entry).map_err(|e| self.io_error(e.into()))?;
        if duplicate_of.is_some() {
            self.summary.duplicates += 1;
            return Ok(());
        }
        self.summary.count(finding.status);

        let mut cells: Vec<String> = vec![
            row.project_id.clone(),
            row.instance_id.clone(),
            row.region.clone(),
        ];
        cells.extend(row.labels.iter().map(|v| v.clone().unwrap_or_default()));
        let checked_at = finding.checked_at.clone().unwrap_or_default();
        let request_id = finding.request_id.clone().unwrap_or_default();
        match finding.status {
            Status::On => {}
            Status::Off => {
                cells.extend([checked_at, request_id]);
                write_csv_row(&mut self.off, cells.iter().map(String::as_str))?;
            }
            Status::NotFound | Status::Error | Status::NotChecked => {
                cells.extend([
                    finding.status.as_str().to_string(),
                    finding
                        .error_kind
                        .map(ErrorKind::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    finding
                        .http_status
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    finding.error_code.clone().unwrap_or_default(),
                    finding.error_msg.clone().unwrap_or_default(),
                    finding.attempts.to_string(),
                    checked_at,
                    request_id,
                    source.to_string(),
                ]);
                write_csv_row(&mut self.errors, cells.iter().map(String::as_str))?;
            }
        }
        Ok(())
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Writes `report.json` around the results and renames every file into place.
    pub fn finish(self, run: &RunInfo) -> anyhow::Result<Summary> {
        let dir = self.dir.clone();
        let io_error = |err: io::Error| {
            anyhow::Error::new(err)
                .context(format!("cannot write the reports in {}", dir.display()))
        };
        let mut results = self
            .results
            .into_inner()
            .map_err(|e| io_error(e.into_error()))?;
        results.flush().map_err(io_error)?;
        results.as_file_mut().rewind().map_err(io_error)?;

        let mut report =
            BufWriter::new(NamedTempFile::with_prefix_in(".partial-", &dir).map_err(io_error)?);
        let head = |out: &mut BufWriter<NamedTempFile>| -> anyhow::Result<()> {
            writeln!(out, "{{")?;
            writeln!(out, "\"schema_version\": {SCHEMA_VERSION},")?;
            let tool = Tool {
                name: "taurus-audit",
                version: env!("CARGO_PKG_VERSION"),
            };
            writeln!(out, "\"tool\": {},", serde_json::to_string(&tool)?)?;
            writeln!(out, "\"run\": {},", serde_json::to_string_pretty(run)?)?;
            writeln!(
                out,
                "\"summary\": {},",
                serde_json::to_string_pretty(&self.summary)?
            )?;
            write!(out, "\"results\": [")?;
            if !self.first_result {
                writeln!(out)?;
            }
            Ok(())
        };
        head(&mut report)
            .with_context(|| format!("cannot write {REPORT_JSON} in {}", dir.display()))?;
        io::copy(results.as_file_mut(), &mut report).map_err(io_error)?;
        writeln!(report, "\n]\n}}").map_err(io_error)?;
        let report = report.into_inner().map_err(|e| io_error(e.into_error()))?;

        persist(
            self.off
                .into_inner()
                .map_err(|e| io_error(e.into_error()))?,
            &dir.join(OFF_CSV),
        )?;
        persist(
            self.errors
                .into_inner()
                .map_err(|e| io_error(e.into_error()))?,
            &dir.join(ERRORS_CSV),
        )?;
        persist(report, &dir.join(REPORT_JSON))?;
        Ok(self.summary)
    }

    fn io_error(&self, err: io::Error) -> anyhow::Error {
        anyhow::Error::new(err).context(format!(
            "cannot write the reports in {}",
            self.dir.display()
        ))
    }
}

/// Writes one CSV record with every cell neutralised for spreadsheets.
fn write_csv_row<'a>(
    writer: &mut csv::Writer<NamedTempFile>,
    cells: impl Iterator<Item = &'a str>,
) -> anyhow::Result<()> {
    let record: Vec<std::borrow::Cow<'a, str>> = cells.map(csv_cell::neutralize).collect();
    writer
        .write_record(record.iter().map(|c| c.as_bytes()))
        .context("cannot write a CSV report row")
}

/// Flushes a finished temporary file to disk and renames it to its final name.
pub fn persist(file: NamedTempFile, target: &Path) -> anyhow::Result<()> {
    // Temporary files are created owner-only; reports are for the team to read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot set the permissions of {}", target.display()))?;
    }
    file.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", target.display()))?;
    file.persist(target).map_err(|err| {
        anyhow::Error::new(err.error).context(format!(
            "cannot move the finished report to {}",
            target.display()
        ))
    })?;
    Ok(())
}

/// Opens a file for appending, creating it; used for the journal.
pub fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}
