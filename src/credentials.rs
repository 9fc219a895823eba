//! Credentials: where they come from, in a fixed order, and the types that
//! hold them without ever showing them.
//!
//! Order of precedence, first match wins for each project:
//! 1. `--token-map FILE`: a per-project token, for the projects the file lists;
//! 2. `--token-file FILE`: one token for every other project;
//! 3. `TAURUS_AUDIT_TOKEN`;
//! 4. `HUAWEICLOUD_SDK_AK` and `HUAWEICLOUD_SDK_SK` (with
//!    `HUAWEICLOUD_SDK_SECURITY_TOKEN` for temporary keys);
//! 5. the SDK credentials file: `$HUAWEICLOUD_SDK_CREDENTIALS_FILE`, else
//!    `$HOME/.huaweicloud/credentials`, section `[basic]`.
//!
//! Nothing is read from a command-line value, because other users can read a
//! process's arguments. Nothing contacts a cloud metadata service.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::inventory::check_id;

pub const TOKEN_ENV: &str = "TAURUS_AUDIT_TOKEN";
pub const AK_ENV: &str = "HUAWEICLOUD_SDK_AK";
pub const SK_ENV: &str = "HUAWEICLOUD_SDK_SK";
pub const SECURITY_TOKEN_ENV: &str = "HUAWEICLOUD_SDK_SECURITY_TOKEN";
pub const CREDENTIALS_FILE_ENV: &str = "HUAWEICLOUD_SDK_CREDENTIALS_FILE";

/// A secret string. Its `Debug` is redacted and it has no `Display`, so it
/// cannot reach a log, an error message or a report by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Returns the secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The authentication used for a project's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An IAM token sent as `X-Auth-Token`.
    Token(Secret),
    /// An access key pair that signs each request; `security_token` marks temporary keys.
    AkSk {
        ak: String,
        sk: Secret,
        security_token: Option<Secret>,
    },
}

/// The origin of a credential, for logs and the report (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    TokenMap(PathBuf),
    TokenFile(PathBuf),
    TokenEnv,
    SdkEnv,
    CredentialsFile(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::TokenMap(path) => write!(f, "token map {}", path.display()),
            Source::TokenFile(path) => write!(f, "token file {}", path.display()),
            Source::TokenEnv => write!(f, "{TOKEN_ENV}"),
            Source::SdkEnv => write!(f, "{AK_ENV}/{SK_ENV}"),
            Source::CredentialsFile(path) => write!(f, "credentials file {}", path.display()),
        }
    }
}

/// A credential with its source and a short public label (the AK, or the token's source).
#[derive(Debug)]
pub struct Identity {
    pub credential: Credential,
    pub source: Source,
    /// The public name a message may use: `AK HPUA...` or `token for project X from FILE`.
    pub label: String,
}

/// The credentials chosen for a scan: per-project ones and a default.
#[derive(Debug)]
pub struct Credentials {
    /// Every credential in use; rows refer to them by index.
    pub identities: Vec<Arc<Identity>>,
    by_project: HashMap<String, usize>,
    default: Option<usize>,
}

/// The places the loader looks at, so tests can replace the environment.
#[derive(Debug, Default, Clone)]
pub struct Lookup {
    pub token_file: Option<PathBuf>,
    pub token_map: Option<PathBuf>,
    pub env: HashMap<String, String>,
    pub home: Option<PathBuf>,
}

impl Lookup {
    /// Reads the process environment.
    pub fn from_env(token_file: Option<PathBuf>, token_map: Option<PathBuf>) -> Lookup {
        let names = [
            TOKEN_ENV,
            AK_ENV,
            SK_ENV,
            SECURITY_TOKEN_ENV,
            CREDENTIALS_FILE_ENV,
        ];
        let env = names
            .iter()
            .filter_map(|name| {
                std::env::var(name)
                    .ok()
                    .map(|value| (name.to_string(), value))
            })
            .filter(|(_, value)| !value.trim().is_empty())
            .collect();
        Lookup {
            token_file,
            token_map,
            env,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

impl Credentials {
    /// Finds the credentials for the given projects, or explains every way to provide them.
    pub fn load(lookup: &Lookup, projects: &BTreeSet<String>) -> anyhow::Result<Credentials> {
        let mut credentials = Credentials {
            identities: Vec::new(),
            by_project: HashMap::new(),
            default: None,
        };

        if let Some(path) = &lookup.token_map {
            for (project, token) in read_token_map(path)? {
                credentials.identities.push(Arc::new(Identity {
                    credential: Credential::Token(token),
                    source: Source::TokenMap(path.clone()),
                    label: format!("token for project {project} from {}", path.display()),
                }));
                credentials
                    .by_project
                    .insert(project, credentials.identities.len() - 1);
            }
        }
        if let Some(identity) = find_default(lookup)? {
            credentials.identities.push(Arc::new(identity));
            credentials.default = Some(credentials.identities.len() - 1);
        }

        if credentials.identities.is_empty() {
            bail!("{}", missing_credentials_help());
        }
        let uncovered: Vec<&String> = projects
            .iter()
            .filter(|project| credentials.index_for(project).is_none())
            .collect();
        if !uncovered.is_empty() {
            bail!(
                "no credential covers project(s) {}: add them to the token map, or also provide AK/SK (or a token) for the projects it does not list",
                uncovered
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(index) = credentials.default
            && matches!(
                credentials.identities[index].credential,
                Credential::Token(_)
            )
        {
            let sharing = projects
                .iter()
                .filter(|p| !credentials.by_project.contains_key(*p))
                .count();
            if sharing > 1 {
                log::warn!(
                    "one token ({}) is used for {sharing} projects, but a token is scoped to one project; use AK/SK or --token-map so every project can be checked",
                    credentials.identities[index].source
                );
            }
        }
        for identity in &credentials.identities {
            let kind = match identity.credential {
                Credential::Token(_) => "token",
                Credential::AkSk {
                    security_token: Some(_),
                    ..
                } => "temporary AK/SK",
                Credential::AkSk { .. } => "AK/SK",
            };
            match (&identity.credential, &identity.source) {
                (Credential::AkSk { .. }, _) | (_, Source::TokenMap(_)) => {
                    log::info!(
                        "credentials: {kind} from {} ({})",
                        identity.source,
                        identity.label
                    )
                }
                _ => log::info!("credentials: {kind} from {}", identity.source),
            }
        }
        Ok(credentials)
    }

    /// Returns the index into `identities` of the credential for `project`.
    pub fn index_for(&self, project: &str) -> Option<usize> {
        self.by_project.get(project).copied().or(self.default)
    }

    /// Describes the sources in use, for the report.
    pub fn describe_sources(&self) -> Vec<String> {
        let mut sources: Vec<String> = self
            .identities
            .iter()
            .map(|i| i.source.to_string())
            .collect();
        sources.dedup();
        sources
    }
}

/// Lists every way to provide credentials.
pub fn missing_credentials_help() -> String {
    format!(
        "no credentials found. Provide one of these (checked in this order):\n  \
         --token-map FILE      CSV with project_id,token: one IAM token per project\n  \
         --token-file FILE     a file that contains one IAM token\n  \
         {TOKEN_ENV}    an IAM token (X-Subject-Token from POST /v3/auth/tokens)\n  \
         {AK_ENV} and {SK_ENV} (and {SECURITY_TOKEN_ENV} for temporary keys)\n  \
         ${CREDENTIALS_FILE_ENV}, else ~/.huaweicloud/credentials: section [basic] with ak, sk and optional security_token\n\
         Credentials are never accepted as command-line values."
    )
}

fn find_default(lookup: &Lookup) -> anyhow::Result<Option<Identity>> {
    if let Some(path) = &lookup.token_file {
        let token = read_token_file(path)?;
        return Ok(Some(Identity {
            credential: Credential::Token(token),
            source: Source::TokenFile(path.clone()),
            label: format!("token from {}", path.display()),
        }));
    }
    if let Some(token) = lookup.env.get(TOKEN_ENV) {
        return Ok(Some(Identity {
            credential: Credential::Token(Secret::new(token.trim())),
            source: Source::TokenEnv,
            label: format!("token from {TOKEN_ENV}"),
        }));
    }
    match (lookup.env.get(AK_ENV), lookup.env.get(SK_ENV)) {
        (Some(ak), Some(sk)) => {
            let security_token = lookup
                .env
                .get(SECURITY_TOKEN_ENV)
                .map(|t| Secret::new(t.trim()));
            return Ok(Some(ak_sk_identity(
                ak.trim(),
                sk.trim(),
                security_token,
                Source::SdkEnv,
            )?));
        }
        (Some(_), None) => {
            bail!("{AK_ENV} is set but {SK_ENV} is not; set both, or unset {AK_ENV}")
        }
        (None, Some(_)) => {
            bail!("{SK_ENV} is set but {AK_ENV} is not; set both, or unset {SK_ENV}")
        }
        (None, None) => {}
    }
    let path = match (lookup.env.get(CREDENTIALS_FILE_ENV), &lookup.home) {
        (Some(path), _) => Some(PathBuf::from(path)),
        (None, Some(home)) => Some(home.join(".huaweicloud").join("credentials")),
        (None, None) => None,
    };
    let Some(path) = path else { return Ok(None) };
    if !path.exists() {
        if lookup.env.contains_key(CREDENTIALS_FILE_ENV) {
            bail!(
                "{CREDENTIALS_FILE_ENV} names {}, which does not exist; fix the path or unset it",
                path.display()
            );
        }
        return Ok(None);
    }
    let (ak, sk, security_token) = read_credentials_file(&path)?;
    Ok(Some(ak_sk_identity(
        &ak,
        &sk,
        security_token,
        Source::CredentialsFile(path),
    )?))
}

fn ak_sk_identity(
    ak: &str,
    sk: &str,
    security_token: Option<Secret>,
    source: Source,
) -> anyhow::Result<Identity> {
    if ak.is_empty() || sk.is_empty() {
        bail!("the AK or SK from {source} is empty; set both");
    }
    if !ak.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!(
            "the AK from {source} contains characters other than letters and digits; check that it was copied whole"
        );
    }
    Ok(Identity {
        credential: Credential::AkSk {
            ak: ak.to_string(),
            sk: Secret::new(sk),
            security_token,
        },
        label: format!("AK {ak}"),
        source,
    })
}

fn read_secret_file(path: &Path, description: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {description} {}", path.display()))?;
    warn_if_readable_by_others(path, description);
    Ok(text)
}

fn read_token_file(path: &Path) -> anyhow::Result<Secret> {
    let text = read_secret_file(path, "token file")?;
    let token = text.trim();
    if token.is_empty() {
        bail!(
            "the token file {} is empty; write the IAM token into it",
            path.display()
        );
    }
    if token.lines().count() > 1 {
        bail!(
            "the token file {} has more than one line; it must contain only the token",
            path.display()
        );
    }
    Ok(Secret::new(token))
}

/// Reads `project_id,token` rows. Errors name the file and line, never the token.
fn read_token_map(path: &Path) -> anyhow::Result<Vec<(String, Secret)>> {
    let text = read_secret_file(path, "token map")?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .with_context(|| format!("cannot read the header of the token map {}", path.display()))?
        .clone();
    let position = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let (Some(project_at), Some(token_at)) = (position("project_id"), position("token")) else {
        bail!(
            "the token map {} needs a header row project_id,token",
            path.display()
        );
    };

    let mut tokens = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        // csv's errors can quote the row, which contains a token, so only the line is shown.
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                problems.push(format!(
                    "{}:{line}: cannot parse the row as CSV; check the quoting",
                    path.display()
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != headers.len() {
            problems.push(format!(
                "{}:{line}: the row has {} fields but the header has {}; each row is project_id,token",
                path.display(),
                record.len(),
                headers.len()
            ));
            continue;
        }

        let project = record.get(project_at).unwrap_or("").to_string();
        let token = record.get(token_at).unwrap_or("");
        if project.is_empty() && token.is_empty() {
            continue;
        }
        // The value is not shown: with the columns swapped it would be a token.
        if let Err(reason) = check_id(&project) {
            problems.push(format!(
                "{}:{line}: invalid project_id (value not shown, in case the columns are swapped): {reason}",
                path.display()
            ));
        } else if token.is_empty() {
            problems.push(format!(
                "{}:{line}: the token for project {project} is empty",
                path.display()
            ));
        } else if !seen.insert(project.clone()) {
            problems.push(format!(
                "{}:{line}: project {project} is listed twice; keep one token per project",
                path.display()
            ));
        } else {
            tokens.push((project, Secret::new(token)));
        }
    }
    if !problems.is_empty() {
        bail!("the token map has errors:\n  {}", problems.join("\n  "));
    }
    if tokens.is_empty() {
        bail!(
            "the token map {} has no rows; add project_id,token rows",
            path.display()
        );
    }
    Ok(tokens)
}

/// Reads `ak`, `sk` and `security_token` from the `[basic]` section of the SDK's INI file.
fn read_credentials_file(path: &Path) -> anyhow::Result<(String, String, Option<Secret>)> {
    let text = read_secret_file(path, "credentials file")?;
    let mut section = String::new();
    let mut values: HashMap<String, String> = HashMap::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        if section != "basic" {
            continue;
        }
        if let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let ak = values.remove("ak").unwrap_or_default();
    let sk = values.remove("sk").unwrap_or_default();
    let missing: Vec<&str> = [("ak", &ak), ("sk", &sk)]
        .iter()
        .filter(|(_, value)| value.is_empty())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        bail!(
            "the credentials file {} has no {} in its [basic] section; add it, or provide credentials another way",
            path.display(),
            missing.join(" and ")
        );
    }
    let security_token = values
        .remove("security_token")
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    Ok((ak, sk, security_token))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, description: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        log::warn!(
            "the {description} {} can be read by other users; restrict it with chmod 600",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _description: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn projects(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secret_debug_is_redacted() {
        let credential = Credential::AkSk {
            ak: "AK1".into(),
            sk: Secret::new("very-secret-sk"),
            security_token: Some(Secret::new("sts-token")),
        };
        let text = format!("{credential:?}");
        assert!(!text.contains("very-secret-sk"), "{text}");
        assert!(!text.contains("sts-token"), "{text}");
        assert!(text.contains("redacted"));
    }

    #[test]
    fn nothing_found_lists_every_source() {
        let lookup = Lookup::default();
        let err = Credentials::load(&lookup, &projects(&["p"]))
            .unwrap_err()
            .to_string();
        for needle in [
            "--token-map",
            "--token-file",
            TOKEN_ENV,
            AK_ENV,
            SK_ENV,
            CREDENTIALS_FILE_ENV,
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
    }

    #[test]
    fn token_env_beats_ak_sk() {
        let lookup = Lookup {
            env: env(&[(TOKEN_ENV, "tok"), (AK_ENV, "AK"), (SK_ENV, "SK")]),
            ..Lookup::default()
        };
        let credentials = Credentials::load(&lookup, &projects(&["p"])).unwrap();
        let index = credentials.index_for("p").unwrap();
        assert_eq!(credentials.identities[index].source, Source::TokenEnv);
    }

    #[test]
    fn ak_without_sk_is_an_error() {
        let lookup = Lookup {
            env: env(&[(AK_ENV, "AK")]),
            ..Lookup::default()
        };
        let err = Credentials::load(&lookup, &projects(&["p"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(SK_ENV), "{err}");
    }

    #[test]
    fn credentials_file_basic_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[other]\nak = WRONG\n[basic]\nak = AKFILE\nsk = skfile\nsecurity_token = sts\n",
        )
        .unwrap();
        let lookup = Lookup {
            env: env(&[(CREDENTIALS_FILE_ENV, path.to_str().unwrap())]),
            ..Lookup::default()
        };
        let credentials = Credentials::load(&lookup, &projects(&["p"])).unwrap();
        let identity = &credentials.identities[0];
        assert_eq!(identity.source, Source::CredentialsFile(path.clone()));
        let Credential::AkSk {
            ak,
            sk,
            security_token,
        } = &identity.credential
        else {
            panic!("expected AK/SK");
        };
        assert_eq!(ak, "AKFILE");
        assert_eq!(sk.expose(), "skfile");
        assert_eq!(security_token.as_ref().unwrap().expose(), "sts");
    }

    #[test]
    fn home_credentials_file_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".huaweicloud")).unwrap();
        std::fs::write(
            dir.path().join(".huaweicloud/credentials"),
            "[basic]\nak=AKHOME\nsk=s\n",
        )
        .unwrap();
        let lookup = Lookup {
            home: Some(dir.path().to_path_buf()),
            ..Lookup::default()
        };
        let credentials = Credentials::load(&lookup, &projects(&["p"])).unwrap();
        assert_eq!(credentials.identities[0].label, "AK AKHOME");
    }

    #[test]
    fn token_map_covers_listed_projects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.csv");
        std::fs::write(&path, "project_id,token\npa,tokA\npb,tokB\n").unwrap();
        let lookup = Lookup {
            token_map: Some(path.clone()),
            ..Lookup::default()
        };
        let credentials = Credentials::load(&lookup, &projects(&["pa", "pb"])).unwrap();
        let a = credentials.index_for("pa").unwrap();
        let b = credentials.index_for("pb").unwrap();
        assert_ne!(a, b);
        assert_eq!(
            credentials.identities[a].credential,
            Credential::Token(Secret::new("tokA"))
        );
        let err = Credentials::load(&lookup, &projects(&["pa", "pc"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pc"), "{err}");
    }

    #[test]
    fn token_map_errors_hide_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.csv");
        std::fs::write(
            &path,
            "project_id,token\npa,secretA\npa,secretB\n../x,secretC\nMIIsecret+token/value==,pb\npc,secretD,extra\n",
        )
        .unwrap();
        let lookup = Lookup {
            token_map: Some(path),
            ..Lookup::default()
        };
        let err = Credentials::load(&lookup, &projects(&["pa"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(":3:"), "{err}");
        assert!(err.contains(":4:"), "{err}");
        assert!(err.contains(":5:"), "{err}");
        assert!(
            err.contains(":6: the row has 3 fields but the header has 2"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn token_file_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc.def \n").unwrap();
        let lookup = Lookup {
            token_file: Some(path),
            ..Lookup::default()
        };
        let credentials = Credentials::load(&lookup, &projects(&["p"])).unwrap();
        assert_eq!(
            credentials.identities[0].credential,
            Credential::Token(Secret::new("abc.def"))
        );
    }
}
