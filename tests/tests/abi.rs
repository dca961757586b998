//! The current WIT equals the frozen copy of its version: changing the plugin ABI requires a new
//! package version (and a new frozen copy), never a silent edit of a released one.

use weightlab_e2e::{abi_version, root};

#[test]
fn current_wit_matches_its_frozen_copy() {
    let current = std::fs::read_to_string(root().join("plugins/wit/weightlab.wit")).unwrap();
    let version = abi_version();
    let frozen = std::fs::read_to_string(root().join(format!("plugins/wit/frozen/{version}/weightlab.wit"))).unwrap_or_else(|_| panic!("no frozen copy of {version}"));
    assert_eq!(current, frozen, "plugins/wit/weightlab.wit changed but its version {version} did not");
}
