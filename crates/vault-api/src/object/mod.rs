//! WorkOS Vault's objects (key-value) API: named values encrypted under a
//! key context, versioned, with optimistic locking.
//!
//! - [`ObjectService`]: the eight operations, as a trait beside
//!   [`KeyService`](crate::KeyService).
//! - The wire types ([`CreateObjectRequest`], [`Object`], [`ObjectList`],
//!   ...), checked while they are parsed.
//! - [`ListObjectsOptions`]: the list's page size, cursors, order and
//!   filters, and its query string.
//!
//! | endpoint | operation | success |
//! |---|---|---|
//! | `POST /vault/v1/kv` | [`ObjectService::create_object`] | 201 [`ObjectMetadata`] |
//! | `GET /vault/v1/kv/{id}` | [`ObjectService::read_object`] | 200 [`Object`] |
//! | `GET /vault/v1/kv/name/{name}` | [`ObjectService::read_object_by_name`] | 200 [`Object`] |
//! | `GET /vault/v1/kv` | [`ObjectService::list_objects`] | 200 [`ObjectList`] |
//! | `PUT /vault/v1/kv/{id}` | [`ObjectService::update_object`] | 201 [`ObjectWithoutValue`] |
//! | `DELETE /vault/v1/kv/{id}` | [`ObjectService::delete_object`] | 200 [`DeleteObjectResponse`] |
//! | `GET /vault/v1/kv/{id}/metadata` | [`ObjectService::describe_object`] | 200 [`ObjectWithoutValue`] |
//! | `GET /vault/v1/kv/{id}/versions` | [`ObjectService::list_object_versions`] | 200 [`VersionList`] |
//!
//! Failures are [`Error`]s whose [`ErrorKind`](crate::ErrorKind) says what
//! to do: `NotFound` (404), `Conflict` (409: the name is taken, or a
//! `version_check` is stale), `InvalidRequest` (400), `InvalidContext`
//! (422).
//!
//! The SQL store that implements this trait is the `vault-store` crate.

mod query;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;

use crate::Error;

pub use query::{
    parse_version_check_query, percent_decode, percent_encode, ListObjectsOptions, Order,
    DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT,
};
pub use wire::{
    Actor, CreateObjectRequest, DeleteObjectResponse, ListMetadata, Object, ObjectList,
    ObjectMetadata, ObjectName, ObjectSummary, ObjectVersion, ObjectWithoutValue,
    UpdateObjectRequest, VersionList, MAX_OBJECT_NAME_CHARS, OBJECTS_PATH, OBJECT_BY_NAME_PATH,
};

/// An objects service: WorkOS Vault over HTTP, the SQL store of
/// `vault-store`, or your own.
///
/// Implementations are `Send + Sync + Debug` and are usually held as
/// `Arc<dyn ObjectService>`. Neither `Debug` nor errors may reveal values.
///
/// ```
/// use async_trait::async_trait;
/// use vault_api::object::*;
/// use vault_api::{Error, ErrorKind};
///
/// /// Objects kept nowhere.
/// #[derive(Debug)]
/// struct Nowhere;
///
/// fn missing() -> Error {
///     Error::new(ErrorKind::NotFound, "object not found").with_status(404)
/// }
///
/// #[async_trait]
/// impl ObjectService for Nowhere {
///     async fn create_object(&self, _: &CreateObjectRequest) -> Result<ObjectMetadata, Error> {
///         Err(Error::new(ErrorKind::Storage, "nowhere to store it"))
///     }
///     async fn read_object(&self, _: &str) -> Result<Object, Error> { Err(missing()) }
///     async fn read_object_by_name(&self, _: &str) -> Result<Object, Error> { Err(missing()) }
///     async fn list_objects(&self, _: &ListObjectsOptions) -> Result<ObjectList, Error> {
///         Ok(ObjectList::default())
///     }
///     async fn list_object_versions(&self, _: &str) -> Result<VersionList, Error> { Err(missing()) }
///     async fn describe_object(&self, _: &str) -> Result<ObjectWithoutValue, Error> { Err(missing()) }
///     async fn update_object(&self, _: &str, _: &UpdateObjectRequest)
///         -> Result<ObjectWithoutValue, Error> { Err(missing()) }
///     async fn delete_object(&self, _: &str, _: Option<&str>)
///         -> Result<DeleteObjectResponse, Error> { Err(missing()) }
/// }
/// let service: std::sync::Arc<dyn ObjectService> = std::sync::Arc::new(Nowhere);
/// ```
#[async_trait]
pub trait ObjectService: Send + Sync + std::fmt::Debug {
    /// Stores a new object; its name must be free
    /// ([`ErrorKind::Conflict`](crate::ErrorKind::Conflict) otherwise).
    async fn create_object(&self, request: &CreateObjectRequest) -> Result<ObjectMetadata, Error>;

    /// The object with id `id`, with its current value.
    async fn read_object(&self, id: &str) -> Result<Object, Error>;

    /// The object named `name`, with its current value.
    async fn read_object_by_name(&self, name: &str) -> Result<Object, Error>;

    /// A page of objects (ids, names and change times; no values).
    async fn list_objects(&self, options: &ListObjectsOptions) -> Result<ObjectList, Error>;

    /// The versions of object `id`, newest first.
    async fn list_object_versions(&self, id: &str) -> Result<VersionList, Error>;

    /// The object's name and metadata, without its value.
    async fn describe_object(&self, id: &str) -> Result<ObjectWithoutValue, Error>;

    /// Writes a new version of object `id`. With a `version_check`, only if
    /// that is still the current version
    /// ([`ErrorKind::Conflict`](crate::ErrorKind::Conflict) otherwise).
    async fn update_object(
        &self,
        id: &str,
        request: &UpdateObjectRequest,
    ) -> Result<ObjectWithoutValue, Error>;

    /// Deletes object `id` with all its versions; with `version_check`, only
    /// if that is still the current version.
    async fn delete_object(
        &self,
        id: &str,
        version_check: Option<&str>,
    ) -> Result<DeleteObjectResponse, Error>;
}

#[async_trait]
impl<T: ObjectService + ?Sized> ObjectService for Arc<T> {
    async fn create_object(&self, request: &CreateObjectRequest) -> Result<ObjectMetadata, Error> {
        (**self).create_object(request).await
    }

    async fn read_object(&self, id: &str) -> Result<Object, Error> {
        (**self).read_object(id).await
    }

    async fn read_object_by_name(&self, name: &str) -> Result<Object, Error> {
        (**self).read_object_by_name(name).await
    }

    async fn list_objects(&self, options: &ListObjectsOptions) -> Result<ObjectList, Error> {
        (**self).list_objects(options).await
    }

    async fn list_object_versions(&self, id: &str) -> Result<VersionList, Error> {
        (**self).list_object_versions(id).await
    }

    async fn describe_object(&self, id: &str) -> Result<ObjectWithoutValue, Error> {
        (**self).describe_object(id).await
    }

    async fn update_object(
        &self,
        id: &str,
        request: &UpdateObjectRequest,
    ) -> Result<ObjectWithoutValue, Error> {
        (**self).update_object(id, request).await
    }

    async fn delete_object(
        &self,
        id: &str,
        version_check: Option<&str>,
    ) -> Result<DeleteObjectResponse, Error> {
        (**self).delete_object(id, version_check).await
    }
}
