//! One integration-test binary: every test starts the real application with
//! its own database and talks to it over HTTP.
mod access_matrix;
mod accounts;
mod audit_log;
mod consent;
mod crash;
mod crash_jobs;
mod data_rights;
mod evidence;
mod evidence_s3;
mod exports;
mod intake_api;
mod intake_pages;
mod labels;
mod lifecycle;
mod logs;
mod mail;
mod protection;
mod reminders;
mod review;
mod roster;
mod rounds;
mod second_factor;
mod store;
