//! The scale scenarios run end to end on a small scale against the debug server (SQLite): their loader,
//! their deliveries and their reports, so that a schema change or a protocol change that breaks them
//! fails here rather than on the day someone measures.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `renkei-bench ARGS --json FILE` with a deadline and returns the report.
fn bench(dir: &Path, args: &[&str]) -> Value {
    let json = dir.join("report.json");
    let bin = env!("CARGO_BIN_EXE_renkei-bench");
    let server = Path::new(bin).with_file_name("renkei-server");
    assert!(server.exists(), "{} is missing: build the workspace first (cargo build --workspace)", server.display());
    let mut child = Command::new(bin)
        .arg("--server-bin")
        .arg(&server)
        .arg("--json")
        .arg(&json)
        .args(args)
        .env("TMPDIR", dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("renkei-bench starts");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for renkei-bench") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("renkei-bench {args:?} ran past 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "renkei-bench {args:?} failed: {status}");
    serde_json::from_str(&std::fs::read_to_string(&json).expect("the report")).expect("a JSON report")
}

fn counter(report: &Value, name: &str) -> u64 {
    report["counters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c[0] == name))
        .and_then(|c| c[1].as_u64())
        .unwrap_or_else(|| panic!("no counter {name:?} in {report}"))
}

#[test]
fn history_loads_posts_into_every_group_and_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let report =
        bench(dir.path(), &["history", "--steps", "0,3000", "--groups", "30", "--reads-only", "--missed", "200"]);
    let steps = report["curve"].as_array().expect("a curve");
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["loaded_posts"], 0);
    assert_eq!(steps[1]["loaded_posts"], 3000);
    // The first step's runs stored the template's post and three resumes of 200; the loader added its own.
    let (before, after) = (steps[0]["stored_posts"].as_u64().unwrap(), steps[1]["stored_posts"].as_u64().unwrap());
    assert_eq!(after, before + 600 + 3000, "{steps:?}");
    assert!(steps[1]["database_bytes"].as_u64().unwrap() > steps[0]["database_bytes"].as_u64().unwrap());
    for step in steps {
        assert!(step["history_page_ms"].as_f64().unwrap() > 0.0, "{step}");
        assert!(step["resume_ms"].as_f64().unwrap() > 0.0, "{step}");
    }
}

#[test]
fn fanout_delivers_every_community_post_to_every_other_member() {
    let dir = tempfile::tempdir().unwrap();
    let args =
        ["fanout", "--members", "20", "--rate", "10", "--patient-rate", "10", "--duration", "2", "--warmup", "1"];
    let report = bench(dir.path(), &args);
    assert_eq!(counter(&report, "community posts sent (measured)"), 20);
    assert_eq!(counter(&report, "posts sent (measured)"), 40);
    // 20 community posts to 19 others, 20 patient posts to the 7 others of their group of 8.
    assert_eq!(counter(&report, "deliveries expected"), 20 * 19 + 20 * 7);
    assert_eq!(counter(&report, "deliveries received"), counter(&report, "deliveries expected"));
    assert_eq!(counter(&report, "error frames"), 0);
    let p99 = report["figures"].as_array().unwrap().iter().find(|f| f["name"] == "community post→delivery p99");
    assert!(p99.and_then(|f| f["value"].as_f64()).is_some_and(f64::is_finite), "{report}");
}

#[test]
fn light_concurrency_runs_sixteen_posters_one_post_each() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["throughput", "--concurrency", "16", "--in-flight", "1", "--duration", "2", "--warmup", "1"];
    let report = bench(dir.path(), &args);
    assert_eq!(report["parameters"]["groups"], 16);
    assert_eq!(report["parameters"]["window"], 1);
    assert!(counter(&report, "posts acknowledged (measured)") > 0, "{report}");
    assert_eq!(counter(&report, "error frames"), 0);
}
