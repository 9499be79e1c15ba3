//! Request bodies: JSON only, bounded in size, parsed with messages that name the field and
//! never echo the value.

use super::error::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 256 * 1024;

/// A JSON request body read whole (up to [`BODY_LIMIT`]).
pub struct JsonBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {BODY_LIMIT} bytes"),
                )
            })?;
        Ok(JsonBytes(bytes))
    }
}

impl JsonBytes {
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        crate::domain::parse_json(&self.0).map_err(|e| ApiError::bad_request(&e.field, e.message))
    }
}
