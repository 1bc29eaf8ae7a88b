//! `GET /api/v1/openapi.json`: the API contract, kept in `openapi.json`
//! beside this file. A test checks that every mounted API route is in it.
use rocket::http::ContentType;

pub const DOCUMENT: &str = include_str!("openapi.json");

#[rocket::get("/openapi.json")]
fn document() -> (ContentType, &'static str) {
    (ContentType::JSON, DOCUMENT)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![document]
}
