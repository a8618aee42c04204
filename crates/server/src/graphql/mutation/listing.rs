//! A listing's fields parsed once, at the edge, for `createProperty` and `updateProperty`
//! alike: each parser returns the value the store may write or a `BAD_USER_INPUT` naming the
//! field and its bounds. The text limits are the columns' lengths (migration
//! `m20261129_000001_init`; a test reads them from its SQL), so a value that passes here never
//! fails in the database.
use crate::graphql::errors::{ApiError, ApiResult};

/// `properties.title varchar(200)`.
pub(super) const TITLE_CHARS: usize = 200;
/// `properties.description` is `text`; this bounds what one listing may store.
pub(super) const DESCRIPTION_CHARS: usize = 5000;
/// `properties.city varchar(100)`.
pub(super) const CITY_CHARS: usize = 100;
/// `properties.neighbourhood varchar(100)`.
pub(super) const NEIGHBOURHOOD_CHARS: usize = 100;
/// `property_images.url varchar(500)`.
pub(super) const IMAGE_URL_CHARS: usize = 500;
/// Images one listing may have.
pub(super) const MAX_IMAGES: usize = 20;
pub(super) const MONTHLY_PRICE: (i32, i32) = (1, 1_000_000);
pub(super) const ROOMS: (i32, i32) = (0, 50);
pub(super) const AREA: (i32, i32) = (1, 100_000);

fn text(name: &str, v: &str, max: usize) -> ApiResult<String> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(ApiError::bad_input(format!(
            "`{name}` must have 1 to {max} characters"
        )));
    }
    Ok(t.to_owned())
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    v: T,
    (lo, hi): (T, T),
) -> ApiResult<T> {
    // Written so that NaN fails too.
    if !(v >= lo && v <= hi) {
        return Err(ApiError::bad_input(format!(
            "`{name}` must be between {lo} and {hi}"
        )));
    }
    Ok(v)
}

pub(super) fn title(v: &str) -> ApiResult<String> {
    text("title", v, TITLE_CHARS)
}

pub(super) fn description(v: &str) -> ApiResult<String> {
    text("description", v, DESCRIPTION_CHARS)
}

pub(super) fn city(v: &str) -> ApiResult<String> {
    text("city", v, CITY_CHARS)
}

pub(super) fn neighbourhood(v: &str) -> ApiResult<String> {
    text("neighbourhood", v, NEIGHBOURHOOD_CHARS)
}

pub(super) fn monthly_price(v: i32) -> ApiResult<i32> {
    range("monthlyPrice", v, MONTHLY_PRICE)
}

pub(super) fn latitude(v: f64) -> ApiResult<f64> {
    range("latitude", v, (-90.0, 90.0))
}

pub(super) fn longitude(v: f64) -> ApiResult<f64> {
    range("longitude", v, (-180.0, 180.0))
}

pub(super) fn bedrooms(v: i32) -> ApiResult<i32> {
    range("bedrooms", v, ROOMS)
}

pub(super) fn bathrooms(v: i32) -> ApiResult<i32> {
    range("bathrooms", v, ROOMS)
}

pub(super) fn area(v: i32) -> ApiResult<i32> {
    range("area", v, AREA)
}

/// Image URLs in display order: https with a host and no user info (browsers show them on
/// pages served over https, and `http://` or `user:pass@` URLs are how tracking and phishing
/// get in), on one of `hosts` when any are given (exact, or `*.domain`), within the column's
/// length, at most `MAX_IMAGES`.
pub(super) fn image_urls(v: &[String], hosts: &[String]) -> ApiResult<Vec<String>> {
    if v.len() > MAX_IMAGES {
        return Err(ApiError::bad_input(format!("at most {MAX_IMAGES} images")));
    }
    v.iter()
        .map(|u| {
            let u = u.trim();
            let uri = u.parse::<http::Uri>().ok().filter(|_| u.len() <= IMAGE_URL_CHARS);
            let Some(authority) = uri
                .as_ref()
                .filter(|uri| uri.scheme_str() == Some("https"))
                .and_then(http::Uri::authority)
                .filter(|a| !a.as_str().contains('@') && !a.host().is_empty())
            else {
                return Err(ApiError::bad_input(format!(
                    "image URLs must be https URLs with a host of at most {IMAGE_URL_CHARS} characters"
                )));
            };
            let host = authority.host().to_ascii_lowercase();
            let allowed = hosts.is_empty()
                || hosts.iter().any(|h| {
                    let h = h.trim().to_ascii_lowercase();
                    match h.strip_prefix("*.") {
                        Some(domain) => host.ends_with(&format!(".{domain}")),
                        None => host == h,
                    }
                });
            if !allowed {
                return Err(ApiError::bad_input(format!(
                    "image URLs must point at one of: {}",
                    hosts.join(", ")
                )));
            }
            Ok(u.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The length the migration gives `column` of `table` (`name varchar(N)`).
    fn varchar(table: &str, column: &str) -> usize {
        let sql = migration::INIT_POSTGRES.join("\n");
        let at = sql
            .find(&format!("CREATE TABLE {table} ("))
            .unwrap_or_else(|| panic!("no table {table}"));
        let body = &sql[at..];
        let body = &body[..body.find(");").unwrap_or(body.len())];
        let decl = format!("{column} varchar(");
        let start = body
            .find(&decl)
            .unwrap_or_else(|| panic!("no {table}.{column}"))
            + decl.len();
        body[start..]
            .split(')')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{table}.{column} has no length"))
    }

    #[test]
    fn the_text_limits_are_the_column_lengths() {
        assert_eq!(TITLE_CHARS, varchar("properties", "title"));
        assert_eq!(CITY_CHARS, varchar("properties", "city"));
        assert_eq!(NEIGHBOURHOOD_CHARS, varchar("properties", "neighbourhood"));
        assert_eq!(IMAGE_URL_CHARS, varchar("property_images", "url"));
    }

    #[test]
    fn values_are_trimmed_and_bounded_and_nan_is_refused() {
        assert_eq!(title("  Sunny loft ").ok().as_deref(), Some("Sunny loft"));
        assert!(title(" ").is_err());
        assert!(title(&"é".repeat(TITLE_CHARS + 1)).is_err());
        assert!(title(&"é".repeat(TITLE_CHARS)).is_ok());
        assert!(latitude(f64::NAN).is_err());
        assert!(monthly_price(0).is_err());
        assert!(image_urls(&["ftp://x".into()], &[]).is_err());
        assert!(image_urls(&["http://img.example/a.jpg".into()], &[]).is_err());
        assert!(image_urls(&["https://user:pw@img.example/a.jpg".into()], &[]).is_err());
        assert!(image_urls(&["https:///a.jpg".into()], &[]).is_err());
        assert!(image_urls(&vec!["https://x/a.jpg".to_owned(); MAX_IMAGES + 1], &[]).is_err());
        let hosts = ["*.cdn.example".to_owned(), "img.example".to_owned()];
        assert!(image_urls(&["https://eu.cdn.example/a.jpg".into()], &hosts).is_ok());
        assert!(image_urls(&["https://img.example/a.jpg".into()], &hosts).is_ok());
        assert!(image_urls(&["https://cdn.example.evil/a.jpg".into()], &hosts).is_err());
        assert!(image_urls(&["https://evilimg.example/a.jpg".into()], &hosts).is_err());
    }
}
