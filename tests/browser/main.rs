//! The browser suite: every journey of the product driven in headless
//! Chromium as a person drives it, against the release binary.
//!
//! Run it alone with `bash .ci/browser` (installs Chromium, ChromeDriver and
//! axe-core when missing, builds the release binary, starts PostgreSQL).
//! The tests are `#[ignore]`d in a plain `cargo test`, which has no browser.
mod claimant;
mod harness;
mod staff;

use app::i18n::Lang;
use claimant::Hands;
use harness::Backends;

const NEEDS: &str = "needs Chromium, ChromeDriver, axe-core and the release binary: run bash .ci/browser";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, ChromeDriver, axe-core and the release binary: run bash .ci/browser"]
async fn a_parent_joins_for_herself_and_her_child_from_a_phone_in_japanese() {
    claimant::journey(Lang::Ja, Hands::Touch, Backends::default(), "claimant-ja").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, ChromeDriver, axe-core and the release binary: run bash .ci/browser"]
async fn a_parent_joins_in_english_with_the_keyboard_alone() {
    claimant::journey(Lang::En, Hands::KeyboardOnly, Backends::default(), "claimant-en-keyboard").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, ChromeDriver, axe-core and the release binary: run bash .ci/browser"]
async fn a_parent_joins_on_postgresql_with_the_s3_store() {
    let server = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| panic!("TEST_DATABASE_URL: {NEEDS}"));
    let scratch = tempfile::tempdir().unwrap();
    let (database_url, _) = portal::fresh_database_at(Some(&server), scratch.path()).await;
    let s3 = portal::S3Server::start().await;
    let backends = Backends {
        database_url: Some(database_url),
        s3: Some(vec![
            ("APP_EVIDENCE_STORE".into(), "s3".into()),
            ("APP_S3_ENDPOINT".into(), s3.endpoint.clone()),
            ("APP_S3_BUCKET".into(), "evidence".into()),
            ("APP_S3_ACCESS_KEY_ID".into(), portal::S3_ACCESS_KEY.into()),
            ("APP_S3_SECRET_ACCESS_KEY".into(), portal::S3_SECRET_KEY.into()),
        ]),
    };
    claimant::journey(Lang::Ja, Hands::Touch, backends, "claimant-postgres-s3").await;
    assert!(s3.object_files().len() >= 2, "the photos went to the S3 store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, ChromeDriver, axe-core and the release binary: run bash .ci/browser"]
async fn a_lawyer_asks_for_more_the_claimant_cures_and_the_lawyer_verifies() {
    staff::lawyer_journey().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, ChromeDriver, axe-core and the release binary: run bash .ci/browser"]
async fn an_administrator_takes_a_verified_claim_through_a_round_to_the_bundle() {
    staff::administrator_journey().await;
}
