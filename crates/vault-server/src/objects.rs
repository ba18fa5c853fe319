//! The objects API (`/vault/v1/kv...`) over an [`ObjectService`]: the
//! request's path, query and body in, WorkOS's statuses and JSON out.
//! Authentication, limits, metrics and the access log are the key routes'
//! (in `handler`).

use hyper::{Method, StatusCode, Uri};
use serde::Serialize;
use vault_api::object::{
    parse_version_check_query, percent_decode, CreateObjectRequest, ListObjectsOptions,
    ObjectService, UpdateObjectRequest, OBJECTS_PATH, OBJECT_BY_NAME_PATH,
};
use vault_api::ErrorKind;

use crate::metrics::Metrics;
use crate::reply::{self, Body, Reject};
use crate::route::Route;

/// The answer when no object service is configured.
const NOT_ENABLED: &str = "the objects API is not enabled on this server: give it an object \
     store (workos-vault serve keeps one beside the keyring, or in WORKOS_VAULT_DATABASE_URL)";

/// Answers one objects request whose head has been checked (route, method,
/// API key) and whose body has been read.
pub(crate) async fn answer(
    service: Option<&dyn ObjectService>,
    metrics: &Metrics,
    route: Route,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Result<hyper::Response<Body>, Reject> {
    let Some(service) = service else {
        return Err(Reject::new(StatusCode::NOT_FOUND, NOT_ENABLED));
    };
    let failed = |error: vault_api::Error| service_error(metrics, error);
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    match (route, method) {
        (Route::Objects, &Method::POST) => {
            no_query(query)?;
            let request: CreateObjectRequest =
                reply::parse_with_context_field(body, "key_context")?;
            let created = service.create_object(&request).await.map_err(failed)?;
            Ok(json(StatusCode::CREATED, &created))
        }
        (Route::Objects, _) => {
            let options = ListObjectsOptions::from_query(query).map_err(failed)?;
            let list = service.list_objects(&options).await.map_err(failed)?;
            Ok(json(StatusCode::OK, &list))
        }
        (Route::ObjectByName, _) => {
            no_query(query)?;
            let raw = path.strip_prefix(OBJECT_BY_NAME_PATH).unwrap_or_default();
            let name = percent_decode(raw).map_err(failed)?;
            let object = service.read_object_by_name(&name).await.map_err(failed)?;
            Ok(json(StatusCode::OK, &object))
        }
        (Route::Object, &Method::PUT) => {
            no_query(query)?;
            let id = object_id(path)?;
            let request: UpdateObjectRequest = reply::parse(body)?;
            let updated = service.update_object(&id, &request).await.map_err(failed)?;
            Ok(json(StatusCode::CREATED, &updated))
        }
        (Route::Object, &Method::DELETE) => {
            let id = object_id(path)?;
            let version_check = parse_version_check_query(query).map_err(failed)?;
            let deleted = service
                .delete_object(&id, version_check.as_deref())
                .await
                .map_err(failed)?;
            Ok(json(StatusCode::OK, &deleted))
        }
        (Route::Object, _) => {
            no_query(query)?;
            let object = service
                .read_object(&object_id(path)?)
                .await
                .map_err(failed)?;
            Ok(json(StatusCode::OK, &object))
        }
        (Route::ObjectMetadata, _) => {
            no_query(query)?;
            let object = service
                .describe_object(&object_id(path)?)
                .await
                .map_err(failed)?;
            Ok(json(StatusCode::OK, &object))
        }
        _ => {
            no_query(query)?;
            let versions = service
                .list_object_versions(&object_id(path)?)
                .await
                .map_err(failed)?;
            Ok(json(StatusCode::OK, &versions))
        }
    }
}

/// The id segment of `/vault/v1/kv/{id}[/...]`, percent-decoded.
fn object_id(path: &str) -> Result<String, Reject> {
    let rest = path
        .strip_prefix(OBJECTS_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or_default();
    let segment = rest.split('/').next().unwrap_or_default();
    percent_decode(segment).map_err(|error| Reject::new(StatusCode::BAD_REQUEST, error.message()))
}

/// Refuses a query on an endpoint that takes none.
fn no_query(query: &str) -> Result<(), Reject> {
    if query.is_empty() {
        Ok(())
    } else {
        Err(Reject::new(
            StatusCode::BAD_REQUEST,
            "this endpoint takes no query parameters",
        ))
    }
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> hyper::Response<Body> {
    // Values are secrets: the zeroizing path of the data-key answers.
    let mut response = reply::secret_json(body);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// WorkOS's statuses for the objects API's failures; anything else is the
/// key routes' answer (a logged 500).
fn service_error(metrics: &Metrics, error: vault_api::Error) -> Reject {
    let status = match error.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        _ => {
            metrics.service_error(error.kind());
            return reply::service_error(error);
        }
    };
    Reject::new(status, error.message())
}
