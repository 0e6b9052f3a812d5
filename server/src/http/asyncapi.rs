//! The live protocol as an AsyncAPI 3.0 document, served at `/api/v1/asyncapi.json`. Its schemas are the
//! OpenAPI document's (`ClientFrame`, `ServerFrame` and what they refer to, generated from
//! `protocol/src/posts.rs`, with the same input rules), so the two cannot drift; one message per frame
//! type. docs/protocol.md is the prose beside it.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// Schema names `schema` refers to, directly or through other schemas of `all`.
fn referenced(schema: &Value, all: &Map<String, Value>, found: &mut BTreeSet<String>) {
    match schema {
        Value::Object(fields) => {
            if let Some(Value::String(r)) = fields.get("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
                && found.insert(name.to_owned())
                && let Some(target) = all.get(name)
            {
                referenced(target, all, found);
            }
            fields.values().for_each(|v| referenced(v, all, found));
        }
        Value::Array(items) => items.iter().for_each(|v| referenced(v, all, found)),
        _ => {}
    }
}

/// Each variant of the tagged union `frames` as a message named `{prefix}{type}`, e.g. `client.post`.
fn messages(frames: &Value, prefix: &str, out: &mut Map<String, Value>) -> Vec<Value> {
    let variants = frames["oneOf"].as_array().cloned().unwrap_or_default();
    variants
        .into_iter()
        .map(|variant| {
            let kind =
                variant["properties"]["type"]["enum"][0].as_str().expect("every frame is tagged by `type`").to_owned();
            let name = format!("{prefix}{kind}");
            let mut message = json!({
                "name": kind,
                "title": kind,
                "contentType": "application/json",
                "payload": variant,
            });
            if let Some(text) = message["payload"].get("description").cloned() {
                message["summary"] = text;
            }
            out.insert(name.clone(), message);
            json!({ "$ref": format!("#/components/messages/{name}") })
        })
        .collect()
}

/// The AsyncAPI document of `/api/v1/ws`, built from the served OpenAPI document `openapi`.
pub(super) fn document(openapi: &Value) -> Value {
    let all = openapi["components"]["schemas"].as_object().cloned().unwrap_or_default();
    let mut names = BTreeSet::from(["ClientFrame".to_owned(), "ServerFrame".to_owned()]);
    for frame in ["ClientFrame", "ServerFrame"] {
        referenced(&all[frame], &all, &mut names);
    }
    let schemas: Map<String, Value> = names.iter().filter_map(|n| Some((n.clone(), all.get(n)?.clone()))).collect();
    let mut message_map = Map::new();
    let sent = messages(&all["ClientFrame"], "client.", &mut message_map);
    let received = messages(&all["ServerFrame"], "server.", &mut message_map);
    let channel_messages: Map<String, Value> =
        message_map.keys().map(|k| (k.clone(), json!({ "$ref": format!("#/components/messages/{k}") }))).collect();
    let in_channel = |refs: &[Value]| -> Vec<Value> {
        refs.iter()
            .map(|r| {
                let name = r["$ref"].as_str().unwrap_or("").trim_start_matches("#/components/messages/");
                json!({ "$ref": format!("#/channels/live/messages/{name}") })
            })
            .collect()
    };
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "renkei live protocol",
            "version": "1",
            "description": "One WebSocket per client carries every live post, acknowledgement and mark. \
                Frames are JSON text, tagged by `type`. Authentication at the upgrade: `Authorization: Bearer \
                TOKEN` (programs), or the session cookie, or the subprotocols `renkei.v1, renkei.token.TOKEN` \
                (browsers, from an allowed Origin). A post is acknowledged (`ack`) only once durably \
                committed; a retry with the same `client_msg_id` answers with the original post. Posts of a \
                group arrive strictly in sequence order, each once; `resync` says the connection fell behind \
                and the missed posts follow from the database. Close codes: 1008 session ended or account \
                disabled (do not reconnect with that token), 1009 frame too large (64 KiB), 1007 not UTF-8, \
                1002 protocol error. Rules, resume and rate limits: docs/protocol.md; error codes: \
                docs/errors.md."
        },
        "defaultContentType": "application/json",
        "servers": {
            "renkei": {
                "host": "localhost:8443",
                "protocol": "wss",
                "description": "The renkei server itself (its own host and port).",
                "security": [
                    { "$ref": "#/components/securitySchemes/bearer" },
                    { "$ref": "#/components/securitySchemes/cookie" },
                    { "$ref": "#/components/securitySchemes/subprotocol" }
                ]
            }
        },
        "channels": {
            "live": {
                "address": "/api/v1/ws",
                "title": "The live connection",
                "messages": channel_messages,
            }
        },
        "operations": {
            "send": {
                "action": "send",
                "title": "Frames the client sends",
                "channel": { "$ref": "#/channels/live" },
                "messages": in_channel(&sent),
            },
            "receive": {
                "action": "receive",
                "title": "Frames the server sends",
                "channel": { "$ref": "#/channels/live" },
                "messages": in_channel(&received),
            }
        },
        "components": {
            "schemas": schemas,
            "messages": message_map,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer",
                    "description": "`Bearer TOKEN`, the token of POST /api/v1/auth/login with `session: bearer`." },
                "cookie": { "type": "httpApiKey", "name": crate::auth::cookie::SESSION_COOKIE, "in": "cookie",
                    "description": "The browser's HttpOnly session cookie." },
                "subprotocol": { "type": "httpApiKey", "name": "Sec-WebSocket-Protocol", "in": "header",
                    "description": "`renkei.v1, renkei.token.TOKEN`; the server answers `renkei.v1`." }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_frame_is_a_message_and_every_reference_resolves() {
        let openapi = crate::http::openapi_document();
        let doc = super::document(&openapi);
        let messages = doc["components"]["messages"].as_object().unwrap();
        for name in ["client.subscribe", "client.post", "client.mark_seen", "client.mark_read", "client.ping"] {
            assert!(messages.contains_key(name), "{name}");
        }
        for name in ["server.post", "server.ack", "server.error", "server.resync", "server.membership_changed"] {
            assert!(messages.contains_key(name), "{name}");
        }
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"").skip(1) {
            let target = &r[..r.find('"').unwrap()];
            let pointer = target.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
    }
}
