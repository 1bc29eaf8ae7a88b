use rocket::serde::json::Json;
use rocket::State;

use super::service::{self, CaseView};
use crate::error::AppResult;
use crate::i18n::Lang;
use crate::AppState;

/// Open cases, public: a claimant reads them before registering.
#[rocket::get("/cases")]
pub async fn list(state: &State<AppState>, lang: Lang) -> AppResult<Json<Vec<CaseView>>> {
    let cases = service::open_cases(state.db.conn(), state.clock.today()).await?;
    Ok(Json(cases.iter().map(|c| CaseView::new(c, lang)).collect()))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list]
}
