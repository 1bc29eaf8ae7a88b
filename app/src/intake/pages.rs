//! The claimant's pages: home, the multi-step claim form with
//! save-and-resume, review and submission, and the status page. Each step
//! saves what is valid and re-renders with the typed values and field
//! errors otherwise (Post/Redirect/Get on success).
use std::collections::BTreeMap;

use crate::body::FormBody;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::{json, Value};

use super::domain::{
    AddressInput, Draft, Gender, HarmInput, HarmKind, LeakInput, PersonInput, Relation, MAX_HARMS, MAX_PERSONS,
};
use super::service::{self, ClaimDetail};
use crate::auth::{ClaimantUser, Csrf, CurrentUser, MaybeUser};
use crate::cases::service::{Case, CaseView};
use crate::domain::{Email, ErrorCode, FieldErrors, Phone, PREFECTURES};
use crate::error::{translate_fields, AppError, AppResult};
use crate::i18n::Lang;
use crate::web::{Chrome, PageResponse};
use crate::{parse_id, AppState};

/// The form's steps, in order.
pub const STEPS: [&str; 8] = ["identity", "contact", "household", "leak", "harms", "evidence", "consent", "review"];

/// Steps that stay open after submission: correcting one's identity and
/// contact details (re-verification is flagged), and signing again.
const OPEN_AFTER_SUBMISSION: [&str; 4] = ["identity", "contact", "household", "consent"];

type PageResult = AppResult<PageResponse>;

#[derive(Serialize)]
struct StepLink {
    key: &'static str,
    number: usize,
    current: bool,
}

#[derive(Serialize)]
struct ClaimPage {
    #[serde(flatten)]
    chrome: Chrome,
    claim: ClaimDetail,
    case: CaseView,
    step: &'static str,
    steps: Vec<StepLink>,
    next_step: Option<&'static str>,
    values: Value,
    errors: BTreeMap<String, String>,
    choices: Value,
    /// Uploaded files, on the evidence step.
    evidence: Vec<crate::evidence::service::EvidenceView>,
    max_evidence_mib: u64,
    /// Documents, signatures and what joining means in yen, on the consent step.
    consent: Option<crate::consent::pages::ConsentStep>,
}

fn choices() -> Value {
    json!({
        "relations": Relation::ALL.iter().filter(|r| **r != Relation::Myself).map(|r| r.as_str()).collect::<Vec<_>>(),
        "genders": Gender::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "harm_kinds": HarmKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "prefectures": PREFECTURES.to_vec(),
        "max_persons": MAX_PERSONS,
        "max_harms": MAX_HARMS,
    })
}

/// The values a step's inputs show: what is saved, or what was just typed.
fn saved_values(step: &str, draft: &Draft) -> Value {
    match step {
        "identity" => draft
            .claimant()
            .map(|p| serde_json::to_value(PersonInput::from_person(p)).unwrap_or_default())
            .unwrap_or_else(|| json!({})),
        "contact" => {
            let mut v = draft
                .address
                .as_ref()
                .map(|a| serde_json::to_value(AddressInput::from_address(a)).unwrap_or_default())
                .unwrap_or_else(|| json!({}));
            v["phone"] = json!(draft.phone.as_ref().map(|p| p.digits().to_string()).unwrap_or_default());
            v["email"] = json!(draft.email.as_ref().map(|e| e.as_str().to_string()).unwrap_or_default());
            v
        }
        "leak" => json!({
            "leaked_items": draft.leaked_items,
            "services": draft.services,
            "apology_letter_received": draft.apology_letter_received.map(|b| if b { "yes" } else { "no" }),
            "registration_code": draft.registration_code.as_ref().map(|c| c.as_str().to_string()).unwrap_or_default(),
            "apology_option": draft.apology_option,
            "learned_of_leak_on": draft.learned_of_leak_on.map(|d| d.as_input()).unwrap_or_default(),
        }),
        _ => json!({}),
    }
}

/// Render a step of one of the caller's claims from what is saved.
pub async fn render_claim_step(
    state: &AppState,
    lang: Lang,
    csrf: &Csrf,
    user: &CurrentUser,
    id: uuid::Uuid,
    step: &'static str,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    render_claim_step_with(state, lang, csrf, user, id, step, None, errors).await
}

/// Render a step with what was typed (`values`) and field errors.
#[allow(clippy::too_many_arguments)]
pub async fn render_claim_step_with(
    state: &AppState,
    lang: Lang,
    csrf: &Csrf,
    user: &CurrentUser,
    id: uuid::Uuid,
    step: &'static str,
    values: Option<Value>,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    let (claim, case) = service::get_own(state, user, id).await?;
    let evidence = step_evidence(state, user, step, id).await?;
    let consent = match step {
        "consent" => Some(crate::consent::pages::consent_step(state, user, &claim, &case).await?),
        _ => None,
    };
    let data = StepData { claim, case: &case, step, values, errors, evidence, consent };
    Ok(render_step(lang, csrf, user, data, state))
}

async fn step_evidence(
    state: &AppState,
    user: &CurrentUser,
    step: &str,
    id: uuid::Uuid,
) -> AppResult<Vec<crate::evidence::service::EvidenceView>> {
    if step == "evidence" || step == "review" {
        crate::evidence::service::list(state, user, id).await
    } else {
        Ok(vec![])
    }
}

/// What one step page shows.
struct StepData<'a> {
    claim: ClaimDetail,
    case: &'a Case,
    step: &'static str,
    values: Option<Value>,
    errors: BTreeMap<String, String>,
    evidence: Vec<crate::evidence::service::EvidenceView>,
    consent: Option<crate::consent::pages::ConsentStep>,
}

fn render_step(lang: Lang, csrf: &Csrf, user: &CurrentUser, data: StepData<'_>, state: &AppState) -> Template {
    let StepData { claim, case, step, values, errors, evidence, consent } = data;
    let index = STEPS.iter().position(|s| *s == step).unwrap_or(0);
    let values = values.unwrap_or_else(|| saved_values(step, &claim.draft));
    let here = format!("/claims/{}/{}", claim.summary.id, step);
    Template::render(
        format!("claims/{step}"),
        ClaimPage {
            chrome: Chrome::new(lang, csrf, Some(user), here),
            case: CaseView::new(case, lang),
            steps: STEPS
                .iter()
                .enumerate()
                .map(|(i, key)| StepLink { key, number: i + 1, current: i == index })
                .collect(),
            next_step: STEPS.get(index + 1).copied(),
            claim,
            step,
            values,
            errors,
            choices: choices(),
            evidence,
            max_evidence_mib: state.settings.max_evidence_bytes / (1024 * 1024),
            consent,
        },
    )
}

/// Render a step again after refused input, keeping what was typed.
#[allow(clippy::too_many_arguments)]
async fn refused(
    state: &AppState,
    lang: Lang,
    csrf: &Csrf,
    user: &CurrentUser,
    id: uuid::Uuid,
    step: &'static str,
    typed: Value,
    err: AppError,
) -> PageResult {
    match err {
        AppError::Invalid(errors) => {
            let (claim, case) = service::get_own(state, user, id).await?;
            let data = StepData {
                claim,
                case: &case,
                step,
                values: Some(typed),
                errors: translate_fields(&errors, lang),
                evidence: vec![],
                consent: None,
            };
            Ok(PageResponse::from((Status::UnprocessableEntity, render_step(lang, csrf, user, data, state))))
        }
        AppError::WrongState(_) => Ok(PageResponse::redirect(format!("/claims/{id}"))),
        other => Err(other),
    }
}

fn next_after(step: &str, id: uuid::Uuid) -> String {
    let index = STEPS.iter().position(|s| *s == step).unwrap_or(0);
    let next = STEPS.get(index + 1).copied().unwrap_or("review");
    format!("/claims/{id}/{next}")
}

#[derive(Serialize)]
struct HomePage {
    #[serde(flatten)]
    chrome: Chrome,
    cases: Vec<CaseView>,
    claims: Vec<service::ClaimSummary>,
}

#[rocket::get("/")]
pub async fn home(lang: Lang, csrf: Csrf, user: MaybeUser, state: &State<AppState>) -> AppResult<Template> {
    let cases = crate::cases::service::open_cases(state.db.conn(), state.clock.today()).await?;
    let claims = match &user.0 {
        Some(u) if u.role == crate::auth::Role::Claimant => service::list_own(state, u).await?,
        _ => vec![],
    };
    Ok(Template::render(
        "home/index",
        HomePage {
            chrome: Chrome::new(lang, &csrf, user.0.as_ref(), "/"),
            cases: cases.iter().map(|c| CaseView::new(c, lang)).collect(),
            claims,
        },
    ))
}

#[derive(rocket::FromForm)]
pub struct StartForm {
    csrf: String,
    case: String,
}

#[rocket::post("/claims", data = "<form>")]
pub async fn start(
    form: FormBody<StartForm>,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
    csrf.verify(&form.csrf)?;
    match service::create_claim(state, &user, &form.case).await {
        Ok(claim) => Ok(Redirect::to(format!("/claims/{}/identity", claim.id))),
        // A double-click or a second visit resumes the existing claim.
        Err(AppError::Conflict("claim_exists")) => {
            let case = crate::cases::service::by_slug(state.db.conn(), &form.case).await?;
            let claims = service::list_own(state, &user).await?;
            let existing = claims.into_iter().find(|c| c.case == case.model.slug).ok_or(AppError::NotFound)?;
            Ok(Redirect::to(format!("/claims/{}", existing.id)))
        }
        Err(e) => Err(e),
    }
}

#[derive(Serialize)]
struct StatusPage {
    #[serde(flatten)]
    chrome: Chrome,
    claim: ClaimDetail,
    case: CaseView,
    first_step: &'static str,
    submitted_at_jst: Option<String>,
    /// The mail about this claim, newest first, in words.
    mail: Vec<MailRow>,
}

#[derive(Serialize)]
struct MailRow {
    at_jst: String,
    what: String,
    sent: bool,
}

#[rocket::get("/claims/<id>")]
pub async fn status(
    id: &str,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<Template> {
    let (claim, case) = service::get_own(state, &user, parse_id(id)?).await?;
    let here = format!("/claims/{}", claim.summary.id);
    let mail = crate::mail::about_claim(state.db.conn(), user.id, claim.summary.id)
        .await?
        .into_iter()
        .map(|line| MailRow {
            at_jst: crate::web::format_jst(line.sent_at.unwrap_or(line.queued_at)),
            what: lang.t(&format!("mail-kind-{}", line.kind.replace(['.', '_'], "-"))),
            sent: line.sent_at.is_some(),
        })
        .collect();
    Ok(Template::render(
        "claims/status",
        StatusPage {
            mail,
            chrome: Chrome::new(lang, &csrf, Some(&user), here),
            case: CaseView::new(&case, lang),
            submitted_at_jst: claim.summary.submitted_at.map(crate::web::format_jst),
            claim,
            first_step: STEPS[0],
        },
    ))
}

#[rocket::get("/claims/<id>/<step>", rank = 2)]
pub async fn show_step(
    id: &str,
    step: &str,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let step = STEPS.iter().copied().find(|s| *s == step).ok_or(AppError::NotFound)?;
    let id = parse_id(id)?;
    let (claim, _) = service::get_own(state, &user, id).await?;
    let open = claim.summary.status.is_editable()
        || (claim.summary.status.is_correctable() && OPEN_AFTER_SUBMISSION.contains(&step));
    if !open {
        return Ok(PageResponse::redirect(format!("/claims/{}", claim.summary.id)));
    }
    Ok(PageResponse::page(render_claim_step(state, lang, &csrf, &user, id, step, BTreeMap::new()).await?))
}

#[derive(rocket::FromForm, Serialize)]
pub struct IdentityForm {
    #[serde(skip)]
    csrf: String,
    family_name: String,
    given_name: String,
    family_name_kana: String,
    given_name_kana: String,
    birth_date: String,
    gender: String,
}

#[rocket::post("/claims/<id>/identity", data = "<form>")]
pub async fn save_identity(
    id: &str,
    form: FormBody<IdentityForm>,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> PageResult {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    let input = PersonInput {
        relation: Relation::Myself.as_str().into(),
        family_name: form.family_name.clone(),
        given_name: form.given_name.clone(),
        family_name_kana: form.family_name_kana.clone(),
        given_name_kana: form.given_name_kana.clone(),
        birth_date: form.birth_date.clone(),
        gender: form.gender.clone(),
    };
    let result = service::update_draft(state, &user, id, "identity", |draft, _| {
        let mut errors = FieldErrors::new();
        let person = input.parse("", state.clock.today(), &mut errors);
        let person = person.ok_or(errors)?;
        match draft.persons.iter().position(|p| p.relation == Relation::Myself) {
            Some(i) => draft.persons[i] = person,
            None => draft.persons.insert(0, person),
        }
        Ok(())
    })
    .await;
    match result {
        Ok(_) => Ok(PageResponse::redirect(next_after("identity", id))),
        Err(e) => refused(state, lang, &csrf, &user, id, "identity", json!(&*form), e).await,
    }
}

#[derive(rocket::FromForm, Serialize)]
pub struct ContactForm {
    #[serde(skip)]
    csrf: String,
    postal_code: String,
    prefecture: String,
    city: String,
    line1: String,
    line2: String,
    phone: String,
    email: String,
}

#[rocket::post("/claims/<id>/contact", data = "<form>")]
pub async fn save_contact(
    id: &str,
    form: FormBody<ContactForm>,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> PageResult {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    let address = AddressInput {
        postal_code: form.postal_code.clone(),
        prefecture: form.prefecture.clone(),
        city: form.city.clone(),
        line1: form.line1.clone(),
        line2: form.line2.clone(),
    };
    let result = service::update_draft(state, &user, id, "contact", |draft, _| {
        let mut errors = FieldErrors::new();
        let parsed = address.parse(&mut errors);
        let phone = errors.check("phone", Phone::parse(&form.phone));
        let email = errors.optional("email", Some(&form.email), Email::parse);
        if !errors.is_empty() {
            return Err(errors);
        }
        draft.address = parsed;
        draft.phone = phone;
        draft.email = email;
        Ok(())
    })
    .await;
    match result {
        Ok(_) => Ok(PageResponse::redirect(next_after("contact", id))),
        Err(e) => refused(state, lang, &csrf, &user, id, "contact", json!(&*form), e).await,
    }
}

#[derive(rocket::FromForm, Serialize)]
pub struct PersonForm {
    #[serde(skip)]
    csrf: String,
    relation: String,
    family_name: String,
    given_name: String,
    family_name_kana: String,
    given_name_kana: String,
    birth_date: String,
    gender: String,
}

#[rocket::post("/claims/<id>/household", data = "<form>")]
pub async fn add_person(
    id: &str,
    form: FormBody<PersonForm>,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> PageResult {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    let input = PersonInput {
        relation: form.relation.clone(),
        family_name: form.family_name.clone(),
        given_name: form.given_name.clone(),
        family_name_kana: form.family_name_kana.clone(),
        given_name_kana: form.given_name_kana.clone(),
        birth_date: form.birth_date.clone(),
        gender: form.gender.clone(),
    };
    let result = service::update_draft(state, &user, id, "household", |draft, _| {
        let mut errors = FieldErrors::new();
        if form.relation.trim() == Relation::Myself.as_str() {
            errors.add("relation", ErrorCode::Choice);
        }
        if draft.persons.len() >= MAX_PERSONS {
            errors.add("relation", ErrorCode::TooMany);
        }
        let person = input.parse("", state.clock.today(), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        draft.persons.extend(person);
        Ok(())
    })
    .await;
    match result {
        Ok(_) => Ok(PageResponse::redirect(format!("/claims/{id}/household"))),
        Err(e) => refused(state, lang, &csrf, &user, id, "household", json!(&*form), e).await,
    }
}

#[derive(rocket::FromForm)]
pub struct CsrfForm {
    csrf: String,
}

#[rocket::post("/claims/<id>/household/<index>/remove", data = "<form>")]
pub async fn remove_person(
    id: &str,
    index: usize,
    form: FormBody<CsrfForm>,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    service::update_draft(state, &user, id, "household", |draft, _| {
        // The claimant (本人) is edited on the identity step, never removed here.
        if draft.persons.get(index).is_some_and(|p| p.relation != Relation::Myself) {
            draft.persons.remove(index);
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to(format!("/claims/{id}/household")))
}

#[derive(rocket::FromForm, Serialize)]
pub struct LeakForm {
    #[serde(skip)]
    csrf: String,
    leaked_items: Vec<String>,
    services: Vec<String>,
    apology_letter_received: Option<String>,
    registration_code: String,
    apology_option: Option<String>,
    learned_of_leak_on: String,
}

#[rocket::post("/claims/<id>/leak", data = "<form>")]
pub async fn save_leak(
    id: &str,
    form: FormBody<LeakForm>,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> PageResult {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    let received = match form.apology_letter_received.as_deref() {
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        None | Some("") => Ok(None),
        Some(_) => Err(ErrorCode::Choice),
    };
    let input = LeakInput {
        leaked_items: form.leaked_items.clone(),
        services: form.services.clone(),
        apology_letter_received: received.unwrap_or(None),
        registration_code: Some(form.registration_code.clone()),
        apology_option: form.apology_option.clone(),
        learned_of_leak_on: Some(form.learned_of_leak_on.clone()),
    };
    let result = service::update_draft(state, &user, id, "leak", |draft, case| {
        let mut errors = FieldErrors::new();
        errors.check("apology_letter_received", received);
        let answers = input.parse(&case.catalogue, state.clock.today(), &mut errors);
        let answers = match answers {
            Some(a) if errors.is_empty() => a,
            _ => return Err(errors),
        };
        draft.leaked_items = answers.leaked_items;
        draft.services = answers.services;
        draft.apology_letter_received = answers.apology_letter_received;
        draft.registration_code = answers.registration_code;
        draft.apology_option = answers.apology_option;
        draft.learned_of_leak_on = answers.learned_of_leak_on;
        Ok(())
    })
    .await;
    match result {
        Ok(_) => Ok(PageResponse::redirect(next_after("leak", id))),
        Err(e) => refused(state, lang, &csrf, &user, id, "leak", json!(&*form), e).await,
    }
}

#[derive(rocket::FromForm, Serialize)]
pub struct HarmForm {
    #[serde(skip)]
    csrf: String,
    kind: String,
    date: String,
    sender: String,
    note: String,
}

#[rocket::post("/claims/<id>/harms", data = "<form>")]
pub async fn add_harm(
    id: &str,
    form: FormBody<HarmForm>,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> PageResult {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    let input = HarmInput {
        kind: form.kind.clone(),
        date: form.date.clone(),
        sender: form.sender.clone(),
        note: form.note.clone(),
    };
    let result = service::update_draft(state, &user, id, "harms", |draft, case| {
        let mut errors = FieldErrors::new();
        if draft.harms.len() >= MAX_HARMS {
            errors.add("kind", ErrorCode::TooMany);
        }
        let harm = input.parse("", case.catalogue.harms_from(), state.clock.today(), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        draft.harms.extend(harm);
        Ok(())
    })
    .await;
    match result {
        Ok(_) => Ok(PageResponse::redirect(format!("/claims/{id}/harms"))),
        Err(e) => refused(state, lang, &csrf, &user, id, "harms", json!(&*form), e).await,
    }
}

#[rocket::post("/claims/<id>/harms/<index>/remove", data = "<form>")]
pub async fn remove_harm(
    id: &str,
    index: usize,
    form: FormBody<CsrfForm>,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    service::update_draft(state, &user, id, "harms", |draft, _| {
        if index < draft.harms.len() {
            draft.harms.remove(index);
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to(format!("/claims/{id}/harms")))
}

#[rocket::post("/claims/<id>/submit", data = "<form>")]
pub async fn submit(
    id: &str,
    form: FormBody<CsrfForm>,
    lang: Lang,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> PageResult {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    match service::submit(state, &user, id).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/claims/{id}"))),
        Err(AppError::Incomplete(missing)) => {
            let errors =
                missing.iter().map(|f| (f.clone(), lang.t(&crate::error::missing_message(f).message_key()))).collect();
            let page = render_claim_step(state, lang, &csrf, &user, id, "review", errors).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(AppError::WrongState(_)) => Ok(PageResponse::redirect(format!("/claims/{id}"))),
        Err(e) => Err(e),
    }
}

#[derive(rocket::FromForm)]
pub struct WithdrawForm {
    csrf: String,
    confirm: bool,
}

#[rocket::post("/claims/<id>/withdraw", data = "<form>")]
pub async fn withdraw(
    id: &str,
    form: FormBody<WithdrawForm>,
    csrf: Csrf,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
    csrf.verify(&form.csrf)?;
    let id = parse_id(id)?;
    if form.confirm {
        match service::withdraw(state, &user, id).await {
            Ok(_) | Err(AppError::WrongState(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Redirect::to(format!("/claims/{id}")))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        home,
        start,
        status,
        show_step,
        save_identity,
        save_contact,
        add_person,
        remove_person,
        save_leak,
        add_harm,
        remove_harm,
        submit,
        withdraw
    ]
}
