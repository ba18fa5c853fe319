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
    /// `/vault/v1/kv`: create (POST) and list (GET) objects.
    Objects,
    /// `/vault/v1/kv/{id}`: read (GET), update (PUT), delete (DELETE).
    Object,
    /// `/vault/v1/kv/name/{name}`: read by name.
    ObjectByName,
    /// `/vault/v1/kv/{id}/metadata`: describe.
    ObjectMetadata,
    /// `/vault/v1/kv/{id}/versions`: list versions.
    ObjectVersions,
    /// Alive: the process answers.
    Health,
    /// Ready: the key service can serve.
    Ready,
    NotFound,
}

impl Route {
    /// Every route, in the order of [`Route::index`].
    pub(crate) const ALL: [Route; 11] = [
        Route::DataKey,
        Route::Decrypt,
        Route::Rekey,
        Route::Objects,
        Route::Object,
        Route::ObjectByName,
        Route::ObjectMetadata,
        Route::ObjectVersions,
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
            _ => Route::of_object(path),
        }
    }

    /// The objects routes: `/vault/v1/kv`, `/vault/v1/kv/name/{name}` (the
    /// name may hold anything; the service judges it), and
    /// `/vault/v1/kv/{id}` with `/metadata` or `/versions`.
    fn of_object(path: &str) -> Route {
        let Some(rest) = path.strip_prefix(vault_api::object::OBJECTS_PATH) else {
            return Route::NotFound;
        };
        if rest.is_empty() {
            return Route::Objects;
        }
        let Some(rest) = rest.strip_prefix('/').filter(|rest| !rest.is_empty()) else {
            return Route::NotFound;
        };
        if rest
            .strip_prefix("name/")
            .is_some_and(|name| !name.is_empty())
        {
            return Route::ObjectByName;
        }
        match rest.split_once('/') {
            None => Route::Object,
            Some((_, "metadata")) => Route::ObjectMetadata,
            Some((_, "versions")) => Route::ObjectVersions,
            Some(_) => Route::NotFound,
        }
    }

    /// Whether this is one of the objects API's routes.
    pub(crate) fn is_object(self) -> bool {
        matches!(
            self,
            Route::Objects
                | Route::Object
                | Route::ObjectByName
                | Route::ObjectMetadata
                | Route::ObjectVersions
        )
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
            Route::Objects => "objects",
            Route::Object => "object",
            Route::ObjectByName => "object_by_name",
            Route::ObjectMetadata => "object_metadata",
            Route::ObjectVersions => "object_versions",
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
            Route::Objects => Some("GET, POST"),
            Route::Object => Some("GET, PUT, DELETE"),
            Route::ObjectByName | Route::ObjectMetadata | Route::ObjectVersions => Some("GET"),
            Route::Health | Route::Ready => Some("GET, HEAD"),
            Route::NotFound => None,
        }
    }

    /// Whether the route accepts `method`.
    pub(crate) fn accepts(self, method: &Method) -> bool {
        match self {
            Route::DataKey | Route::Decrypt | Route::Rekey => method == Method::POST,
            Route::Objects => method == Method::GET || method == Method::POST,
            Route::Object => {
                method == Method::GET || method == Method::PUT || method == Method::DELETE
            }
            Route::ObjectByName | Route::ObjectMetadata | Route::ObjectVersions => {
                method == Method::GET
            }
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
        assert_eq!(Route::of("/vault/v1/kv"), Route::Objects);
        assert_eq!(Route::of("/vault/v1/kv/obj_1"), Route::Object);
        assert_eq!(Route::of("/vault/v1/kv/.."), Route::Object);
        assert_eq!(Route::of("/vault/v1/kv/name/a%2Fb"), Route::ObjectByName);
        assert_eq!(Route::of("/vault/v1/kv/name/a/b"), Route::ObjectByName);
        assert_eq!(
            Route::of("/vault/v1/kv/obj_1/metadata"),
            Route::ObjectMetadata
        );
        assert_eq!(
            Route::of("/vault/v1/kv/obj_1/versions"),
            Route::ObjectVersions
        );
        for path in [
            "/vault/v1/kv/",
            "/vault/v1/kvx",
            "/vault/v1/kv/a/b",
            "/vault/v1/kv//metadata/x",
        ] {
            assert_eq!(Route::of(path), Route::NotFound, "{path}");
        }
        assert!(Route::Object.accepts(&Method::DELETE));
        assert!(!Route::ObjectVersions.accepts(&Method::POST));
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
