//! Reading a request body within the limits.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::header;
use hyper::Request;

/// How long a client may take to send a whole request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an oversized body is read and thrown away so the client
/// sees the 413 instead of a reset connection.
const MAX_DRAIN_BYTES: usize = 16 << 20;

/// A request body: hyper's from a connection, or a buffer in memory (the
/// `RequestHandler` of the `test-util` feature).
pub(crate) trait RequestBody: hyper::body::Body<Data = Bytes> + Send + Sync + Unpin {}

impl<B: hyper::body::Body<Data = Bytes> + Send + Sync + Unpin> RequestBody for B {}

/// Why a body was not read.
pub(crate) enum BodyError {
    /// Over the limit.
    TooLarge,
    /// Broken off, malformed, or too slow.
    Unreadable,
}

/// Reads at most `limit` bytes of body. A larger body is read on and thrown
/// away (up to [`MAX_DRAIN_BYTES`]), never buffered, so the client gets to
/// read the 413.
pub(crate) async fn read_body<B: RequestBody>(
    request: Request<B>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let drain_limit = limit.saturating_add(MAX_DRAIN_BYTES);
    if declared.is_some_and(|len| len > drain_limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let capacity = declared
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0)
        .min(limit);
    let read = read_frames(request.into_body(), capacity, limit, drain_limit);
    tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::Unreadable))
}

/// Keeps the first `limit` bytes; reads on up to `drain_limit`.
async fn read_frames<B: RequestBody>(
    mut body: B,
    capacity: usize,
    limit: usize,
    drain_limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut buffer = Vec::with_capacity(capacity);
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > drain_limit {
            break;
        }
        if seen <= limit {
            buffer.extend_from_slice(&data);
        }
    }
    if seen > limit {
        Err(BodyError::TooLarge)
    } else {
        Ok(buffer)
    }
}
