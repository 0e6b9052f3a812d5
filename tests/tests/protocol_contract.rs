//! The live protocol's machine-readable contract: a recorded session of real frames, sent and received on
//! `/api/v1/ws`, each valid against its message in the served AsyncAPI document
//! (`/api/v1/asyncapi.json`), and every frame example in docs/protocol.md valid too.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use renkei_tests::{TestApp, both_backends};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A validator for the message `name` (`client.post`, `server.ack` …) of the AsyncAPI document `doc`.
fn validator(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let mut schema = doc.clone();
    schema["$ref"] = json!(format!("#{pointer}"));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{pointer}: {e}"))
}

/// Checks `frame` against its own message and against the union of its direction.
fn check(doc: &Value, direction: &str, frame: &Value) {
    let kind = frame["type"].as_str().unwrap_or_else(|| panic!("untagged frame {frame}"));
    let message = format!("/components/messages/{direction}.{kind}/payload");
    assert!(doc.pointer(&message).is_some(), "the document has no message {direction}.{kind}");
    let union =
        if direction == "client" { "/components/schemas/ClientFrame" } else { "/components/schemas/ServerFrame" };
    for pointer in [message.as_str(), union] {
        let errors: Vec<String> =
            validator(doc, pointer).iter_errors(frame).map(|e| format!("{e} at {}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{direction} frame {frame} breaks {pointer}: {errors:?}");
    }
}

struct Recorder {
    socket: Socket,
    frames: Vec<(String, Value)>,
}

impl Recorder {
    async fn open(app: &TestApp, token: &str) -> Self {
        let url = format!("{}/api/v1/ws", app.base_url.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
        Self { socket, frames: Vec::new() }
    }

    async fn send(&mut self, frame: Value) {
        self.socket.send(Message::Text(frame.to_string().into())).await.unwrap();
        self.frames.push(("client".into(), frame));
    }

    /// The next server frame of type `kind`, recording every frame on the way; at most 10 s.
    async fn expect(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` frame within 10 s; had {:?}", self.frames));
            let Message::Text(text) = next.expect("open").expect("a frame") else { continue };
            let frame: Value = serde_json::from_str(&text).expect("JSON");
            self.frames.push(("server".into(), frame.clone()));
            if frame["type"] == kind {
                return frame;
            }
        }
    }
}

both_backends!(
    async fn a_recorded_session_of_real_frames_is_valid_against_the_asyncapi_document(app: TestApp) {
        let doc: Value =
            reqwest::get(format!("{}/api/v1/asyncapi.json", app.base_url)).await.unwrap().json().await.unwrap();
        assert_eq!(doc["asyncapi"], "3.0.0");
        let team = app.team().await;
        let group = team.group.to_string();
        let token = |c: &renkei_cli::Client| c.token().unwrap().expose().to_owned();
        let mut nurse = Recorder::open(&app, &token(&team.nurse)).await;
        let mut doctor = Recorder::open(&app, &token(&team.doctor)).await;
        let mut care_manager = Recorder::open(&app, &token(&team.care_manager)).await;

        for (who, id) in [(&mut nurse, "s-n"), (&mut doctor, "s-d"), (&mut care_manager, "s-c")] {
            who.send(json!({ "type": "subscribe", "id": id, "groups": [{ "group_id": group, "after_seq": 0 }] })).await;
            who.expect("subscribed").await;
        }
        // A post, its acknowledgement after the commit, and its live delivery.
        nurse
            .send(json!({ "type": "post", "id": "p-1", "group_id": group,
                "post": { "kind": "update", "body": "本日の訪問: 血圧 128/76、食事良好", "client_msg_id": "rec-1" } }))
            .await;
        let ack = nurse.expect("ack").await;
        assert_eq!(ack["seq"], 1);
        doctor.expect("post").await;
        // A care-plan question, a mark seen and read, a ping.
        doctor
            .send(json!({ "type": "post", "id": "p-2", "group_id": group,
                "post": { "kind": "care_plan_question", "body": "来週の訪問回数を増やせますか", "client_msg_id": "rec-2",
                          "reply_to": 1 } }))
            .await;
        doctor.expect("ack").await;
        doctor.send(json!({ "type": "mark_seen", "id": "m-1", "group_id": group, "seq": 1 })).await;
        doctor.expect("ack").await;
        nurse.expect("seen").await;
        nurse.send(json!({ "type": "mark_read", "id": "r-1", "group_id": group, "seq": 2 })).await;
        nurse.expect("ack").await;
        nurse.send(json!({ "type": "ping", "id": "k-1" })).await;
        nurse.expect("pong").await;
        // Refusals: an emergency (with the physician's phone), a frame of no known type.
        nurse
            .send(json!({ "type": "post", "id": "p-3", "group_id": group,
                "post": { "kind": "update", "body": "急変です、至急来てください", "client_msg_id": "rec-3" } }))
            .await;
        let refused = nurse.expect("error").await;
        assert_eq!(refused["code"], "emergency_use_prohibited");
        nurse.send(json!({ "type": "shout", "id": "x-1" })).await;
        let malformed = nurse.expect("error").await;
        assert_eq!(malformed["code"], "malformed_request");
        // The frame of no known type is not a client frame, by design; its refusal is a server frame.
        nurse.frames.retain(|(d, f)| !(d == "client" && f["type"] == "shout"));
        // An edit reaches everyone as `post_updated`; a removal ends the care manager's delivery.
        team.doctor.edit_post(team.group, 2, "来週の訪問回数を週3回に増やせますか").await.unwrap();
        nurse.expect("post_updated").await;
        let care_manager_id = team.care_manager.me().await.unwrap().id.to_string();
        team.doctor.remove_member(team.group, &care_manager_id).await.unwrap();
        let ended = care_manager.expect("membership_changed").await;
        assert_eq!(ended["group_id"], group);

        let mut kinds = std::collections::BTreeSet::new();
        for recorder in [&nurse, &doctor, &care_manager] {
            for (direction, frame) in &recorder.frames {
                check(&doc, direction, frame);
                kinds.insert(format!("{direction}.{}", frame["type"].as_str().unwrap()));
            }
        }
        for kind in ["client.subscribe", "client.post", "client.mark_seen", "client.mark_read", "client.ping"] {
            assert!(kinds.contains(kind), "the session never had {kind}: {kinds:?}");
        }
        for kind in ["server.subscribed", "server.ack", "server.post", "server.seen", "server.pong", "server.error"] {
            assert!(kinds.contains(kind), "the session never had {kind}: {kinds:?}");
        }
        // A frame that breaks the document is caught (the check can fail).
        let broken = json!({ "type": "ack" });
        assert!(!validator(&doc, "/components/messages/server.ack/payload").is_valid(&broken));
    }
);

/// Every fenced example in docs/protocol.md marked `json client` or `json server` is a valid frame.
#[test]
fn the_frame_examples_in_the_protocol_document_are_valid() {
    let doc = renkei_tests::renkei_server::http::asyncapi_document();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md")).unwrap();
    let mut seen = 0;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let direction = match line.trim() {
            "```json client" => "client",
            "```json server" => "server",
            _ => continue,
        };
        let body: String = lines.by_ref().take_while(|l| l.trim() != "```").collect::<Vec<_>>().join("\n");
        let frame: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        check(&doc, direction, &frame);
        seen += 1;
    }
    assert!(seen >= 10, "docs/protocol.md shows {seen} frame examples");
}
