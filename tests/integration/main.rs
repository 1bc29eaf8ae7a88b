//! One integration-test binary: every test starts the real application with
//! its own database and talks to it over HTTP.
mod access_matrix;
mod accounts;
mod audit_log;
mod consent;
mod crash;
mod data_rights;
mod evidence;
mod evidence_s3;
mod exports;
mod intake_api;
mod intake_pages;
mod labels;
mod logs;
mod protection;
mod review;
mod roster;
mod rounds;
mod second_factor;
