//! API endpoints: the region table, endpoint parsing and the loopback rule.
//!
//! A row's endpoint is its `endpoint` cell, else `--endpoint`, else the
//! endpoint of its `region` cell (or `--region`) from the region table of the
//! official SDK 3.1.219. Plain `http://` is accepted only for loopback hosts,
//! so credentials never cross a network in clear text.

use std::net::IpAddr;
use std::sync::Arc;

use ureq::http::Uri;

/// Endpoint prefixes by region, from the official Python SDK 3.1.219 region table.
const REGION_PREFIXES: &[(&str, &[&str])] = &[
    (
        "gaussdb",
        &[
            "cn-north-4",
            "cn-southwest-2",
            "cn-east-3",
            "cn-south-1",
            "ru-northwest-2",
            "ap-southeast-3",
            "cn-north-2",
            "cn-north-9",
            "ap-southeast-4",
            "sa-brazil-1",
            "cn-south-4",
        ],
    ),
    (
        "gaussdbformysql",
        &[
            "tr-west-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "cn-north-11",
            "me-east-1",
        ],
    ),
    (
        "gaussdb-mysql",
        &["af-south-1", "cn-east-5", "la-north-2", "cn-southwest-3"],
    ),
];

/// Returns the public endpoint URL of a region, or `None` for a region the table lacks.
pub fn region_endpoint(region: &str) -> Option<String> {
    REGION_PREFIXES
        .iter()
        .find(|(_, regions)| regions.contains(&region))
        .map(|(prefix, _)| format!("https://{prefix}.{region}.myhuaweicloud.com"))
}

/// Lists every region in the table, sorted.
pub fn known_regions() -> Vec<&'static str> {
    let mut regions: Vec<&str> = REGION_PREFIXES
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    regions.sort_unstable();
    regions
}

/// A parsed, checked API endpoint. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(Arc<EndpointParts>);

#[derive(Debug, PartialEq, Eq)]
struct EndpointParts {
    base_url: String,
    host_header: String,
    is_loopback: bool,
}

impl Endpoint {
    /// Parses `scheme://host[:port]`, rejecting plain HTTP to a host that is not loopback.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let trimmed = text.trim().trim_end_matches('/');
        let uri: Uri = trimmed.parse().map_err(|err| {
            format!("invalid endpoint {text:?} ({err}); write it as https://host[:port]")
        })?;
        let scheme = uri.scheme_str().unwrap_or("");
        let Some(authority) = uri.authority() else {
            return Err(format!(
                "invalid endpoint {text:?}: it has no host; write it as https://host[:port]"
            ));
        };
        if authority.as_str().contains('@') {
            return Err(format!(
                "invalid endpoint {text:?}: user names or passwords do not belong in an endpoint"
            ));
        }
        if !uri.path().is_empty() && uri.path() != "/" || uri.query().is_some() {
            return Err(format!(
                "invalid endpoint {text:?}: it has a path or query; give only https://host[:port]"
            ));
        }
        let host = authority.host();
        let is_loopback = is_loopback_host(host);
        match scheme {
            "https" => {}
            "http" if is_loopback => {}
            "http" => {
                return Err(format!(
                    "endpoint {text:?} uses plain http:// to a host that is not loopback; use https:// so credentials are never sent in clear text"
                ));
            }
            _ => {
                return Err(format!(
                    "invalid endpoint {text:?}: the scheme must be https:// (or http:// for a loopback host)"
                ));
            }
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        let host_header = match authority.port_u16() {
            Some(port) if port != default_port => format!("{host}:{port}"),
            _ => host.to_string(),
        };
        let base_url = format!("{scheme}://{host_header}");
        Ok(Endpoint(Arc::new(EndpointParts {
            base_url,
            host_header,
            is_loopback,
        })))
    }

    /// Returns the URL without a trailing slash, e.g. `https://gaussdb.cn-north-4.myhuaweicloud.com`.
    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    /// Returns the `Host` header value: the host, with the port when it is not the scheme's default.
    pub fn host_header(&self) -> &str {
        &self.0.host_header
    }

    pub fn is_loopback(&self) -> bool {
        self.0.is_loopback
    }
}

/// Reports whether `host` (a name or an IP literal, brackets allowed) is on the loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Resolves each row's endpoint from its cells and the command-line defaults.
#[derive(Debug, Clone)]
pub struct EndpointResolver {
    endpoint: Option<Endpoint>,
    region: String,
}

impl EndpointResolver {
    /// Checks `--endpoint` and `--region` once, before any row is read.
    pub fn new(endpoint: Option<&str>, region: Option<&str>) -> anyhow::Result<EndpointResolver> {
        let endpoint = match endpoint {
            Some(text) => Some(
                Endpoint::parse(text)
                    .map_err(|message| anyhow::anyhow!("--endpoint: {message}"))?,
            ),
            None => None,
        };
        let region = region.unwrap_or("").trim().to_string();
        if !region.is_empty() && endpoint.is_none() && region_endpoint(&region).is_none() {
            anyhow::bail!(
                "--region {region:?} is not in the region table; give --endpoint https://HOST for it (known regions: {})",
                known_regions().join(", ")
            );
        }
        Ok(EndpointResolver { endpoint, region })
    }

    /// Returns the `--region` value, or an empty string.
    pub fn default_region(&self) -> &str {
        &self.region
    }

    /// Resolves one row's endpoint; the error explains what to add to the row or the command.
    pub fn resolve(&self, endpoint_cell: &str, region_cell: &str) -> Result<Endpoint, String> {
        if !endpoint_cell.is_empty() {
            return Endpoint::parse(endpoint_cell);
        }
        if let Some(endpoint) = &self.endpoint {
            return Ok(endpoint.clone());
        }
        let region = if region_cell.is_empty() {
            self.region.as_str()
        } else {
            region_cell
        };
        if region.is_empty() {
            return Err(
                "the row has no region or endpoint; add a region or endpoint column, or give --region or --endpoint".to_string(),
            );
        }
        match region_endpoint(region) {
            Some(url) => Endpoint::parse(&url),
            None => Err(format!(
                "region {region:?} is not in the region table; add an endpoint cell or give --endpoint for it"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_table_prefixes() {
        assert_eq!(
            region_endpoint("cn-north-4").unwrap(),
            "https://gaussdb.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(
            region_endpoint("ap-southeast-1").unwrap(),
            "https://gaussdbformysql.ap-southeast-1.myhuaweicloud.com"
        );
        assert_eq!(
            region_endpoint("af-south-1").unwrap(),
            "https://gaussdb-mysql.af-south-1.myhuaweicloud.com"
        );
        assert_eq!(region_endpoint("xx-nowhere-1"), None);
    }

    #[test]
    fn endpoint_host_header_ports() {
        let endpoint =
            Endpoint::parse("https://gaussdb.cn-north-4.myhuaweicloud.com:443/").unwrap();
        assert_eq!(
            endpoint.host_header(),
            "gaussdb.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(
            endpoint.base_url(),
            "https://gaussdb.cn-north-4.myhuaweicloud.com"
        );
        let endpoint = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(endpoint.host_header(), "127.0.0.1:8080");
        assert!(endpoint.is_loopback());
        let endpoint = Endpoint::parse("https://private.example:8443").unwrap();
        assert_eq!(endpoint.host_header(), "private.example:8443");
    }

    #[test]
    fn endpoint_plain_http_loopback_only() {
        assert!(Endpoint::parse("http://localhost:9000").is_ok());
        assert!(Endpoint::parse("http://[::1]:9000").is_ok());
        assert!(Endpoint::parse("http://127.3.4.5").is_ok());
        let err = Endpoint::parse("http://gaussdb.cn-north-4.myhuaweicloud.com").unwrap_err();
        assert!(err.contains("plain http://"), "{err}");
        assert!(Endpoint::parse("http://10.0.0.1").is_err());
    }

    #[test]
    fn endpoint_rejects_paths_and_userinfo() {
        assert!(Endpoint::parse("https://host.example/v3").is_err());
        assert!(Endpoint::parse("https://user:pw@host.example").is_err());
        assert!(Endpoint::parse("ftp://host.example").is_err());
        assert!(Endpoint::parse("host.example").is_err());
    }

    #[test]
    fn resolver_order() {
        let resolver =
            EndpointResolver::new(Some("http://127.0.0.1:1"), Some("cn-north-4")).unwrap();
        assert_eq!(
            resolver
                .resolve("https://row.example", "")
                .unwrap()
                .base_url(),
            "https://row.example"
        );
        assert_eq!(
            resolver.resolve("", "af-south-1").unwrap().base_url(),
            "http://127.0.0.1:1"
        );
        let resolver = EndpointResolver::new(None, Some("cn-north-4")).unwrap();
        assert_eq!(
            resolver.resolve("", "af-south-1").unwrap().base_url(),
            "https://gaussdb-mysql.af-south-1.myhuaweicloud.com"
        );
        assert_eq!(
            resolver.resolve("", "").unwrap().base_url(),
            "https://gaussdb.cn-north-4.myhuaweicloud.com"
        );
        assert!(
            EndpointResolver::new(None, None)
                .unwrap()
                .resolve("", "")
                .is_err()
        );
        assert!(EndpointResolver::new(None, Some("xx-1")).is_err());
    }
}
