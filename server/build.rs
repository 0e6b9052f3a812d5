//! Rebuild when a migration is added or changed (`sqlx::migrate!` embeds the folders at compile time), and
//! when the web client's built bundle changes (`rust-embed` embeds `web/dist`).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../web/dist");
}
