//! The example configuration in `deploy/` parses, and shows exactly the defaults.

use renkei_server::Config;

#[test]
fn the_example_configuration_is_valid_and_shows_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/renkei.example.toml");
    let config = Config::load_from(Some(&path), Vec::new()).expect("example parses");
    assert_eq!(config, Config::default());
}
