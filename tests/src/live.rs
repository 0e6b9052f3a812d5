//! Waiting on a live connection, with deadlines: a frame, a frame among others, a post on a tail.

use std::time::Duration;

use renkei_cli::Client;
use renkei_cli::live::{Live, Tail, TailEvent};
use renkei_protocol::{ClientFrame, ServerFrame, Subscription};
use uuid::Uuid;

/// The next frame, or a failure after 10 s.
pub async fn next(live: &mut Live) -> ServerFrame {
    match tokio::time::timeout(Duration::from_secs(10), live.next()).await {
        Ok(Some(Ok(frame))) => frame,
        other => panic!("no frame: {other:?}"),
    }
}

/// How long a test waits for a frame it expects among others: a socket that keeps sending something else
/// fails the test instead of holding it.
pub const WAIT_AMONG_OTHERS: Duration = Duration::from_secs(30);

/// Frames until one matches `pred`, which is returned (within [`WAIT_AMONG_OTHERS`]).
pub async fn until(live: &mut Live, pred: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
    let wanted = async {
        loop {
            let frame = next(live).await;
            if pred(&frame) {
                return frame;
            }
        }
    };
    tokio::time::timeout(WAIT_AMONG_OTHERS, wanted).await.expect("the awaited frame among the others within 30 s")
}

pub async fn subscribe(client: &Client, group: Uuid, after_seq: i64) -> Live {
    let mut live = client.connect_live().await.unwrap();
    live.send(&ClientFrame::Subscribe { id: "s".into(), groups: vec![Subscription { group_id: group, after_seq }] })
        .await
        .unwrap();
    live
}

pub async fn next_post(tail: &mut Tail) -> renkei_protocol::Post {
    let post = async {
        loop {
            match tokio::time::timeout(Duration::from_secs(15), tail.next())
                .await
                .expect("tail event within 15 s")
                .unwrap()
            {
                TailEvent::Post(post) => return post,
                _ => continue,
            }
        }
    };
    tokio::time::timeout(WAIT_AMONG_OTHERS, post).await.expect("a post among the tail's events within 30 s")
}
