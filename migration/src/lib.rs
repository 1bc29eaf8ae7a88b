//! The schema's only source of truth. Each migration has a real `down`.
//! Seed data for shipped cases lives in the app (`app::cases::seed`), not here.
pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_accounts;
mod m20261121_000002_create_cases_and_claims;
mod m20261121_000003_create_audit_log;
mod m20261121_000004_create_evidence;
mod m20261121_000005_consent_and_data_rights;
mod m20261121_000006_roster;
mod m20261121_000007_staff_second_factor;
mod m20261121_000008_review_desk;
mod m20261121_000009_filing_rounds;
mod m20261121_000010_exports;
mod m20261122_000011_roster_keys;
mod m20261122_000012_one_signature_each;
mod m20261202_000013_approximate_dates;
mod m20261202_000014_jobs_and_mail;
mod m20261202_000015_email_verification;
mod m20261202_000016_account_lifecycle;
mod m20261202_000017_audit_tree;
mod m20261203_000018_session_changes;
mod m20261203_000019_claim_documents;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_accounts::Migration),
            Box::new(m20261121_000002_create_cases_and_claims::Migration),
            Box::new(m20261121_000003_create_audit_log::Migration),
            Box::new(m20261121_000004_create_evidence::Migration),
            Box::new(m20261121_000005_consent_and_data_rights::Migration),
            Box::new(m20261121_000006_roster::Migration),
            Box::new(m20261121_000007_staff_second_factor::Migration),
            Box::new(m20261121_000008_review_desk::Migration),
            Box::new(m20261121_000009_filing_rounds::Migration),
            Box::new(m20261121_000010_exports::Migration),
            Box::new(m20261122_000011_roster_keys::Migration),
            Box::new(m20261122_000012_one_signature_each::Migration),
            Box::new(m20261202_000013_approximate_dates::Migration),
            Box::new(m20261202_000014_jobs_and_mail::Migration),
            Box::new(m20261202_000015_email_verification::Migration),
            Box::new(m20261202_000016_account_lifecycle::Migration),
            Box::new(m20261202_000017_audit_tree::Migration),
            Box::new(m20261203_000018_session_changes::Migration),
            Box::new(m20261203_000019_claim_documents::Migration),
        ]
    }
}
