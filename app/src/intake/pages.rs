//! The claimant's pages: home, the multi-step claim form with
//! save-and-resume, review and submission, and the status page. Each step
//! saves what is valid and re-renders with the typed values and field
//! errors otherwise (Post/Redirect/Get on success).
use crate::body::NoFields;
use std::collections::BTreeMap;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::{json, Value};

use super::service::{self, ClaimDetail};
use crate::auth::{ClaimantUser, CurrentUser, MaybeUser};
use crate::cases::service::{Case, CaseView};
use crate::claims::domain::{
    AddressInput, Draft, Gender, HarmInput, HarmKind, LeakInput, PersonInput, Relation, MAX_HARMS, MAX_PERSONS,
};
use crate::domain::{Email, ErrorCode, FieldErrors, Phone, PREFECTURES};
use crate::error::{translate_fields, AppError, AppResult};
use crate::web::{Chrome, Page, PageForm, PageResponse};
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
    page: &Page<ClaimantUser>,
    id: uuid::Uuid,
    step: &'static str,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    render_claim_step_with(state, page, id, step, None, errors).await
}

/// Render a step with what was typed (`values`) and field errors.
pub async fn render_claim_step_with(
    state: &AppState,
    page: &Page<ClaimantUser>,
    id: uuid::Uuid,
    step: &'static str,
    values: Option<Value>,
    errors: BTreeMap<String, String>,
) -> AppResult<Template> {
    let user = &page.caller;
    let (claim, case) = service::get_own(state, user, id).await?;
    let evidence = step_evidence(state, user, step, id).await?;
    let consent = match step {
        "consent" => Some(crate::consent::pages::consent_step(state, user, &claim, &case).await?),
        _ => None,
    };
    let data = StepData { claim, case: &case, step, values, errors, evidence, consent };
    Ok(render_step(page, data, state))
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

fn render_step(page: &Page<ClaimantUser>, data: StepData<'_>, state: &AppState) -> Template {
    let StepData { claim, case, step, values, errors, evidence, consent } = data;
    let index = STEPS.iter().position(|s| *s == step).unwrap_or(0);
    let values = values.unwrap_or_else(|| saved_values(step, &claim.draft));
    let here = format!("/claims/{}/{}", claim.summary.id, step);
    Template::render(
        format!("claims/{step}"),
        ClaimPage {
            chrome: page.chrome(here),
            case: CaseView::new(case, page.lang),
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
async fn refused(
    state: &AppState,
    page: &Page<ClaimantUser>,
    id: uuid::Uuid,
    step: &'static str,
    typed: Value,
    err: AppError,
) -> PageResult {
    match err {
        AppError::Invalid(errors) => {
            let (claim, case) = service::get_own(state, &page.caller, id).await?;
            let data = StepData {
                claim,
                case: &case,
                step,
                values: Some(typed),
                errors: translate_fields(&errors, page.lang),
                evidence: vec![],
                consent: None,
            };
            Ok(PageResponse::from((Status::UnprocessableEntity, render_step(page, data, state))))
        }
        AppError::WrongState(_) => Ok(PageResponse::redirect(format!("/claims/{id}"))),
        other => Err(other),
    }
}

/// Save one step: `edit` changes the draft (the service retries it when
/// the claim changed underneath); then go to `then`, or show the step again
/// with what was typed and why it was refused.
async fn save_step<F>(
    state: &AppState,
    page: &Page<ClaimantUser>,
    id: uuid::Uuid,
    step: &'static str,
    typed: Value,
    then: String,
    edit: F,
) -> PageResult
where
    F: Fn(&mut Draft, &Case) -> Result<(), FieldErrors>,
{
    match service::update_draft(state, &page.caller, id, step, edit).await {
        Ok(_) => Ok(PageResponse::redirect(then)),
        Err(e) => refused(state, page, id, step, typed, e).await,
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
    claims: Vec<crate::claims::store::ClaimSummary>,
}

#[rocket::get("/")]
pub async fn home(page: Page<MaybeUser>, state: &State<AppState>) -> AppResult<Template> {
    let cases = crate::cases::service::open_cases(state.db.conn(), state.clock.today()).await?;
    let claims = match &page.caller.0 {
        Some(u) if u.role == crate::auth::Role::Claimant => service::list_own(state, u).await?,
        _ => vec![],
    };
    Ok(Template::render(
        "home/index",
        HomePage {
            chrome: page.chrome("/"),
            cases: cases.iter().map(|c| CaseView::new(c, page.lang)).collect(),
            claims,
        },
    ))
}

#[derive(rocket::FromForm)]
pub struct StartForm {
    case: String,
}

#[rocket::post("/claims", data = "<form>")]
pub async fn start(form: PageForm<StartForm>, user: ClaimantUser, state: &State<AppState>) -> AppResult<Redirect> {
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
pub async fn status(id: &str, page: Page<ClaimantUser>, state: &State<AppState>) -> AppResult<Template> {
    let (claim, case) = service::get_own(state, &page.caller, parse_id(id)?).await?;
    let here = format!("/claims/{}", claim.summary.id);
    let mail = crate::mail::about_claim(state.db.conn(), page.caller.id, claim.summary.id)
        .await?
        .into_iter()
        .map(|line| MailRow {
            at_jst: crate::web::format_jst(line.sent_at.unwrap_or(line.queued_at)),
            what: page.lang.t(&format!("mail-kind-{}", line.kind.replace(['.', '_'], "-"))),
            sent: line.sent_at.is_some(),
        })
        .collect();
    Ok(Template::render(
        "claims/status",
        StatusPage {
            mail,
            chrome: page.chrome(here),
            case: CaseView::new(&case, page.lang),
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
    page: Page<ClaimantUser>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let step = STEPS.iter().copied().find(|s| *s == step).ok_or(AppError::NotFound)?;
    let id = parse_id(id)?;
    let (claim, _) = service::get_own(state, &page.caller, id).await?;
    let open = claim.summary.status.is_editable()
        || (claim.summary.status.is_correctable() && OPEN_AFTER_SUBMISSION.contains(&step));
    if !open {
        return Ok(PageResponse::redirect(format!("/claims/{}", claim.summary.id)));
    }
    Ok(PageResponse::page(render_claim_step(state, &page, id, step, BTreeMap::new()).await?))
}

#[derive(rocket::FromForm, Serialize)]
pub struct IdentityForm {
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
    form: PageForm<IdentityForm>,
    page: Page<ClaimantUser>,
    state: &State<AppState>,
) -> PageResult {
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
    save_step(state, &page, id, "identity", json!(&*form), next_after("identity", id), |draft, _| {
        let mut errors = FieldErrors::new();
        let person = input.parse("", state.clock.today(), &mut errors);
        let person = person.ok_or(errors)?;
        match draft.persons.iter().position(|p| p.relation == Relation::Myself) {
            Some(i) => draft.persons[i] = person,
            None => draft.persons.insert(0, person),
        }
        Ok(())
    })
    .await
}

#[derive(rocket::FromForm, Serialize)]
pub struct ContactForm {
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
    form: PageForm<ContactForm>,
    page: Page<ClaimantUser>,
    state: &State<AppState>,
) -> PageResult {
    let id = parse_id(id)?;
    let address = AddressInput {
        postal_code: form.postal_code.clone(),
        prefecture: form.prefecture.clone(),
        city: form.city.clone(),
        line1: form.line1.clone(),
        line2: form.line2.clone(),
    };
    save_step(state, &page, id, "contact", json!(&*form), next_after("contact", id), |draft, _| {
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
    .await
}

#[derive(rocket::FromForm, Serialize)]
pub struct PersonForm {
    relation: String,
    family_name: String,
    given_name: String,
    family_name_kana: String,
    given_name_kana: String,
    birth_date: String,
    gender: String,
}

impl PersonForm {
    fn input(&self) -> PersonInput {
        PersonInput {
            relation: self.relation.clone(),
            family_name: self.family_name.clone(),
            given_name: self.given_name.clone(),
            family_name_kana: self.family_name_kana.clone(),
            given_name_kana: self.given_name_kana.clone(),
            birth_date: self.birth_date.clone(),
            gender: self.gender.clone(),
        }
    }
}

#[rocket::post("/claims/<id>/household", data = "<form>")]
pub async fn add_person(
    id: &str,
    form: PageForm<PersonForm>,
    page: Page<ClaimantUser>,
    state: &State<AppState>,
) -> PageResult {
    let id = parse_id(id)?;
    let input = form.input();
    save_step(state, &page, id, "household", json!(&*form), format!("/claims/{id}/household"), |draft, _| {
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
    .await
}

#[rocket::post("/claims/<id>/household/<index>/remove", data = "<_token>")]
pub async fn remove_person(
    id: &str,
    index: usize,
    _token: PageForm<NoFields>,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
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
    leaked_items: Vec<String>,
    services: Vec<String>,
    apology_letter_received: Option<String>,
    registration_code: String,
    apology_option: Option<String>,
    learned_of_leak_on: String,
}

impl LeakForm {
    /// The answers, and the apology letter's yes/no as read (a choice
    /// outside them is an error on its field).
    fn input(&self) -> (LeakInput, Result<Option<bool>, ErrorCode>) {
        let received = match self.apology_letter_received.as_deref() {
            Some("yes") => Ok(Some(true)),
            Some("no") => Ok(Some(false)),
            None | Some("") => Ok(None),
            Some(_) => Err(ErrorCode::Choice),
        };
        let input = LeakInput {
            leaked_items: self.leaked_items.clone(),
            services: self.services.clone(),
            apology_letter_received: received.unwrap_or(None),
            registration_code: Some(self.registration_code.clone()),
            apology_option: self.apology_option.clone(),
            learned_of_leak_on: Some(self.learned_of_leak_on.clone()),
        };
        (input, received)
    }
}

#[rocket::post("/claims/<id>/leak", data = "<form>")]
pub async fn save_leak(
    id: &str,
    form: PageForm<LeakForm>,
    page: Page<ClaimantUser>,
    state: &State<AppState>,
) -> PageResult {
    let id = parse_id(id)?;
    let (input, received) = form.input();
    save_step(state, &page, id, "leak", json!(&*form), next_after("leak", id), |draft, case| {
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
    .await
}

#[derive(rocket::FromForm, Serialize)]
pub struct HarmForm {
    kind: String,
    date: String,
    sender: String,
    note: String,
}

#[rocket::post("/claims/<id>/harms", data = "<form>")]
pub async fn add_harm(
    id: &str,
    form: PageForm<HarmForm>,
    page: Page<ClaimantUser>,
    state: &State<AppState>,
) -> PageResult {
    let id = parse_id(id)?;
    let input = HarmInput {
        kind: form.kind.clone(),
        date: form.date.clone(),
        sender: form.sender.clone(),
        note: form.note.clone(),
    };
    save_step(state, &page, id, "harms", json!(&*form), format!("/claims/{id}/harms"), |draft, case| {
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
    .await
}

#[rocket::post("/claims/<id>/harms/<index>/remove", data = "<_token>")]
pub async fn remove_harm(
    id: &str,
    index: usize,
    _token: PageForm<NoFields>,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
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

#[rocket::post("/claims/<id>/submit", data = "<_token>")]
pub async fn submit(
    id: &str,
    _token: PageForm<NoFields>,
    page: Page<ClaimantUser>,
    state: &State<AppState>,
) -> PageResult {
    let id = parse_id(id)?;
    match service::submit(state, &page.caller, id).await {
        Ok(_) => Ok(PageResponse::redirect(format!("/claims/{id}"))),
        Err(AppError::Incomplete(missing)) => {
            let errors = missing
                .iter()
                .map(|f| (f.clone(), page.lang.t(&crate::error::missing_message(f).message_key())))
                .collect();
            let page = render_claim_step(state, &page, id, "review", errors).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, page))
        }
        Err(AppError::WrongState(_)) => Ok(PageResponse::redirect(format!("/claims/{id}"))),
        Err(e) => Err(e),
    }
}

#[derive(rocket::FromForm)]
pub struct WithdrawForm {
    confirm: bool,
}

#[rocket::post("/claims/<id>/withdraw", data = "<form>")]
pub async fn withdraw(
    id: &str,
    form: PageForm<WithdrawForm>,
    user: ClaimantUser,
    state: &State<AppState>,
) -> AppResult<Redirect> {
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
