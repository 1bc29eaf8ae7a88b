//! Consent pages: the signing step of the claim form (with what joining
//! means in yen), the printable consent receipt, and the administrators'
//! page that publishes new versions.
use std::collections::BTreeMap;

use rocket::http::Status;
use rocket::State;
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::json;

use super::domain::{outcomes, DocumentInput, DocumentKind, FeeTermsInput, Outcome};
use super::service::{self, DocumentView, Signature, SigningContext};
use crate::auth::{AdminUser, ClaimantUser, CurrentUser, Role};
use crate::cases::service::{Case, CaseView};
use crate::error::{translate_fields, AppError, AppResult};
use crate::intake::pages::render_claim_step_with;
use crate::intake::service::ClaimDetail;
use crate::web::SignedIn;
use crate::web::{Chrome, Page, PageForm, PageResponse};
use crate::{parse_id, AppState};

/// What the consent step shows beside the claim's consent state.
#[derive(Serialize)]
pub struct ConsentStep {
    pub claimed_per_person_yen: Option<u64>,
    /// Net per person for each precedent award and for the amount claimed.
    pub outcomes: Vec<Outcome>,
    pub signatures: Vec<Signature>,
}

pub async fn consent_step(
    state: &AppState,
    user: &CurrentUser,
    claim: &ClaimDetail,
    case: &Case,
) -> AppResult<ConsentStep> {
    let signatures = service::own_signatures(state, user, claim.summary.id).await?;
    let terms = claim.consent.documents.iter().find_map(|d| d.document.fee_terms.clone());
    let outcomes = match terms {
        Some(t) => outcomes(case.catalogue.claimed_per_person_yen, &case.catalogue.precedent_awards_yen, &t),
        None => vec![],
    };
    Ok(ConsentStep { claimed_per_person_yen: case.catalogue.claimed_per_person_yen, outcomes, signatures })
}

#[derive(rocket::FromForm)]
pub struct SignForm {
    agree: bool,
    signer_name: String,
}

impl SignForm {
    /// The box is ticked, or the refusal that says it must be.
    fn agreed(&self) -> AppResult<()> {
        if self.agree {
            return Ok(());
        }
        let mut errors = crate::domain::FieldErrors::new();
        errors.add("agree", crate::domain::ErrorCode::ConsentRequired);
        Err(errors.into())
    }
}

#[rocket::post("/claims/<id>/consent/<document>", data = "<form>")]
pub async fn sign(
    id: &str,
    document: &str,
    form: PageForm<SignForm>,
    page: Page<ClaimantUser>,
    context: SigningContext,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let (claim_id, document_id) = (parse_id(id)?, parse_id(document)?);
    let signing = async {
        form.agreed()?;
        service::sign(state, &page.caller, claim_id, document_id, &form.signer_name, context).await
    };
    match signing.await {
        Ok(_) => Ok(PageResponse::redirect(format!("/claims/{claim_id}/consent#doc-{document_id}"))),
        Err(AppError::Invalid(errors)) => {
            // Field ids carry the document, so each form shows its own errors.
            let errors: BTreeMap<String, String> = translate_fields(&errors, page.lang)
                .into_iter()
                .map(|(k, v)| (format!("doc-{document_id}-{k}"), v))
                .collect();
            let values = json!({ "document": document_id, "signer_name": form.signer_name, "agree": form.agree });
            let view = render_claim_step_with(state, &page, claim_id, "consent", Some(values), errors).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, view))
        }
        Err(AppError::Incomplete(_)) => Ok(PageResponse::redirect(format!("/claims/{claim_id}/identity"))),
        Err(AppError::WrongState(_)) => Ok(PageResponse::redirect(format!("/claims/{claim_id}"))),
        Err(e) => Err(e),
    }
}

#[derive(Serialize)]
struct ReceiptPage {
    #[serde(flatten)]
    chrome: Chrome,
    claim: ClaimDetail,
    case: CaseView,
    signatures: Vec<ReceiptLine>,
    printed_at: String,
}

#[derive(Serialize)]
struct ReceiptLine {
    #[serde(flatten)]
    signature: Signature,
    signed_at_jst: String,
}

/// A printable record of every signature on the claim (print or save as PDF).
#[rocket::get("/claims/<id>/consent/receipt")]
pub async fn receipt(id: &str, page: Page<ClaimantUser>, state: &State<AppState>) -> AppResult<Template> {
    let claim_id = parse_id(id)?;
    let (claim, case) = crate::intake::service::get_own(state, &page.caller, claim_id).await?;
    let signatures = service::own_signatures(state, &page.caller, claim_id).await?;
    Ok(Template::render(
        "claims/receipt",
        ReceiptPage {
            chrome: page.chrome(format!("/claims/{claim_id}/consent/receipt")),
            claim,
            case: CaseView::new(&case, page.lang),
            signatures: signatures
                .into_iter()
                .map(|s| ReceiptLine { signed_at_jst: crate::web::format_jst(s.signed_at), signature: s })
                .collect(),
            printed_at: crate::web::format_jst(state.clock.now()),
        },
    ))
}

#[derive(Serialize)]
struct AdminDocumentsPage {
    #[serde(flatten)]
    chrome: Chrome,
    case: CaseView,
    slug: String,
    current: Vec<DocumentView>,
    history: Vec<DocumentView>,
    kinds: Vec<&'static str>,
    values: serde_json::Value,
    errors: BTreeMap<String, String>,
    published: Option<String>,
}

async fn render_admin(
    state: &AppState,
    page: &Page<impl SignedIn>,
    slug: &str,
    values: serde_json::Value,
    errors: BTreeMap<String, String>,
    published: Option<String>,
) -> AppResult<Template> {
    let (lang, user) = (page.lang, page.caller.user());
    user.require(Role::Admin)?;
    let case = crate::cases::service::by_slug(state.db.conn(), slug).await?;
    let current = service::current_documents(state.db.conn(), case.model.id).await?;
    let values = if values.is_null() {
        // Start from the current fee terms so an edit changes only what it means to.
        let terms =
            current.iter().find_map(|d| d.fee_terms.as_ref()).map(FeeTermsInput::from_terms).unwrap_or_default();
        json!({ "kind": "retainer", "fee_terms": terms })
    } else {
        values
    };
    Ok(Template::render(
        "admin/documents",
        AdminDocumentsPage {
            chrome: page.chrome(format!("/admin/cases/{slug}/documents")),
            case: CaseView::new(&case, lang),
            slug: case.model.slug.clone(),
            history: service::history(state.db.conn(), case.model.id).await?,
            current,
            kinds: DocumentKind::ALL.iter().map(|k| k.as_str()).collect(),
            values,
            errors,
            published,
        },
    ))
}

#[rocket::get("/admin/cases/<slug>/documents?<published>")]
pub async fn admin_documents(
    slug: &str,
    published: Option<String>,
    page: Page<CurrentUser>,
    state: &State<AppState>,
) -> AppResult<Template> {
    render_admin(state, &page, slug, serde_json::Value::Null, BTreeMap::new(), published).await
}

#[derive(rocket::FromForm, Serialize)]
pub struct PublishForm {
    kind: String,
    title: String,
    body: String,
    fee_terms: FeeTermsInput,
}

#[rocket::post("/admin/cases/<slug>/documents", data = "<form>")]
pub async fn publish(
    slug: &str,
    page: Page<AdminUser>,
    form: PageForm<PublishForm>,
    state: &State<AppState>,
) -> AppResult<PageResponse> {
    let user = page.caller.user();
    let input = DocumentInput {
        kind: form.kind.clone(),
        title: form.title.clone(),
        body: form.body.clone(),
        fee_terms: (form.kind == DocumentKind::FeeTerms.as_str()).then(|| form.fee_terms.clone()),
    };
    match service::publish(state, user, slug, &input).await {
        Ok(doc) => Ok(PageResponse::redirect(format!(
            "/admin/cases/{slug}/documents?published={}-v{}",
            doc.kind.as_str(),
            doc.version
        ))),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let mut errors = e.field_messages(page.lang);
            if errors.is_empty() {
                errors.insert("body".into(), e.message(page.lang));
            }
            let view = render_admin(state, &page, slug, json!(&*form), errors, None).await?;
            Ok(PageResponse::refused(Status::UnprocessableEntity, view))
        }
        Err(e) => Err(e),
    }
}

#[derive(Serialize)]
struct AdminHome {
    #[serde(flatten)]
    chrome: Chrome,
    cases: Vec<CaseView>,
    mail: crate::mail::Overview,
    /// Failures with their time in Japan and the mail's kind in words.
    failures: Vec<FailureRow>,
    jobs: Vec<JobRow>,
}

#[derive(Serialize)]
struct FailureRow {
    at_jst: String,
    what: String,
    error: String,
    given_up: bool,
}

#[derive(Serialize)]
struct JobRow {
    what: String,
    #[serde(flatten)]
    counts: crate::jobs::KindCounts,
}

/// The administrators' start page: the cases and what can be configured.
#[rocket::get("/admin")]
pub async fn admin_home(page: Page<CurrentUser>, state: &State<AppState>) -> AppResult<Template> {
    page.caller.require(Role::Admin)?;
    let cases = crate::cases::service::all_cases(state.db.conn()).await?;
    let mail = crate::mail::overview(state.db.conn(), state.clock.now(), state.mailer.is_some()).await?;
    let failures = mail
        .recent_failures
        .iter()
        .map(|f| FailureRow {
            at_jst: crate::web::format_jst(f.at),
            what: page.lang.try_t(&format!("mail-kind-{}", f.kind.replace(['.', '_'], "-"))).unwrap_or_default(),
            error: f.error.clone(),
            given_up: f.given_up,
        })
        .collect();
    let jobs = crate::jobs::summary(state.db.conn())
        .await?
        .into_iter()
        .map(|counts| JobRow { what: page.lang.t(&format!("job-kind-{}", counts.kind)), counts })
        .collect();
    Ok(Template::render(
        "admin/index",
        AdminHome {
            chrome: page.chrome("/admin"),
            cases: cases.iter().map(|c| CaseView::new(c, page.lang)).collect(),
            mail,
            failures,
            jobs,
        },
    ))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![sign, receipt, admin_home, admin_documents, publish]
}
