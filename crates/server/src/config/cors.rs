//! `[server.cors]` and its origin rules: parsed and checked when the settings load, so a
//! typo in an origin stops the start-up instead of silently refusing a frontend.
use serde::Deserialize;

/// `[server.cors]`: which browser origins may call the API (`server::cors`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact origins and `scheme://*.domain` patterns; empty: no CORS headers. A list, or one
    /// comma-separated string (what an environment variable can hold).
    #[serde(deserialize_with = "crate::infra::list_or_csv")]
    pub allowed_origins: Vec<String>,
    #[serde(deserialize_with = "crate::infra::list_or_csv")]
    pub allowed_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_secs: u64,
}

/// One entry of `server.cors.allowed_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    /// `https://app.example.com` (scheme, host and port as the browser sends them).
    Exact(String),
    /// `https://*.example.com`: any subdomain of `example.com` over that scheme and port
    /// (`example.com` itself is not matched: list it too if it should be).
    Subdomains {
        scheme: String,
        suffix: String,
        port: Option<String>,
    },
}

impl OriginRule {
    /// Parses a configured origin; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = |why: &str| Err(format!("server.cors.allowed_origins: {t:?} {why}"));
        let Some((scheme, rest)) = t.split_once("://") else {
            return bad("needs a scheme (https://host)");
        };
        if scheme != "http" && scheme != "https" {
            return bad("must be http:// or https://");
        }
        if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return bad("must be scheme://host[:port] with no path (no trailing slash)");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (h, Some(p.to_owned()))
            }
            Some(_) => return bad("has a port that is not a number"),
            None => (rest, None),
        };
        match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => Ok(Self::Subdomains {
                scheme: scheme.to_owned(),
                suffix: format!(".{}", suffix.to_ascii_lowercase()),
                port,
            }),
            Some(_) => bad("has a wildcard that is not one leading `*.` label"),
            None if host.contains('*') => bad("has a wildcard that is not one leading `*.` label"),
            None if host.is_empty() => bad("has no host"),
            None => Ok(Self::Exact(t.to_ascii_lowercase())),
        }
    }

    /// Whether a request's `Origin` header is this rule's.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        match self {
            Self::Exact(o) => *o == origin,
            Self::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                let Some(rest) = origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|r| r.strip_prefix("://"))
                else {
                    return false;
                };
                let (host, origin_port) = match rest.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (rest, None),
                };
                origin_port == port.as_deref()
                    && host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins_and_subdomain_patterns_match_what_they_say_and_nothing_else() {
        let exact = OriginRule::parse("https://App.example.com").expect("valid");
        assert!(exact.allows("https://app.example.com"));
        assert!(!exact.allows("http://app.example.com"));
        assert!(!exact.allows("https://app.example.com:8443"));
        let sub = OriginRule::parse("https://*.example.com").expect("valid");
        assert!(sub.allows("https://app.example.com"));
        assert!(sub.allows("https://a.b.example.com"));
        assert!(!sub.allows("https://example.com"));
        assert!(!sub.allows("https://evilexample.com"));
        assert!(!sub.allows("https://app.example.com.evil.org"));
        assert!(!sub.allows("http://app.example.com"));
        assert!(!sub.allows("https://app.example.com:444"));
        let local = OriginRule::parse("http://127.0.0.1:5173").expect("valid");
        assert!(local.allows("http://127.0.0.1:5173"));
        assert!(!local.allows("http://127.0.0.1:5174"));
    }

    #[test]
    fn malformed_origins_are_refused_with_a_reason() {
        for bad in [
            "*",
            "app.example.com",
            "ftp://example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://a.*.example.com",
            "https://*",
            "https://example.com:http",
        ] {
            let e = OriginRule::parse(bad).err().unwrap_or_default();
            assert!(e.starts_with("server.cors.allowed_origins"), "{bad}: {e}");
        }
    }
}
