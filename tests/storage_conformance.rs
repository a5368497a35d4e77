//! The storage contract ([`berth::storage::conformance`]) against every backend: the local
//! filesystem, and S3 on a fresh bucket of a real Garage (the one `tests/run-all.sh`
//! installs; without it the S3 test fails and says so).

mod common;

use berth::storage::conformance;
use berth::storage::fs::FsStorage;
use common::s3::Garage;

#[test]
fn the_filesystem_backend_meets_the_contract() {
    let root = tempfile::tempdir().unwrap();
    conformance::run(&FsStorage::open(root.path()).unwrap());
}

#[test]
fn the_s3_backend_meets_the_contract() {
    let bucket = Garage::shared().bucket();
    conformance::run(&bucket.storage("/conformance"));
}

#[test]
fn the_s3_backend_meets_the_contract_without_a_root_prefix() {
    let bucket = Garage::shared().bucket();
    conformance::run(&bucket.storage(""));
}
