//! [`HttpKeyService`]: WorkOS Vault's key endpoints over HTTP, through a
//! pluggable [`Transport`].
//!
//! - `builder`: the settings and their checks.
//! - `call`: one call: its request, attempted under the
//!   [`RetryPolicy`](crate::RetryPolicy).
//! - `response`: what a response means (answer, failure, error kind).
//! - `transport`: the [`Transport`] trait and its error; `hyper_client`:
//!   the default transport, with `tls` (trusted roots, refused
//!   certificates) and `proxy` (`HTTPS_PROXY` and friends, `CONNECT`).

mod builder;
mod call;
mod hyper_client;
mod objects;
mod proxy;
mod response;
mod tls;
pub mod transport;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use hyper::header::HeaderValue;
use ring::rand::SystemRandom;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use builder::{HttpKeyServiceBuilder, ALLOW_INSECURE_HTTP_VAR};
use response::{data_key, data_key_pair};
use transport::Transport;

use crate::wire::{self, SecretString};
use crate::{DataKey, DataKeyPair, Error, ErrorKind, KeyContext, KeyService};

/// A [`KeyService`] that calls WorkOS Vault's key API (or anything that
/// speaks it, such as `vault-server`) over HTTP; it is also an
/// [`ObjectService`](crate::ObjectService) for the objects API, over the
/// same transport, pool, retries and deadline.
///
/// Requests go through a [`Transport`]: by default a
/// [`HyperTransport`](transport::HyperTransport), whose connections are
/// pooled and kept alive, and whose HTTPS negotiates HTTP/2 or HTTP/1.1
/// with ALPN, using rustls with the *ring* provider and the bundled
/// Mozilla roots (or the CAs of `SSL_CERT_FILE`, or
/// [`HttpKeyServiceBuilder::root_certificates_pem`]), through the proxies
/// `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` name ([`Proxies`](transport::Proxies)). Plain
/// `http://` is accepted for local servers. Bring your own transport with
/// [`HttpKeyServiceBuilder::transport`].
///
/// Every call carries a fresh random `Idempotency-Key` that stays the same
/// across its retries. Retries follow the official SDKs (the default
/// [`RetryPolicy`](crate::RetryPolicy)): statuses 408, 429, 500, 502, 503
/// and 504, dropped connections and timeouts are retried (3 times by
/// default) with exponential backoff and jitter, honouring `Retry-After`
/// (seconds or an HTTP date) up to 60 s; other 4xx statuses never are.
/// Each attempt has its own timeout (30 s) and the whole call a deadline
/// (2 min), whatever the transport.
///
/// Cloning is cheap and shares the transport (and its connection pool).
///
/// ```no_run
/// # async fn run() -> Result<(), vault_api::Error> {
/// use vault_api::{HttpKeyService, KeyContext, KeyService};
///
/// let service = HttpKeyService::builder()
///     .api_key(std::env::var("WORKOS_API_KEY").unwrap_or_default())
///     .build()?;
/// let context = KeyContext::new().with("organization_id", "org_123")?;
/// let pair = service.create_data_key(&context).await?;
/// // Store pair.encrypted_keys; later:
/// let data_key = service.decrypt_data_key(&pair.encrypted_keys).await?;
/// assert_eq!(data_key, pair.data_key);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpKeyService {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<dyn Transport>,
    /// Without a trailing slash; paths are appended.
    base_url: String,
    api_key: SecretString,
    user_agent: HeaderValue,
    policy: crate::RetryPolicy,
    rng: SystemRandom,
}

impl HttpKeyService {
    /// A builder; only [`HttpKeyServiceBuilder::api_key`] is required.
    pub fn builder() -> HttpKeyServiceBuilder {
        HttpKeyServiceBuilder::new()
    }

    /// The base URL requests go to, such as `https://api.workos.com`.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }
}

impl fmt::Debug for HttpKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("HttpKeyService")
            .field("base_url", &inner.base_url)
            .field("api_key", &format_args!("[redacted]"))
            .field("user_agent", &inner.user_agent)
            .field("policy", &inner.policy)
            .field("transport", &inner.transport)
            .finish_non_exhaustive()
    }
}

fn config_error(message: &str) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// A key endpoint, named by its request body: where it is, what it
/// answers, and what the body carries that must be checked before
/// anything is sent.
trait Endpoint: Serialize + Sync {
    const PATH: &'static str;
    type Answer: DeserializeOwned;

    /// The key context the body carries.
    fn context(&self) -> Option<&KeyContext> {
        None
    }

    /// The encrypted keys the body carries, base64.
    fn keys(&self) -> Option<&str> {
        None
    }

    /// Refuses what the key service would refuse: an empty context (the
    /// only way a `KeyContext` can break the rules) or empty keys.
    fn check(&self) -> Result<(), Error> {
        if let Some(context) = self.context() {
            context.validate()?;
        }
        if self.keys().is_some_and(str::is_empty) {
            return Err(Error::new(
                ErrorKind::InvalidKeys,
                "the encrypted keys are empty",
            ));
        }
        Ok(())
    }
}

impl Endpoint for wire::CreateDataKeyRequest {
    const PATH: &'static str = wire::DATA_KEY_PATH;
    type Answer = wire::DataKeyResponse;

    fn context(&self) -> Option<&KeyContext> {
        Some(&self.context)
    }
}

impl Endpoint for wire::DecryptDataKeyRequest {
    const PATH: &'static str = wire::DECRYPT_PATH;
    type Answer = wire::DecryptDataKeyResponse;

    fn keys(&self) -> Option<&str> {
        Some(&self.keys)
    }
}

impl Endpoint for wire::RekeyRequest {
    const PATH: &'static str = wire::REKEY_PATH;
    type Answer = wire::DataKeyResponse;

    fn context(&self) -> Option<&KeyContext> {
        Some(&self.context)
    }

    fn keys(&self) -> Option<&str> {
        Some(&self.encrypted_keys)
    }
}

#[async_trait]
impl KeyService for HttpKeyService {
    async fn create_data_key(&self, context: &KeyContext) -> Result<DataKeyPair, Error> {
        let request = wire::CreateDataKeyRequest {
            context: context.clone(),
        };
        data_key_pair(self.inner.call(&request).await?)
    }

    async fn decrypt_data_key(&self, encrypted_keys: &[u8]) -> Result<DataKey, Error> {
        let request = wire::DecryptDataKeyRequest {
            keys: vault_format::b64::encode(encrypted_keys),
        };
        let answer = self.inner.call(&request).await?;
        let request_id = answer.request_id.as_deref();
        data_key(&answer.body.id, &answer.body.data_key, request_id)
    }

    async fn rekey(
        &self,
        encrypted_keys: &[u8],
        context: &KeyContext,
    ) -> Result<DataKeyPair, Error> {
        let request = wire::RekeyRequest {
            context: context.clone(),
            encrypted_keys: vault_format::b64::encode(encrypted_keys),
        };
        data_key_pair(self.inner.call(&request).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_api_key() {
        let service = HttpKeyService::builder()
            .api_key("sk_test_very_secret")
            .base_url("http://127.0.0.1:1/")
            .build()
            .unwrap();
        let debug = format!("{service:?}");
        assert!(!debug.contains("very_secret"), "{debug}");
        assert!(debug.contains("api_key: [redacted]"), "{debug}");
        assert!(debug.contains("http://127.0.0.1:1"), "{debug}");
        assert!(debug.contains("HyperTransport"), "{debug}");
        let builder = format!(
            "{:?}",
            HttpKeyService::builder().api_key("sk_test_very_secret")
        );
        assert!(!builder.contains("very_secret"), "{builder}");
        assert_eq!(service.base_url(), "http://127.0.0.1:1");
    }

    #[test]
    fn bodies_are_checked_before_sending() {
        let empty = wire::CreateDataKeyRequest {
            context: KeyContext::new(),
        };
        assert_eq!(empty.check().unwrap_err().kind(), ErrorKind::InvalidContext);
        let no_keys = wire::DecryptDataKeyRequest {
            keys: String::new(),
        };
        assert_eq!(no_keys.check().unwrap_err().kind(), ErrorKind::InvalidKeys);
        let context = KeyContext::new().with("org", "o").unwrap();
        let rekey = |context: &KeyContext, keys: &str| wire::RekeyRequest {
            context: context.clone(),
            encrypted_keys: keys.to_owned(),
        };
        assert_eq!(
            rekey(&KeyContext::new(), "").check().unwrap_err().kind(),
            ErrorKind::InvalidContext,
            "the context is checked first"
        );
        assert_eq!(
            rekey(&context, "").check().unwrap_err().kind(),
            ErrorKind::InvalidKeys
        );
        rekey(&context, "a2V5cw==").check().unwrap();
    }
}
