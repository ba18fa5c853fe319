//! One call of a key endpoint: encode, then attempt under the retry
//! policy.

use hyper::header::{self, HeaderValue};
use hyper::Method;
use ring::rand::{SecureRandom, SystemRandom};
use tracing::Instrument;

use super::builder::authorization;
use super::response::{self, Answer};
use super::transport::{http, Bytes};
use super::{config_error, Endpoint, Inner};
use crate::{Error, ErrorKind};

/// What every attempt of one call sends.
struct Outgoing {
    method: Method,
    path: String,
    body: Bytes,
    idempotency_key: HeaderValue,
}

impl Inner {
    /// Checks and POSTs `request`, retrying as the service's docs say.
    pub(super) async fn call<E: Endpoint>(&self, request: &E) -> Result<Answer<E::Answer>, Error> {
        request.check()?;
        self.send(Method::POST, E::PATH.to_owned(), encode(request)?)
            .await
    }

    /// Sends `body` (empty for none) with `method` to `path` (with its
    /// query), retrying as the service's docs say: every call the client
    /// makes goes through here.
    pub(super) async fn send<A: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: Bytes,
    ) -> Result<Answer<A>, Error> {
        let outgoing = Outgoing {
            method,
            path,
            body,
            idempotency_key: HeaderValue::try_from(new_idempotency_key(&self.rng)?)
                .map_err(|_| config_error("could not build an idempotency key"))?,
        };
        let span = tracing::info_span!(
            "vault_api.call",
            method = %outgoing.method,
            path = %outgoing.path,
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        self.call_with_retries(&outgoing).instrument(span).await
    }

    /// Attempts under the retry policy.
    async fn call_with_retries<A: serde::de::DeserializeOwned>(
        &self,
        outgoing: &Outgoing,
    ) -> Result<Answer<A>, Error> {
        let policy = &self.policy;
        policy
            .run("the key service", || async {
                let request = self.request(outgoing)?;
                let sent = self.transport.send(request).await;
                response::read(&outgoing.path, sent, policy)
            })
            .await
    }

    /// The request of one attempt.
    fn request(&self, outgoing: &Outgoing) -> Result<http::Request<Bytes>, Error> {
        let mut request = http::Request::builder()
            .method(outgoing.method.clone())
            .uri(format!("{}{}", self.base_url, outgoing.path))
            .header(header::AUTHORIZATION, authorization(&self.api_key)?);
        if !outgoing.body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        request
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, self.user_agent.clone())
            .header("idempotency-key", outgoing.idempotency_key.clone())
            .body(outgoing.body.clone())
            .map_err(|_| config_error("could not build the request"))
    }
}

pub(super) fn encode(request: &impl serde::Serialize) -> Result<Bytes, Error> {
    let json = serde_json::to_vec(request).map_err(|error| {
        Error::new(
            ErrorKind::Encode,
            "the request could not be encoded as JSON",
        )
        .with_source(error)
    })?;
    Ok(Bytes::from(json))
}

/// A random UUID v4 from the system CSPRNG.
fn new_idempotency_key(rng: &SystemRandom) -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).map_err(|_| Error::random_failed())?;
    Ok(vault_format::__private::id::uuid_v4(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_uuid_v4() {
        let rng = SystemRandom::new();
        let a = new_idempotency_key(&rng).unwrap();
        let b = new_idempotency_key(&rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(a.matches('-').count(), 4);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }
}
