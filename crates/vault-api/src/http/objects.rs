//! [`ObjectService`] for [`HttpKeyService`]: the objects API over the same
//! transport, connection pool, retries, timeouts and deadline as the key
//! calls, so one configured client serves both.

use async_trait::async_trait;
use hyper::Method;

use super::call::encode;
use super::transport::Bytes;
use super::HttpKeyService;
use crate::object::{
    percent_encode, CreateObjectRequest, DeleteObjectResponse, ListObjectsOptions, Object,
    ObjectList, ObjectMetadata, ObjectService, ObjectWithoutValue, UpdateObjectRequest,
    VersionList, OBJECTS_PATH, OBJECT_BY_NAME_PATH,
};
use crate::Error;

impl HttpKeyService {
    async fn object_call<A: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: Bytes,
    ) -> Result<A, Error> {
        Ok(self.inner.send(method, path, body).await?.body)
    }
}

/// `/vault/v1/kv/{id}` and what follows, with the id path-escaped.
fn object_path(id: &str, rest: &str) -> String {
    format!("{OBJECTS_PATH}/{}{rest}", percent_encode(id))
}

#[async_trait]
impl ObjectService for HttpKeyService {
    async fn create_object(&self, request: &CreateObjectRequest) -> Result<ObjectMetadata, Error> {
        request.key_context.validate()?;
        let body = encode(request)?;
        self.object_call(Method::POST, OBJECTS_PATH.to_owned(), body)
            .await
    }

    async fn read_object(&self, id: &str) -> Result<Object, Error> {
        self.object_call(Method::GET, object_path(id, ""), Bytes::new())
            .await
    }

    async fn read_object_by_name(&self, name: &str) -> Result<Object, Error> {
        let path = format!("{OBJECT_BY_NAME_PATH}{}", percent_encode(name));
        self.object_call(Method::GET, path, Bytes::new()).await
    }

    async fn list_objects(&self, options: &ListObjectsOptions) -> Result<ObjectList, Error> {
        let query = options.to_query();
        let path = if query.is_empty() {
            OBJECTS_PATH.to_owned()
        } else {
            format!("{OBJECTS_PATH}?{query}")
        };
        self.object_call(Method::GET, path, Bytes::new()).await
    }

    async fn list_object_versions(&self, id: &str) -> Result<VersionList, Error> {
        self.object_call(Method::GET, object_path(id, "/versions"), Bytes::new())
            .await
    }

    async fn describe_object(&self, id: &str) -> Result<ObjectWithoutValue, Error> {
        self.object_call(Method::GET, object_path(id, "/metadata"), Bytes::new())
            .await
    }

    async fn update_object(
        &self,
        id: &str,
        request: &UpdateObjectRequest,
    ) -> Result<ObjectWithoutValue, Error> {
        let body = encode(request)?;
        self.object_call(Method::PUT, object_path(id, ""), body)
            .await
    }

    async fn delete_object(
        &self,
        id: &str,
        version_check: Option<&str>,
    ) -> Result<DeleteObjectResponse, Error> {
        let query = version_check
            .map(|check| format!("?version_check={}", percent_encode(check)))
            .unwrap_or_default();
        self.object_call(Method::DELETE, object_path(id, &query), Bytes::new())
            .await
    }
}
