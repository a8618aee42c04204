//! GraphiQL for browsers on `GET /graphql` (when `server.graphiql` is on), served entirely by
//! this server: React, GraphiQL and its Explorer plugin are vendored at pinned versions
//! (`scripts/vendor-graphiql`, `assets/graphiql/VERSIONS`) and embedded in the binary. The page
//! loads them from `/graphql/assets/` with integrity hashes, under a Content-Security-Policy
//! that allows nothing external, so it works with no network and runs no CDN's code in the
//! API's origin. Written by hand rather than with async-graphql's `GraphiQLSource`, whose page
//! loads floating versions from unpkg.
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha384};
use std::sync::OnceLock;

/// An embedded file: its name under /graphql/assets/, media type and bytes.
struct Asset {
    name: &'static str,
    media: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $media:expr) => {
        Asset {
            name: $name,
            media: $media,
            bytes: include_bytes!(concat!("../../assets/graphiql/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// In the order the page loads them (GraphiQL needs React, the plugin needs GraphiQL).
const ASSETS: [Asset; 7] = [
    asset!("react.production.min.js", JS),
    asset!("react-dom.production.min.js", JS),
    asset!("graphiql.min.js", JS),
    asset!("plugin-explorer.umd.js", JS),
    asset!("rentgraph-graphiql.js", JS),
    asset!("graphiql.min.css", CSS),
    asset!("plugin-explorer.css", CSS),
];

/// Nothing but this server: scripts and styles from it (GraphiQL sets inline style
/// attributes, hence `'unsafe-inline'` for styles only), requests to it, no frames, no forms.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The headers editor's starting text: a bearer token to paste (`rentgraph token`).
const DEFAULT_HEADERS: &str = "{\n  \"Authorization\": \"Bearer \"\n}";

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

/// A short content hash for the asset URLs, so a new version is a new URL and the old one
/// can be cached for ever.
fn version(bytes: &[u8]) -> String {
    let d = sha2::Sha256::digest(bytes);
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page (built once).
fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        let mut head = String::new();
        let mut body = String::new();
        for a in &ASSETS {
            let src = format!("/graphql/assets/{}?v={}", a.name, version(a.bytes));
            let integrity = sri(a.bytes);
            if a.media == CSS {
                head.push_str(&format!(
                    "<link rel=\"stylesheet\" href=\"{src}\" integrity=\"{integrity}\">\n"
                ));
            } else {
                body.push_str(&format!(
                    "<script src=\"{src}\" integrity=\"{integrity}\"></script>\n"
                ));
            }
        }
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"robots\" content=\"noindex\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>rentgraph GraphiQL</title>\n{head}\
             <link rel=\"stylesheet\" href=\"/graphql/assets/page.css\">\n</head>\n<body>\n\
             <div id=\"graphiql\" data-endpoint=\"/graphql\" data-headers=\"{headers}\">\
             Loading GraphiQL...</div>\n{body}</body>\n</html>\n",
            headers = escape(DEFAULT_HEADERS)
        )
    })
}

/// `GET /graphql` for a browser.
pub(super) fn html() -> Response {
    let mut resp = (StatusCode::OK, page()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The full-height layout (a file, since the CSP allows no inline style element).
const PAGE_CSS: &str = "html, body { height: 100%; margin: 0; overflow: hidden; }\n\
                        #graphiql { height: 100vh; }\n";

/// `GET /graphql/assets/{name}`: immutable, since every version has its own URL.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    let (media, bytes): (&'static str, &'static [u8]) = if name == "page.css" {
        (CSS, PAGE_CSS.as_bytes())
    } else {
        match ASSETS.iter().find(|a| a.name == name) {
            Some(a) => (a.media, a.bytes),
            None => return StatusCode::NOT_FOUND.into_response(),
        }
    };
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded bytes are what `scripts/vendor-graphiql` fetched from npm and recorded.
    #[test]
    fn the_embedded_assets_are_the_pinned_ones() {
        let versions = include_str!("../../assets/graphiql/VERSIONS");
        let mut checked = 0;
        for line in versions.lines() {
            let mut parts = line.split_whitespace();
            let (Some(name), Some(package), Some(sum)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let asset = ASSETS.iter().find(|a| a.name == name);
            let asset = asset.unwrap_or_else(|| panic!("{name} ({package}) is not embedded"));
            let actual: String = sha2::Sha256::digest(asset.bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(actual, sum, "{name} is not {package} as vendored");
            checked += 1;
        }
        assert_eq!(checked, ASSETS.len() - 1, "every vendored file is recorded");
    }

    #[test]
    fn the_page_loads_only_this_servers_assets_with_integrity() {
        let p = page();
        assert!(!p.contains("unpkg") && !p.contains("https://"));
        assert_eq!(p.matches("integrity=\"sha384-").count(), ASSETS.len());
        assert!(
            p.contains("data-headers=\"{\n  &quot;Authorization&quot;: &quot;Bearer &quot;\n}\"")
        );
    }
}
