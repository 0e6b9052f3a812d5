//! Both dialects carry the same migration versions, in the same order, with the same names.

use renkei_server::store::{Backend, Store};

fn names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{}/../migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

#[test]
fn sqlite_and_postgres_migrations_have_the_same_versions() {
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"), "every migration lands in both dialects under the same name");
    assert_eq!(Store::migration_versions(Backend::Sqlite), Store::migration_versions(Backend::Postgres));
    assert_eq!(Store::migration_versions(Backend::Sqlite).len(), sqlite.len(), "the binary embeds every file");
}
