//! Inventory loading: CSV files of project/instance pairs, validated in full
//! before the first request and then streamed again for the scan.
//!
//! Loading takes two passes over the files. [`Inventory::load`] reads every
//! row, collects every error (file, line, value and the fix), records
//! duplicates and hashes each file. [`Inventory::rows`] then streams the rows
//! again in the same order and fails if a file changed in between. Memory
//! grows only with the set of distinct (project, instance) pairs that
//! duplicate detection needs, never with whole rows.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::api::endpoint::{Endpoint, EndpointResolver};

/// Required columns, matched case-insensitively after trimming.
pub const PROJECT_COLUMN: &str = "project_id";
pub const INSTANCE_COLUMN: &str = "instance_id";
/// Optional columns with a meaning of their own; every other column is a label.
pub const REGION_COLUMN: &str = "region";
pub const ENDPOINT_COLUMN: &str = "endpoint";

/// Longest accepted project or instance id.
pub const MAX_ID_LEN: usize = 64;

/// One inventory file as the report describes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InventoryFile {
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Data rows, duplicates included, blank lines excluded.
    pub rows: u64,
}

/// One validated inventory row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Position in the whole inventory, from 0, in file then line order.
    pub seq: u64,
    /// Index into [`Inventory::files`].
    pub file: usize,
    /// 1-based line of the row in its file.
    pub line: u64,
    pub project_id: String,
    pub instance_id: String,
    /// The row's region, else `--region`, else empty.
    pub region: String,
    pub endpoint: Endpoint,
    /// Values aligned with [`Inventory::label_names`]; `None` where the row's file lacks that column.
    pub labels: Vec<Option<String>>,
}

/// A problem with one place in the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: PathBuf,
    /// 1-based line, or 0 for a problem with the file as a whole.
    pub line: u64,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

/// Every error found in an inventory; nothing may be sent while any exists.
#[derive(Debug, thiserror::Error)]
pub struct InventoryError {
    pub issues: Vec<Issue>,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        let noun = if count == 1 { "error" } else { "errors" };
        writeln!(f, "the inventory has {count} {noun}; nothing was sent:")?;
        for issue in &self.issues {
            writeln!(f, "  {issue}")?;
        }
        write!(f, "fix these and run the scan again")
    }
}

/// A validated inventory: file metadata, label columns, duplicates and warnings.
#[derive(Debug)]
pub struct Inventory {
    pub files: Vec<InventoryFile>,
    /// Label columns across all files, in first-seen order and first-seen spelling.
    pub label_names: Vec<String>,
    /// Rows in all files, duplicates included.
    pub total_rows: u64,
    /// For each duplicate row's `seq`, the `seq` of the first row with the same pair.
    pub duplicate_of: HashMap<u64, u64>,
    /// Distinct endpoints in use, sorted.
    pub endpoints: Vec<String>,
    /// Distinct project ids, so credentials can be checked for each before the scan.
    pub projects: std::collections::BTreeSet<String>,
    pub warnings: Vec<Issue>,
    resolver: EndpointResolver,
}

/// Column positions of one file's header.
struct Columns {
    project: usize,
    instance: usize,
    region: Option<usize>,
    endpoint: Option<usize>,
    /// (column position, index into the label list).
    labels: Vec<(usize, usize)>,
    width: usize,
}

impl Inventory {
    /// Expands `paths` (files, and folders of `*.csv`), validates every row and
    /// returns the inventory, or every error found.
    pub fn load(
        paths: &[PathBuf],
        resolver: EndpointResolver,
    ) -> Result<Inventory, InventoryError> {
        let mut issues = Vec::new();
        let files = expand_paths(paths, &mut issues);
        let mut inventory = Inventory {
            files: Vec::new(),
            label_names: Vec::new(),
            total_rows: 0,
            duplicate_of: HashMap::new(),
            endpoints: Vec::new(),
            projects: std::collections::BTreeSet::new(),
            warnings: Vec::new(),
            resolver,
        };
        // The first place each pair was seen: (seq, file index, line).
        let mut seen: HashMap<(String, String), (u64, usize, u64)> = HashMap::new();
        let mut endpoints = std::collections::BTreeSet::new();
        let mut seq = 0u64;

        for path in files {
            let file_index = inventory.files.len();
            let mut reader = match open_csv(&path) {
                Ok(reader) => reader,
                Err(err) => {
                    issues.push(file_issue(&path, format!("cannot read the file: {err}")));
                    continue;
                }
            };
            let mut rows_in_file = 0u64;
            let columns = match read_header(&mut reader, &path, &mut inventory.label_names) {
                Ok(columns) => columns,
                Err(issue) => {
                    issues.push(issue);
                    continue;
                }
            };
            let mut record = csv::ByteRecord::new();
            loop {
                let line = match next_record(&mut reader, &mut record) {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(err) => {
                        issues.push(csv_issue(&path, &err));
                        if is_io_error(&err) {
                            break;
                        }
                        continue;
                    }
                };
                rows_in_file += 1;
                match parse_row(
                    &record,
                    line,
                    &columns,
                    inventory.label_names.len(),
                    &inventory.resolver,
                ) {
                    Ok(parsed) => {
                        warn_about_id_shape(&parsed, &path, line, &mut inventory.warnings);
                        let key = (parsed.project_id.clone(), parsed.instance_id.clone());
                        if let Some(&(first_seq, first_file, first_line)) = seen.get(&key) {
                            inventory.duplicate_of.insert(seq, first_seq);
                            let first_path = inventory
                                .files
                                .get(first_file)
                                .map_or(path.as_path(), |f| f.path.as_path());
                            inventory.warnings.push(Issue {
                                path: path.clone(),
                                line,
                                message: format!(
                                    "duplicate of {}:{} (project {}, instance {}); it is checked once and reported at both places",
                                    first_path.display(),
                                    first_line,
                                    key.0,
                                    key.1
                                ),
                            });
                        } else {
                            seen.insert(key, (seq, file_index, line));
                        }
                        endpoints.insert(parsed.endpoint.base_url().to_string());
                        if !inventory.projects.contains(&parsed.project_id) {
                            inventory.projects.insert(parsed.project_id.clone());
                        }
                    }
                    Err(messages) => {
                        for message in messages {
                            issues.push(Issue {
                                path: path.clone(),
                                line,
                                message,
                            });
                        }
                    }
                }
                seq += 1;
            }
            if rows_in_file == 0 {
                issues.push(file_issue(
                    &path,
                    "the file has a header but no rows; add rows or leave the file out".to_string(),
                ));
            }
            // The hash is of the bytes the reader consumed, so it matches what was validated.
            let sha256 = reader.into_inner().finish();
            inventory.files.push(InventoryFile {
                path,
                sha256,
                rows: rows_in_file,
            });
            inventory.total_rows += rows_in_file;
        }

        if !issues.is_empty() {
            return Err(InventoryError { issues });
        }
        inventory.endpoints = endpoints.into_iter().collect();
        Ok(inventory)
    }

    /// Streams the validated rows again, in inventory order. An item is `Err`
    /// when a file cannot be read or no longer matches the validated bytes.
    pub fn rows(&self) -> RowStream<'_> {
        RowStream {
            inventory: self,
            file_index: 0,
            current: None,
            seq: 0,
            failed: false,
        }
    }
}

/// The second pass over the inventory: rows in order, files checked against their hashes.
pub struct RowStream<'a> {
    inventory: &'a Inventory,
    file_index: usize,
    current: Option<(csv::Reader<HashingReader<File>>, Columns)>,
    seq: u64,
    failed: bool,
}

impl Iterator for RowStream<'_> {
    type Item = anyhow::Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = self.advance();
        if matches!(result, Some(Err(_))) {
            self.failed = true;
        }
        result
    }
}

impl RowStream<'_> {
    fn advance(&mut self) -> Option<anyhow::Result<Row>> {
        loop {
            let file = self.inventory.files.get(self.file_index)?;
            if self.current.is_none() {
                let mut reader = match open_csv(&file.path) {
                    Ok(reader) => reader,
                    Err(err) => return Some(Err(changed_error(&file.path, &err.to_string()))),
                };
                // Label names were collected in the first pass, so this only re-reads positions.
                let mut names = self.inventory.label_names.clone();
                let columns = match read_header(&mut reader, &file.path, &mut names) {
                    Ok(columns) if names.len() == self.inventory.label_names.len() => columns,
                    _ => return Some(Err(changed_error(&file.path, "its header changed"))),
                };
                self.current = Some((reader, columns));
            }
            let (reader, columns) = self.current.as_mut().expect("reader opened above");
            let mut record = csv::ByteRecord::new();
            match next_record(reader, &mut record) {
                Ok(Some(line)) => {
                    let parsed = parse_row(
                        &record,
                        line,
                        columns,
                        self.inventory.label_names.len(),
                        &self.inventory.resolver,
                    );
                    let Ok(parsed) = parsed else {
                        return Some(Err(changed_error(
                            &file.path,
                            &format!("line {line} is no longer valid"),
                        )));
                    };
                    let row = Row {
                        seq: self.seq,
                        file: self.file_index,
                        line,
                        project_id: parsed.project_id,
                        instance_id: parsed.instance_id,
                        region: parsed.region,
                        endpoint: parsed.endpoint,
                        labels: parsed.labels,
                    };
                    self.seq += 1;
                    return Some(Ok(row));
                }
                Ok(None) => {
                    let (reader, _) = self.current.take().expect("reader opened above");
                    if reader.into_inner().finish() != file.sha256 {
                        return Some(Err(changed_error(&file.path, "its content changed")));
                    }
                    self.file_index += 1;
                }
                Err(err) => return Some(Err(changed_error(&file.path, &err.to_string()))),
            }
        }
    }
}

fn changed_error(path: &Path, detail: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "inventory file {} changed while the scan was running ({detail}); keep inventories unchanged during a scan and run it again",
        path.display()
    )
}

/// A reader that hashes every byte it passes on.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads what is left, so the hash covers the whole input, and returns it as lowercase hex.
    pub fn finish(mut self) -> String {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = self.read(&mut buffer) {
            if n == 0 {
                break;
            }
        }
        hex::encode(self.hasher.finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Computes the SHA-256 of a file, as lowercase hex.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut reader = HashingReader::new(File::open(path)?);
    io::copy(&mut reader, &mut io::sink())?;
    Ok(reader.finish())
}

fn open_csv(path: &Path) -> io::Result<csv::Reader<HashingReader<File>>> {
    let file = File::open(path)?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        // With the default CRLF terminator the csv crate reports wrong line
        // numbers for CRLF files. Ending records at LF keeps them right, and
        // trimming removes the CR left at the end of the last cell.
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(HashingReader::new(file)))
}

/// Reads the next record that is not blank; returns its 1-based line.
fn next_record<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
) -> csv::Result<Option<u64>> {
    loop {
        if !reader.read_byte_record(record)? {
            return Ok(None);
        }
        // A line of spaces or of empty cells is blank too.
        if record.iter().all(|field| field.is_empty()) {
            continue;
        }
        return Ok(Some(record.position().map_or(0, |p| p.line())));
    }
}

fn read_header<R: Read>(
    reader: &mut csv::Reader<R>,
    path: &Path,
    label_names: &mut Vec<String>,
) -> Result<Columns, Issue> {
    let mut record = csv::ByteRecord::new();
    let line = match next_record(reader, &mut record) {
        Ok(Some(line)) => line,
        Ok(None) => {
            return Err(file_issue(
                path,
                format!(
                    "the file is empty; it needs a header row with at least {PROJECT_COLUMN},{INSTANCE_COLUMN}"
                ),
            ));
        }
        Err(err) => return Err(csv_issue(path, &err)),
    };

    let mut names = Vec::with_capacity(record.len());
    for (position, field) in record.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(field) else {
            return Err(Issue {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "header column {} is not valid UTF-8; save the file as UTF-8",
                    position + 1
                ),
            });
        };
        let name = name
            .strip_prefix('\u{feff}')
            .unwrap_or(name)
            .trim()
            .to_string();
        names.push(name);
    }

    let find = |column: &str| names.iter().position(|n| n.eq_ignore_ascii_case(column));
    let mut problems = Vec::new();
    for (position, name) in names.iter().enumerate() {
        if name.is_empty() {
            problems.push(format!(
                "header column {} has no name; name it or remove the column",
                position + 1
            ));
        } else if names[..position]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            problems.push(format!(
                "header column {name:?} appears twice; rename or remove one"
            ));
        }
    }

    let project = find(PROJECT_COLUMN);
    let instance = find(INSTANCE_COLUMN);
    for (found, column) in [(project, PROJECT_COLUMN), (instance, INSTANCE_COLUMN)] {
        if found.is_none() {
            problems.push(format!(
                "the header has no {column} column (found: {}); the first row must name the columns, with at least {PROJECT_COLUMN},{INSTANCE_COLUMN}",
                names.join(",")
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Issue {
            path: path.to_path_buf(),
            line,
            message: problems.join("; "),
        });
    }

    let reserved = [
        PROJECT_COLUMN,
        INSTANCE_COLUMN,
        REGION_COLUMN,
        ENDPOINT_COLUMN,
    ];
    let mut labels = Vec::new();
    for (position, name) in names.iter().enumerate() {
        if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            continue;
        }
        let index = match label_names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
        {
            Some(index) => index,
            None => {
                label_names.push(name.clone());
                label_names.len() - 1
            }
        };
        labels.push((position, index));
    }
    Ok(Columns {
        project: project.expect("checked above"),
        instance: instance.expect("checked above"),
        region: find(REGION_COLUMN),
        endpoint: find(ENDPOINT_COLUMN),
        labels,
        width: names.len(),
    })
}

/// The fields of a row before it gets its place in the inventory.
struct ParsedRow {
    project_id: String,
    instance_id: String,
    region: String,
    endpoint: Endpoint,
    labels: Vec<Option<String>>,
}

fn parse_row(
    record: &csv::ByteRecord,
    line: u64,
    columns: &Columns,
    label_count: usize,
    resolver: &EndpointResolver,
) -> Result<ParsedRow, Vec<String>> {
    let mut problems = Vec::new();
    if record.len() != columns.width {
        problems.push(format!(
            "the row has {} fields but the header has {}; check for a missing or extra comma, or quote a value that contains one",
            record.len(),
            columns.width
        ));
        return Err(problems);
    }
    let mut text = |position: usize, column: &str| -> String {
        match std::str::from_utf8(&record[position]) {
            Ok(value) => value.to_string(),
            Err(_) => {
                problems.push(format!(
                    "{column} is not valid UTF-8 (line {line}); save the file as UTF-8"
                ));
                String::new()
            }
        }
    };
    let project_id = text(columns.project, PROJECT_COLUMN);
    let instance_id = text(columns.instance, INSTANCE_COLUMN);
    let region = columns
        .region
        .map(|p| text(p, REGION_COLUMN))
        .unwrap_or_default();
    let endpoint_cell = columns
        .endpoint
        .map(|p| text(p, ENDPOINT_COLUMN))
        .unwrap_or_default();
    let mut labels = vec![None; label_count];
    for &(position, index) in &columns.labels {
        labels[index] = Some(text(position, "a label"));
    }
    for (column, value) in [
        (PROJECT_COLUMN, &project_id),
        (INSTANCE_COLUMN, &instance_id),
    ] {
        if let Err(reason) = check_id(value) {
            problems.push(format!("invalid {column} {value:?}: {reason}"));
        }
    }
    let endpoint = match resolver.resolve(&endpoint_cell, &region) {
        Ok(endpoint) => Some(endpoint),
        Err(message) => {
            problems.push(message);
            None
        }
    };
    match (problems.is_empty(), endpoint) {
        (true, Some(endpoint)) => Ok(ParsedRow {
            project_id,
            instance_id,
            region: if region.is_empty() {
                resolver.default_region().to_string()
            } else {
                region
            },
            endpoint,
            labels,
        }),
        _ => Err(problems),
    }
}

/// Checks that an id is safe to put in a URL path: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn check_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the cell is empty; every row needs both ids".to_string());
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!(
            "it is {} characters long, the maximum is {MAX_ID_LEN}",
            value.len()
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "it contains {bad:?}; ids may contain only letters, digits, '-' and '_', because they go into the request path"
        ));
    }
    Ok(())
}

fn warn_about_id_shape(row: &ParsedRow, path: &Path, line: u64, warnings: &mut Vec<Issue>) {
    if row.project_id.len() != 32 {
        warnings.push(Issue {
            path: path.to_path_buf(),
            line,
            message: format!(
                "project_id {:?} is {} characters long; Huawei Cloud project ids have 32",
                row.project_id,
                row.project_id.len()
            ),
        });
    }
    if !row.instance_id.ends_with("in07") {
        warnings.push(Issue {
            path: path.to_path_buf(),
            line,
            message: format!(
                "instance_id {:?} does not end in \"in07\" as TaurusDB instance ids do (node ids end in \"no07\")",
                row.instance_id
            ),
        });
    }
}

/// Expands files and folders into the list of files to read, in order.
fn expand_paths(paths: &[PathBuf], issues: &mut Vec<Issue>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut canonical_seen = std::collections::HashSet::new();
    for path in paths {
        let mut found = Vec::new();
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut csvs: Vec<PathBuf> = entries
                        .filter_map(|entry| entry.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.is_file()
                                && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
                        })
                        .collect();
                    csvs.sort();
                    if csvs.is_empty() {
                        issues.push(file_issue(path, "the folder has no *.csv files; point --inventory at a CSV file or a folder of them".to_string()));
                    }
                    found.extend(csvs);
                }
                Err(err) => issues.push(file_issue(path, format!("cannot list the folder: {err}"))),
            },
            Ok(_) => found.push(path.clone()),
            Err(err) => issues.push(file_issue(
                path,
                format!("cannot read the inventory: {err}; check the path given to --inventory"),
            )),
        }
        for file in found {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if canonical_seen.insert(key) {
                files.push(file);
            } else {
                log::warn!("{}: given more than once; it is read once", file.display());
            }
        }
    }
    files
}

fn file_issue(path: &Path, message: String) -> Issue {
    Issue {
        path: path.to_path_buf(),
        line: 0,
        message,
    }
}

fn csv_issue(path: &Path, err: &csv::Error) -> Issue {
    let line = err.position().map_or(0, |p| p.line());
    let message = match err.kind() {
        csv::ErrorKind::Io(io) => format!("cannot read the file: {io}"),
        csv::ErrorKind::Utf8 { .. } => {
            "the row is not valid UTF-8; save the file as UTF-8".to_string()
        }
        _ => format!("cannot parse the row as CSV: {err}; check the quoting"),
    };
    Issue {
        path: path.to_path_buf(),
        line,
        message,
    }
}

fn is_io_error(err: &csv::Error) -> bool {
    matches!(err.kind(), csv::ErrorKind::Io(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    const INSTANCE: &str = "61a4ea66210545909d74a05c27a7179ein07";

    fn resolver() -> EndpointResolver {
        EndpointResolver::new(None, Some("cn-north-4")).unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Loads `text` as one inventory file; the folder lives as long as the inventory is used.
    fn load_text(text: &str) -> Result<Inventory, InventoryError> {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = write(&dir, "inv.csv", text);
        Inventory::load(&[path], resolver())
    }

    fn messages(err: &InventoryError) -> Vec<String> {
        err.issues
            .iter()
            .map(|i| format!("{}: {}", i.line, i.message))
            .collect()
    }

    #[test]
    fn load_minimal_inventory() {
        let inventory =
            load_text(&format!("project_id,instance_id\n{PROJECT},{INSTANCE}\n")).unwrap();
        assert_eq!(inventory.total_rows, 1);
        let rows: Vec<Row> = inventory.rows().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].project_id, PROJECT);
        assert_eq!(rows[0].region, "cn-north-4");
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            rows[0].endpoint.base_url(),
            "https://gaussdb.cn-north-4.myhuaweicloud.com"
        );
    }

    #[test]
    fn header_case_bom_crlf_blank_lines_trim() {
        let text = format!(
            "\u{feff} Project_ID , INSTANCE_id ,Owner\r\n\r\n  {PROJECT} , {INSTANCE} , alice \r\n,,\r\n"
        );
        let inventory = load_text(&text).unwrap();
        assert_eq!(inventory.total_rows, 1);
        assert_eq!(inventory.label_names, vec!["Owner".to_string()]);
        let row = inventory.rows().next().unwrap().unwrap();
        assert_eq!(row.instance_id, INSTANCE);
        assert_eq!(row.labels, vec![Some("alice".to_string())]);
        assert_eq!(row.line, 3);
    }

    #[test]
    fn invalid_ids_all_reported() {
        let bad = [
            "../../v3/x",
            "a/b",
            "a%2F",
            "has space",
            "",
            "x".repeat(65).as_str(),
            "é",
        ]
        .map(str::to_string);
        let mut text = "project_id,instance_id\n".to_string();
        for value in &bad {
            text.push_str(&format!("{PROJECT},\"{value}\"\n"));
        }
        let err = load_text(&text).unwrap_err();
        assert_eq!(err.issues.len(), bad.len(), "{:?}", messages(&err));
        for (issue, line) in err.issues.iter().zip(2..) {
            assert_eq!(issue.line, line);
            assert!(
                issue.message.contains("invalid instance_id"),
                "{}",
                issue.message
            );
        }
        let display = err.to_string();
        assert!(display.contains("inv.csv:2:"), "{display}");
        assert!(display.contains("\"../../v3/x\""), "{display}");
    }

    #[test]
    fn id_check_accepts_allowed_set() {
        assert!(check_id("aZ09-_").is_ok());
        assert!(check_id(&"a".repeat(64)).is_ok());
        assert!(check_id(&"a".repeat(65)).is_err());
        assert!(check_id("a.b").is_err());
        assert!(check_id("..").is_err());
    }

    #[test]
    fn missing_required_column() {
        let err = load_text("project,instance_id\nx,y\n").unwrap_err();
        assert_eq!(err.issues.len(), 1);
        assert!(
            err.issues[0].message.contains("no project_id column"),
            "{:?}",
            messages(&err)
        );
        assert_eq!(err.issues[0].line, 1);
    }

    #[test]
    fn empty_file_and_header_only() {
        let err = load_text("").unwrap_err();
        assert!(err.issues[0].message.contains("empty"));
        let err = load_text("project_id,instance_id\n").unwrap_err();
        assert!(err.issues[0].message.contains("no rows"));
    }

    #[test]
    fn wrong_field_count() {
        let err = load_text(&format!(
            "project_id,instance_id\n{PROJECT},{INSTANCE},extra\n"
        ))
        .unwrap_err();
        assert!(
            err.issues[0]
                .message
                .contains("3 fields but the header has 2"),
            "{:?}",
            messages(&err)
        );
    }

    #[test]
    fn invalid_utf8_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inv.csv");
        let mut bytes = format!("project_id,instance_id,owner\n{PROJECT},{INSTANCE},").into_bytes();
        bytes.extend([0xff, 0xfe, b'\n']);
        std::fs::write(&path, bytes).unwrap();
        let err = Inventory::load(&[path], resolver()).unwrap_err();
        assert!(
            err.issues[0].message.contains("UTF-8"),
            "{:?}",
            messages(&err)
        );
        assert_eq!(err.issues[0].line, 2);
    }

    #[test]
    fn duplicates_scanned_once_and_warned() {
        let text = format!(
            "project_id,instance_id\n{PROJECT},{INSTANCE}\n{PROJECT},other-in07\n{PROJECT},{INSTANCE}\n"
        );
        let inventory = load_text(&text).unwrap();
        assert_eq!(inventory.total_rows, 3);
        assert_eq!(inventory.duplicate_of.get(&2), Some(&0));
        let warning = inventory
            .warnings
            .iter()
            .find(|w| w.message.contains("duplicate"))
            .unwrap();
        assert_eq!(warning.line, 4);
        assert!(warning.message.contains("inv.csv:2"), "{}", warning.message);
    }

    #[test]
    fn id_shape_warnings_do_not_fail() {
        let inventory = load_text("project_id,instance_id\nshort,node1no07\n").unwrap();
        assert_eq!(inventory.warnings.len(), 2);
        assert!(inventory.warnings[0].message.contains("have 32"));
        assert!(inventory.warnings[1].message.contains("in07"));
    }

    #[test]
    fn region_and_endpoint_columns() {
        let text = format!(
            "project_id,instance_id,region,endpoint\n{PROJECT},{INSTANCE},af-south-1,\n{PROJECT},b-in07,,http://127.0.0.1:9\n{PROJECT},c-in07,xx-unknown-1,\n{PROJECT},d-in07,,http://10.1.1.1\n"
        );
        let err = load_text(&text).unwrap_err();
        assert_eq!(err.issues.len(), 2, "{:?}", messages(&err));
        assert!(err.issues[0].message.contains("xx-unknown-1"));
        assert!(err.issues[1].message.contains("plain http://"));
    }

    #[test]
    fn folder_of_csvs_sorted_and_labels_merged() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "b.csv",
            &format!("project_id,instance_id,team\n{PROJECT},b-in07,blue\n"),
        );
        write(
            dir.path(),
            "a.CSV",
            &format!("project_id,instance_id,owner,TEAM\n{PROJECT},a-in07,ann,red\n"),
        );
        write(dir.path(), "notes.txt", "ignored");
        let inventory = Inventory::load(&[dir.path().to_path_buf()], resolver()).unwrap();
        assert_eq!(inventory.files.len(), 2);
        assert!(inventory.files[0].path.ends_with("a.CSV"));
        assert_eq!(
            inventory.label_names,
            vec!["owner".to_string(), "TEAM".to_string()]
        );
        let rows: Vec<Row> = inventory.rows().map(|r| r.unwrap()).collect();
        assert_eq!(rows[0].labels, vec![Some("ann".into()), Some("red".into())]);
        assert_eq!(rows[1].labels, vec![None, Some("blue".into())]);
        assert_eq!(rows[1].seq, 1);
    }

    #[test]
    fn missing_path_and_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        let err = Inventory::load(
            &[dir.path().join("nope.csv"), dir.path().to_path_buf()],
            resolver(),
        )
        .unwrap_err();
        assert_eq!(err.issues.len(), 2, "{:?}", messages(&err));
    }

    #[test]
    fn file_sha256_recorded() {
        let text = format!("project_id,instance_id\n{PROJECT},{INSTANCE}\n");
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "inv.csv", &text);
        let inventory = Inventory::load(std::slice::from_ref(&path), resolver()).unwrap();
        assert_eq!(inventory.files[0].sha256, file_sha256(&path).unwrap());
        assert_eq!(
            inventory.files[0].sha256,
            hex::encode(Sha256::digest(text.as_bytes()))
        );
    }

    #[test]
    fn change_between_passes_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "inv.csv",
            &format!("project_id,instance_id\n{PROJECT},{INSTANCE}\n"),
        );
        let inventory = Inventory::load(std::slice::from_ref(&path), resolver()).unwrap();
        std::fs::write(
            &path,
            format!("project_id,instance_id\n{PROJECT},other-in07\n"),
        )
        .unwrap();
        let results: Vec<_> = inventory.rows().collect();
        assert!(results.iter().any(|r| r.is_err()));
        let err = results
            .into_iter()
            .find_map(|r| r.err())
            .unwrap()
            .to_string();
        assert!(err.contains("changed"), "{err}");
    }
}
