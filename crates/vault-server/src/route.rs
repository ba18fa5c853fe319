//! Which endpoint a path names and which methods it accepts: the routing
//! that request handling and the fault counters share.

use hyper::Method;
use vault_api::wire;

/// The endpoints, and everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Route {
    DataKey,
    Decrypt,
    Rekey,
    /// Alive: the process answers.
    Health,
    /// Ready: the key service can serve.
    Ready,
    NotFound,
}

impl Route {
    /// Every route, in the order of [`Route::index`].
    pub(crate) const ALL: [Route; 6] = [
        Route::DataKey,
        Route::Decrypt,
        Route::Rekey,
        Route::Health,
        Route::Ready,
        Route::NotFound,
    ];

    /// The route of a request's path (without its query): an exact,
    /// case-sensitive match.
    pub(crate) fn of(path: &str) -> Route {
        match path {
            wire::DATA_KEY_PATH => Route::DataKey,
            wire::DECRYPT_PATH => Route::Decrypt,
            wire::REKEY_PATH => Route::Rekey,
            "/health" | "/health/live" => Route::Health,
            "/health/ready" => Route::Ready,
            _ => Route::NotFound,
        }
    }

    /// This route's place in [`Route::ALL`], for counters kept in an array.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The route's name in metrics and logs.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Route::DataKey => "data_key",
            Route::Decrypt => "decrypt",
            Route::Rekey => "rekey",
            Route::Health => "health",
            Route::Ready => "ready",
            Route::NotFound => "not_found",
        }
    }

    /// The methods the route accepts, as an `Allow` header value (none for
    /// [`Route::NotFound`]).
    pub(crate) fn allow(self) -> Option<&'static str> {
        match self {
            Route::DataKey | Route::Decrypt | Route::Rekey => Some("POST"),
            Route::Health | Route::Ready => Some("GET, HEAD"),
            Route::NotFound => None,
        }
    }

    /// Whether the route accepts `method`.
    pub(crate) fn accepts(self, method: &Method) -> bool {
        match self {
            Route::DataKey | Route::Decrypt | Route::Rekey => method == Method::POST,
            Route::Health | Route::Ready => method == Method::GET || method == Method::HEAD,
            Route::NotFound => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_exactly_and_methods_follow_the_route() {
        assert_eq!(Route::of(wire::DATA_KEY_PATH), Route::DataKey);
        assert_eq!(Route::of(wire::DECRYPT_PATH), Route::Decrypt);
        assert_eq!(Route::of(wire::REKEY_PATH), Route::Rekey);
        assert_eq!(Route::of("/health"), Route::Health);
        assert_eq!(Route::of("/health/live"), Route::Health);
        assert_eq!(Route::of("/health/ready"), Route::Ready);
        assert!(Route::Ready.accepts(&Method::GET));
        for path in [
            "/health/",
            "/vault/v1/keys/decrypt/",
            "/VAULT/v1/keys/rekey",
            "",
        ] {
            assert_eq!(Route::of(path), Route::NotFound, "{path}");
        }
        assert!(Route::Decrypt.accepts(&Method::POST));
        assert!(!Route::Decrypt.accepts(&Method::GET));
        assert!(Route::Health.accepts(&Method::HEAD));
        assert!(!Route::Health.accepts(&Method::POST));
        assert!(!Route::NotFound.accepts(&Method::GET));
        assert_eq!(Route::NotFound.allow(), None);
        for (index, route) in Route::ALL.into_iter().enumerate() {
            assert_eq!(route.index(), index);
        }
    }
}
