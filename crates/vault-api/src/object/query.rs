//! The query of `GET /vault/v1/kv` (and of `DELETE`'s `version_check`),
//! and percent-encoding of path segments and query values.

use std::fmt;

use crate::{Error, ErrorKind};

/// Objects per page when `limit` is not given.
pub const DEFAULT_LIST_LIMIT: u32 = 10;
/// Most objects per page a server of ours answers (WorkOS publishes no
/// maximum; larger limits are refused, not cut).
pub const MAX_LIST_LIMIT: u32 = 100;

/// The order of a list, by creation time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first (the default).
    #[default]
    Desc,
}

impl Order {
    /// `asc` or `desc`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a list asks for: page size, cursor, order and filters.
///
/// ```
/// use vault_api::object::{ListObjectsOptions, Order};
///
/// let options = ListObjectsOptions::new().limit(5).order(Order::Asc).search("acme/");
/// assert_eq!(options.to_query(), "limit=5&order=asc&search=acme%2F");
/// assert_eq!(ListObjectsOptions::from_query("limit=5&order=asc&search=acme%2F")?, options);
/// # Ok::<(), vault_api::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListObjectsOptions {
    /// Objects per page (default 10, at least 1).
    pub limit: Option<u32>,
    /// The `before` cursor of a page: the objects before it.
    pub before: Option<String>,
    /// The `after` cursor of a page: the objects after it.
    pub after: Option<String>,
    /// The order (newest first by default).
    pub order: Option<Order>,
    /// Only objects whose name contains this (case-sensitive).
    pub search: Option<String>,
    /// Only objects changed after this instant (RFC 3339 / ISO 8601).
    pub updated_after: Option<String>,
}

impl ListObjectsOptions {
    /// The first page, 10 objects, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Objects per page.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The page before `cursor` (a page's `list_metadata.before`).
    pub fn before(mut self, cursor: impl Into<String>) -> Self {
        self.before = Some(cursor.into());
        self
    }

    /// The page after `cursor` (a page's `list_metadata.after`).
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.after = Some(cursor.into());
        self
    }

    /// The order.
    pub fn order(mut self, order: Order) -> Self {
        self.order = Some(order);
        self
    }

    /// Only names containing `text`.
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }

    /// Only objects changed after `instant` (RFC 3339, such as
    /// `2026-01-31T12:00:00Z`).
    pub fn updated_after(mut self, instant: impl Into<String>) -> Self {
        self.updated_after = Some(instant.into());
        self
    }

    /// The query string, without `?`, in WorkOS's spelling (`updatedAfter`).
    pub fn to_query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        let strings = [
            ("before", &self.before),
            ("after", &self.after),
            ("order", &self.order.map(|o| o.as_str().to_owned())),
            ("search", &self.search),
            ("updatedAfter", &self.updated_after),
        ];
        for (name, value) in strings {
            if let Some(value) = value {
                pairs.push((name, value.clone()));
            }
        }
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Parses a query string (without `?`). `updated_after` is accepted for
    /// `updatedAfter`; an unknown parameter, a repeated one, a limit that is
    /// not a number from 1 to [`MAX_LIST_LIMIT`] or an order other than
    /// `asc` / `desc` is refused.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRequest`], naming the parameter.
    pub fn from_query(query: &str) -> Result<Self, Error> {
        let mut options = ListObjectsOptions::new();
        for (name, value) in query_pairs(query)? {
            let slot = match name.as_str() {
                "limit" => {
                    let limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIST_LIMIT).contains(l))
                        .ok_or_else(|| {
                            invalid(format!(
                                "limit must be a whole number from 1 to {MAX_LIST_LIMIT}"
                            ))
                        })?;
                    set_once(&mut options.limit, limit, "limit")?;
                    continue;
                }
                "order" => {
                    let order = match value.as_str() {
                        "asc" => Order::Asc,
                        "desc" => Order::Desc,
                        _ => return Err(invalid("order must be asc or desc".to_owned())),
                    };
                    set_once(&mut options.order, order, "order")?;
                    continue;
                }
                "before" => &mut options.before,
                "after" => &mut options.after,
                "search" => &mut options.search,
                "updatedAfter" | "updated_after" => &mut options.updated_after,
                other => {
                    let other: String = other.chars().take(40).collect();
                    return Err(invalid(format!(
                        "unknown query parameter {other:?}; the list takes limit, before, \
                         after, order, search and updatedAfter"
                    )));
                }
            };
            set_once(slot, value, &name)?;
        }
        Ok(options)
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), Error> {
    if slot.is_some() {
        return Err(invalid(format!("query parameter {name} is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidRequest, message).with_status(400)
}

/// The `version_check` of a delete's query (`None` without one).
///
/// # Errors
///
/// [`ErrorKind::InvalidRequest`] for any other parameter, a repeated one or
/// malformed percent-encoding.
pub fn parse_version_check_query(query: &str) -> Result<Option<String>, Error> {
    let mut version_check = None;
    for (name, value) in query_pairs(query)? {
        if name != "version_check" {
            return Err(invalid(
                "unknown query parameter; a delete takes only version_check".to_owned(),
            ));
        }
        set_once(&mut version_check, value, "version_check")?;
    }
    Ok(version_check)
}

/// The decoded `name=value` pairs of a query (`+` is a space).
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, Error> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| percent_decode(&text.replace('+', " "));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// `text` with everything but RFC 3986's unreserved characters
/// percent-encoded: safe as one path segment or one query value.
///
/// ```
/// assert_eq!(vault_api::object::percent_encode("a/b c%"), "a%2Fb%20c%25");
/// ```
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; the result must be UTF-8.
///
/// # Errors
///
/// [`ErrorKind::InvalidRequest`] for a broken escape or bytes that are not
/// UTF-8.
///
/// ```
/// assert_eq!(vault_api::object::percent_decode("a%2Fb")?, "a/b");
/// assert!(vault_api::object::percent_decode("%ff").is_err());
/// # Ok::<(), vault_api::Error>(())
/// ```
pub fn percent_decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid("malformed percent-encoding".to_owned()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("percent-encoded text is not UTF-8".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_round_trip_and_refuse_the_unknown() {
        let options = ListObjectsOptions::new()
            .limit(3)
            .after("cur sor")
            .order(Order::Desc)
            .search("a&b=c")
            .updated_after("2026-01-01T00:00:00+01:00");
        let query = options.to_query();
        assert!(query.contains("updatedAfter=2026-01-01T00%3A00%3A00%2B01%3A00"));
        assert_eq!(ListObjectsOptions::from_query(&query).unwrap(), options);
        assert_eq!(
            ListObjectsOptions::from_query("updated_after=x&search=a+b")
                .unwrap()
                .search
                .as_deref(),
            Some("a b")
        );
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "order=up",
            "limit=1&limit=2",
            "colour=red",
            "search=%ZZ",
            "search=%C3",
        ] {
            let error = ListObjectsOptions::from_query(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{bad}");
        }
        assert_eq!(ListObjectsOptions::from_query("").unwrap(), options_new());
        assert_eq!(
            parse_version_check_query("version_check=ver_1").unwrap(),
            Some("ver_1".to_owned())
        );
        assert_eq!(parse_version_check_query("").unwrap(), None);
        assert!(parse_version_check_query("query%5Bversion_check%5D=x").is_err());
    }

    fn options_new() -> ListObjectsOptions {
        ListObjectsOptions::new()
    }
}
