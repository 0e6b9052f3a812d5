//! Backups of the SQLite database taken under write load restore to a consistent database whose audit
//! chain verifies; generations are kept; a restore is refused while a server uses the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use renkei_tests::care::update;
use renkei_tests::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_to_a_consistent_database() {
    let mut app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let team = app.team().await;
    // A shared document, before the load: the restore must give it back byte for byte.
    let document = b"%PDF-1.4\n% renkei backup check\n%%EOF\n".to_vec();
    let file = team.nurse.upload_attachment(team.group, "plan.pdf", document.clone(), None).await.unwrap();
    let mut shared = update("ケアプランです", "plan-1");
    shared.attachments = vec![file.id];
    team.nurse.post(team.group, &shared).await.unwrap();
    // Write load: the nurse posts as fast as the server takes it until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (nurse, group, stop) = (team.nurse.clone(), team.group, stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                nurse.post(group, &update(&format!("バイタル {i}"), &format!("load-{i}"))).await.unwrap();
                i += 1;
            }
            i
        })
    };
    let backups = app.dir.path().join("backups");
    let mut files = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        files.push(renkei_server::admin_cli::backup(&app.config, &backups, 3).await.unwrap());
    }
    // The database is in use: restoring over it is refused.
    let refused = renkei_server::admin_cli::restore(&app.config, &files[3]).await.unwrap_err();
    assert!(refused.to_string().contains("in use"), "{refused}");
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 0);
    let kept: Vec<_> = std::fs::read_dir(&backups).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(kept.len(), 3, "generations kept: {kept:?}");
    assert!(!files[0].exists() && files[3].exists());

    app.stop_server().await;
    let entries = renkei_server::admin_cli::restore(&app.config, &files[3]).await.unwrap();
    assert!(entries > 0);
    // The restored database: sound, audit chain intact, posts gap-free up to the group's last number.
    let store = app.store().await;
    assert!(store.integrity_ok().await.unwrap());
    assert!(renkei_server::audit::verify(&store, None).await.unwrap().is_ok());
    // The operator's acts are in the log: the restore, last, naming the backup it came from.
    let log =
        store.audit_entries(&renkei_server::store::AuditFilter { limit: 100_000, ..Default::default() }).await.unwrap();
    let restored: Vec<_> = log.iter().filter(|e| e.action == "database_restored").collect();
    assert_eq!(restored.len(), 1);
    let name = files[3].file_name().unwrap().to_str().unwrap();
    assert!(restored[0].details.to_string().contains(name), "{:?}", restored[0]);
    // The backups taken before files[3] was are in the copy's own log.
    assert_eq!(log.iter().filter(|e| e.action == "backup_created").count(), 3);
    let last = store.last_seq(team.group).await.unwrap();
    let posts = store.posts_page(team.group, Some(0), None, 100_000).await.unwrap();
    assert_eq!(posts.iter().map(|p| p.seq).collect::<Vec<_>>(), (1..=last).collect::<Vec<_>>());
    assert!(last <= written as i64 + 1, "the backup holds no post that was never written");
    assert_eq!(posts[0].attachments.first().map(|a| a.id), Some(file.id));
    assert_eq!(store.attachment_bytes(file.id, false).await.unwrap(), Some(document));
    store.close().await;
}

/// Patient data is never readable by other users of the machine: a data directory found open to others
/// is tightened to 0700 at start; the database, its journal and lock files, and every backup are 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_data_files_are_readable_by_the_service_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = data.clone();
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, move |c| {
        c.database_url = None;
        c.data_dir = data_dir;
    })
    .await
    else {
        return;
    };
    let team = app.team().await;
    team.nurse.post(team.group, &renkei_tests::care::update("訪問しました", "perm-1")).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    for file in ["renkei.sqlite3", "renkei.sqlite3-wal", "renkei.sqlite3-shm", "renkei.lock"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let backups = root.path().join("backups");
    let file = renkei_server::admin_cli::backup(&app.config, &backups, 3).await.unwrap();
    assert_eq!((mode(&backups), mode(&file)), (0o700, 0o600));
    app.stop().await;
}
