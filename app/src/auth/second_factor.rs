//! The staff's second factor in HTML (S5): enrolment with a QR code for a
//! phone's authenticator app, and the code asked once per session before
//! any staff page. A staff page refused for the lack of it sends the
//! browser here (`error::SECOND_FACTOR_PAGE`).
use std::collections::BTreeMap;

use rocket::http::Status;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::StaffSigningIn;
use crate::body::NoFields;
use crate::error::{AppError, AppResult, SECOND_FACTOR_PAGE};
use crate::web::{Chrome, Page, PageForm, PageResponse, SignedIn};
use crate::AppState;

#[derive(Serialize)]
struct SecondFactorPage {
    #[serde(flatten)]
    chrome: Chrome,
    enrolled: bool,
    verified: bool,
    /// Shown once, right after enrolment starts.
    setup: Option<super::totp::TotpSetup>,
    qr_svg: Option<String>,
    errors: BTreeMap<String, String>,
}

async fn render_second_factor(
    state: &AppState,
    page: &Page<impl SignedIn>,
    setup: Option<super::totp::TotpSetup>,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    let user = page.caller.user();
    let status = super::totp::status(state, user).await?;
    let qr_svg = setup.as_ref().and_then(|s| qr_svg(&s.otpauth_url));
    Ok(Template::render(
        "staff/second_factor",
        SecondFactorPage {
            chrome: page.chrome(SECOND_FACTOR_PAGE),
            enrolled: status.enrolled,
            verified: status.verified,
            setup,
            qr_svg,
            errors,
        },
    ))
}

/// The enrolment URI as an SVG QR code for a phone's authenticator app.
fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build();
    // Inline in the page: drop the XML prologue, name the picture for screen readers.
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen("<svg", "<svg role=\"img\" aria-labelledby=\"qr-label\"", 1))
}

#[rocket::get("/staff/second-factor")]
pub async fn second_factor(page: Page<StaffSigningIn>, state: &State<AppState>) -> AppResult<Template> {
    render_second_factor(state, &page, None, BTreeMap::new()).await
}

#[rocket::post("/staff/second-factor/setup", data = "<_token>")]
pub async fn second_factor_setup(
    _token: PageForm<NoFields>,
    page: Page<StaffSigningIn>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    match super::totp::setup(state, &page.caller).await {
        Ok(setup) => Ok(PageResponse::page(render_second_factor(state, &page, Some(setup), BTreeMap::new()).await?)),
        Err(AppError::Conflict(_)) => Ok(PageResponse::redirect(SECOND_FACTOR_PAGE)),
        Err(e) => Err(e),
    }
}

#[derive(rocket::FromForm)]
pub struct CodeForm {
    code: String,
}

#[rocket::post("/staff/second-factor", data = "<form>")]
pub async fn second_factor_verify(
    form: PageForm<CodeForm>,
    page: Page<StaffSigningIn>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    match super::totp::verify(state, &page.caller, &form.code).await {
        Ok(()) => Ok(PageResponse::redirect("/review")),
        Err(e @ AppError::Invalid(_)) => {
            let view = render_second_factor(state, &page, None, e.field_messages(page.lang)).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, view))
        }
        Err(AppError::WrongState(_)) => Ok(PageResponse::redirect(SECOND_FACTOR_PAGE)),
        Err(e) => Err(e),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![second_factor, second_factor_setup, second_factor_verify]
}
