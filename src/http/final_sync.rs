//! `POST /final-sync[?flow=<source>-><target>]`: asks each flow's checkpoint task for one
//! immediate round — groups listed, checkpoints emitted, group offsets committed on the target —
//! and answers once it is done (`kafka-mirrord cutover --final-sync`). A flow whose checkpoints
//! run on another node (its leader) answers with that node instead.
//!
//! Answer: `{"flows":[{"flow":"A->B","done":true},{"flow":"C->B","error":"..."}]}`; 200 when every
//! round is done, 409 when one cannot run here, 504 when one did not finish in time.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::{text, with_type, HttpState};

/// How long a round may take (well inside the connection lifetime).
const ROUND_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Serialize)]
struct FlowAnswer {
    flow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(super) async fn respond(
    request: &Request<Incoming>,
    state: &HttpState,
) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let flow = request
        .uri()
        .query()
        .and_then(|query| query_value(query, "flow"));
    let tickets = state.status.request_final_sync(flow.as_deref());
    if tickets.is_empty() {
        return text(StatusCode::NOT_FOUND, "no such flow\n");
    }
    let mut answers = Vec::new();
    let mut code = StatusCode::OK;
    for (flow, ticket) in tickets {
        let answer = match ticket {
            Err(reason) => {
                code = StatusCode::CONFLICT;
                FlowAnswer {
                    flow,
                    done: None,
                    error: Some(reason),
                }
            }
            Ok((number, mut done)) => {
                let finished =
                    tokio::time::timeout(ROUND_TIMEOUT, done.wait_for(|done| *done >= number))
                        .await;
                let finished = matches!(finished, Ok(Ok(_)));
                if !finished && code == StatusCode::OK {
                    code = StatusCode::GATEWAY_TIMEOUT;
                }
                FlowAnswer {
                    flow,
                    done: Some(finished),
                    error: (!finished).then(|| {
                        format!(
                            "the round did not finish within {} s",
                            ROUND_TIMEOUT.as_secs()
                        )
                    }),
                }
            }
        };
        answers.push(answer);
    }
    let body = serde_json::json!({ "flows": answers });
    let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
    bytes.push(b'\n');
    with_type(code, "application/json", bytes)
}

/// The percent-decoded value of `name` in a query string (`+` is a space).
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 3;
                    }
                    None => {
                        out.push(b'%');
                        index += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            query_value("x=1&flow=A-%3EB", "flow").as_deref(),
            Some("A->B")
        );
        assert_eq!(query_value("flow=A->B", "flow").as_deref(), Some("A->B"));
        assert_eq!(query_value("flow=a+b%2", "flow").as_deref(), Some("a b%2"));
        assert_eq!(query_value("other=1", "flow"), None);
    }
}
