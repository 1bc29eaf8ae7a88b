//! Consent use cases: the current documents of a case, publishing a new
//! version, signing (for oneself and, for each minor, as 法定代理人), the
//! consent state of a claim, and the receipt.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use entities::{claim, consent, consent_document};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, TryInsertResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::domain::{signature_matches, Capacity, DocumentInput, DocumentKind, FeeTerms};
use crate::audit::{self, Event};
use crate::auth::{CurrentUser, Role};
use crate::claims::domain::{ClaimStatus, Draft, Relation};
use crate::claims::store::{data_key, identity_index, own_claim, own_claim_and_draft, status_of};
use crate::crypto::{self, DataKey, Keyring};
use crate::domain::{ErrorCode, FieldErrors};
use crate::error::{AppError, AppResult};
use crate::AppState;

/// A published version of a document.
#[derive(Clone, Debug, Serialize)]
pub struct DocumentView {
    pub id: Uuid,
    pub kind: DocumentKind,
    pub version: i32,
    pub title: String,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_terms: Option<FeeTerms>,
    pub published_at: DateTime<Utc>,
    /// The text; left out of lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl DocumentView {
    fn from_model(m: &consent_document::Model, with_body: bool) -> AppResult<Self> {
        let kind = DocumentKind::parse(&m.kind).map_err(|_| AppError::internal(format!("document kind {}", m.kind)))?;
        let fee_terms = match &m.fee_terms {
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|e| AppError::internal(format!("fee terms {}: {e}", m.id)))?,
            ),
            None => None,
        };
        Ok(Self {
            id: m.id,
            kind,
            version: m.version,
            title: m.title.clone(),
            sha256: m.sha256.clone(),
            fee_terms,
            published_at: m.published_at,
            body: with_body.then(|| m.body.clone()),
        })
    }
}

/// Every version of a case's documents, newest first within each kind.
pub(crate) async fn all_versions(db: &impl ConnectionTrait, case_id: Uuid) -> AppResult<Vec<consent_document::Model>> {
    Ok(consent_document::Entity::find()
        .filter(consent_document::Column::CaseId.eq(case_id))
        .order_by_asc(consent_document::Column::Kind)
        .order_by_desc(consent_document::Column::Version)
        .all(db)
        .await?)
}

/// How long a case's published versions are trusted before they are read
/// again: a version another app server publishes is seen here within it.
pub const DOCUMENTS_TTL: Duration = Duration::from_secs(5);

/// A case's published documents, kept in memory. Published versions never
/// change (a correction is a new version), so the only staleness is a
/// version published meanwhile: by this process, seen at once
/// ([`DocumentCache::forget`] on publishing); by another, within
/// [`DOCUMENTS_TTL`]. A signature given in that window is on the text the
/// claimant was shown, and the claim then asks for the new version, as
/// when a version is published while the claimant reads.
#[derive(Debug, Default)]
pub struct DocumentCache {
    entries: RwLock<HashMap<Uuid, (Instant, Versions)>>,
}

/// Every version of a case's documents, newest first within each kind.
pub type Versions = Arc<Vec<consent_document::Model>>;

impl DocumentCache {
    fn fresh(&self, case_id: Uuid) -> Option<Versions> {
        let entries = self.entries.read().ok()?;
        entries.get(&case_id).filter(|(at, _)| at.elapsed() < DOCUMENTS_TTL).map(|(_, docs)| docs.clone())
    }

    /// Every version of a case's documents, newest first within each kind.
    pub async fn versions(&self, db: &impl ConnectionTrait, case_id: Uuid) -> AppResult<Versions> {
        if let Some(docs) = self.fresh(case_id) {
            return Ok(docs);
        }
        let docs = Arc::new(all_versions(db, case_id).await?);
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(case_id, (Instant::now(), docs.clone()));
        }
        Ok(docs)
    }

    /// The versions with `document_id` among them, read again once if the
    /// kept ones lack it (published elsewhere a moment ago); `None` if the
    /// case has no such document.
    async fn with_document(
        &self,
        db: &impl ConnectionTrait,
        case_id: Uuid,
        document_id: Uuid,
    ) -> AppResult<Option<Versions>> {
        let docs = self.versions(db, case_id).await?;
        if docs.iter().any(|d| d.id == document_id) {
            return Ok(Some(docs));
        }
        self.forget(case_id);
        let docs = self.versions(db, case_id).await?;
        Ok(docs.iter().any(|d| d.id == document_id).then_some(docs))
    }

    /// A version was published here: the next read fetches the case's list.
    pub fn forget(&self, case_id: Uuid) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(&case_id);
        }
    }
}

/// The newest version of each kind (in `DocumentKind::ALL` order).
fn newest(all: &[consent_document::Model]) -> Vec<&consent_document::Model> {
    DocumentKind::ALL
        .iter()
        .filter_map(|k| all.iter().filter(|d| d.kind == k.as_str()).max_by_key(|d| d.version))
        .collect()
}

/// The current version of every document of a case, with their texts.
pub async fn current_documents(db: &impl ConnectionTrait, case_id: Uuid) -> AppResult<Vec<DocumentView>> {
    let all = all_versions(db, case_id).await?;
    newest(&all).into_iter().map(|m| DocumentView::from_model(m, true)).collect()
}

/// Every version, for the administrators' history.
pub async fn history(db: &impl ConnectionTrait, case_id: Uuid) -> AppResult<Vec<DocumentView>> {
    all_versions(db, case_id).await?.iter().map(|m| DocumentView::from_model(m, false)).collect()
}

/// Publish a new version of a document (administrators only). Published
/// versions are never changed: a correction is a new version, and every
/// claimant who signed an older one is asked to sign again.
pub async fn publish(
    state: &AppState,
    user: &CurrentUser,
    case_slug: &str,
    input: &DocumentInput,
) -> AppResult<DocumentView> {
    user.require(Role::Admin)?;
    let case = crate::cases::service::by_slug(state.db.conn(), case_slug).await?;
    let doc = input.parse()?;
    let txn = state.db.begin_write().await?;
    let latest = consent_document::Entity::find()
        .filter(consent_document::Column::CaseId.eq(case.model.id))
        .filter(consent_document::Column::Kind.eq(doc.kind.as_str()))
        .order_by_desc(consent_document::Column::Version)
        .one(&txn)
        .await?;
    if latest.as_ref().is_some_and(|l| l.sha256 == doc.sha256 && l.title == doc.title) {
        return Err(AppError::Conflict("document_unchanged"));
    }
    let model = consent_document::Model {
        id: Uuid::new_v4(),
        case_id: case.model.id,
        kind: doc.kind.as_str().into(),
        version: latest.map(|l| l.version + 1).unwrap_or(1),
        title: doc.title,
        body: doc.body,
        sha256: doc.sha256,
        fee_terms: doc.fee_terms.as_ref().map(|t| serde_json::to_value(t).unwrap_or_default()),
        published_at: state.clock.now(),
        published_by: Some(user.id),
    };
    // The unique (case, kind, version) index refuses a concurrent publication.
    consent_document::Entity::insert(consent_document::ActiveModel::from(model.clone()))
        .exec_without_returning(&txn)
        .await?;
    audit::append(
        &txn,
        &user.actor(),
        Event::new("consent_document.published").subject("consent_document", model.id).detail(serde_json::json!({
            "case": case.model.slug, "kind": model.kind, "version": model.version, "sha256": model.sha256
        })),
    )
    .await?;
    txn.commit().await?;
    state.documents.forget(case.model.id);
    DocumentView::from_model(&model, true)
}

/// A person on the claim whose signature a document still lacks.
#[derive(Clone, Debug, Serialize)]
pub struct Pending {
    pub capacity: Capacity,
    pub name: String,
}

/// One document as it stands for a claim.
#[derive(Clone, Debug, Serialize)]
pub struct DocumentConsent {
    pub document: DocumentView,
    /// Everyone the claimant must sign for has signed this version.
    pub signed: bool,
    /// An older version was signed: the claimant is asked to sign again.
    pub outdated: bool,
    pub pending: Vec<Pending>,
}

/// The consent of a claim against the case's current documents.
#[derive(Clone, Debug, Serialize)]
pub struct ConsentState {
    /// Every current document is signed for everyone it must cover.
    pub current: bool,
    /// Some signature is for a superseded version.
    pub reconsent_needed: bool,
    pub documents: Vec<DocumentConsent>,
    /// `consent.<kind>` for each document still to sign.
    pub missing: Vec<String>,
    /// Minors on the claim the claimant signs for as 法定代理人.
    pub minors: Vec<String>,
    /// Adults on the claim other than the claimant: they cannot be
    /// represented by the claimant and must give their own retainer.
    pub adults_signing_separately: Vec<String>,
}

/// Who must sign: (capacity, identity index, display name).
fn required_subjects(keys: &Keyring, draft: &Draft, today: NaiveDate) -> Vec<(Capacity, String, String)> {
    let mut out = Vec::new();
    if let Some(me) = draft.claimant() {
        out.push((Capacity::Principal, identity_index(keys, me), me.display_name()));
    }
    for p in draft.persons.iter().filter(|p| p.relation != Relation::Myself && p.birth_date.is_minor_on(today)) {
        out.push((Capacity::Guardian, identity_index(keys, p), p.display_name()));
    }
    out
}

/// Compute a claim's consent state from its draft and signatures.
pub async fn state_of(
    state: &AppState,
    db: &impl ConnectionTrait,
    model: &claim::Model,
    draft: &Draft,
) -> AppResult<ConsentState> {
    let rows = signature_rows(db, model.id).await?;
    state_from(state, db, model, draft, &rows).await
}

/// A claim's signature rows, as [`state_from`] takes them.
pub async fn signature_rows(db: &impl ConnectionTrait, claim_id: Uuid) -> AppResult<Vec<consent::Model>> {
    Ok(consent::Entity::find().filter(consent::Column::ClaimId.eq(claim_id)).all(db).await?)
}

/// [`state_of`] from signature rows the caller read.
pub async fn state_from(
    state: &AppState,
    db: &impl ConnectionTrait,
    model: &claim::Model,
    draft: &Draft,
    rows: &[consent::Model],
) -> AppResult<ConsentState> {
    let today = state.clock.today();
    let all = state.documents.versions(db, model.case_id).await?;
    let subjects = required_subjects(&state.keys, draft, today);
    let mut documents = Vec::new();
    let mut missing = Vec::new();
    for doc in newest(&all) {
        let pending: Vec<Pending> = subjects
            .iter()
            .filter(|(cap, index, _)| {
                !rows.iter().any(|r| r.document_id == doc.id && r.subject_index == *index && r.capacity == cap.as_str())
            })
            .map(|(capacity, _, name)| Pending { capacity: *capacity, name: name.clone() })
            .collect();
        let older: Vec<Uuid> =
            all.iter().filter(|d| d.kind == doc.kind && d.version < doc.version).map(|d| d.id).collect();
        let signed = !subjects.is_empty() && pending.is_empty();
        let outdated = !signed && rows.iter().any(|r| older.contains(&r.document_id));
        if !signed {
            missing.push(format!("consent.{}", doc.kind));
        }
        documents.push(DocumentConsent { document: DocumentView::from_model(doc, true)?, signed, outdated, pending });
    }
    Ok(ConsentState {
        current: missing.is_empty() && !documents.is_empty(),
        reconsent_needed: documents.iter().any(|d| d.outdated),
        documents,
        missing,
        minors: subjects.iter().filter(|s| s.0 == Capacity::Guardian).map(|s| s.2.clone()).collect(),
        adults_signing_separately: draft
            .persons
            .iter()
            .filter(|p| p.relation != Relation::Myself && !p.birth_date.is_minor_on(today))
            .map(|p| p.display_name())
            .collect(),
    })
}

/// The personal part of a signature, sealed with the claim's data key.
#[derive(Serialize, Deserialize)]
struct SignatureSealed {
    signer_name: String,
    subject_name: String,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// How a signature was given: from where, with what.
#[derive(Clone, Debug, Default)]
pub struct SigningContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One recorded signature, as the receipt and the export show it.
#[derive(Clone, Debug, Serialize)]
pub struct Signature {
    pub id: Uuid,
    pub document_id: Uuid,
    pub kind: DocumentKind,
    pub title: String,
    pub version: i32,
    pub document_sha256: String,
    pub capacity: Capacity,
    pub signer_name: String,
    pub subject_name: String,
    pub signed_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

fn signable(status: ClaimStatus) -> bool {
    matches!(status, ClaimStatus::Draft | ClaimStatus::NeedsInfo | ClaimStatus::Submitted | ClaimStatus::Verified)
}

const MAX_USER_AGENT_CHARS: usize = 300;

/// Sign a current document of the claim's case: for the claimant, and as
/// 法定代理人 for each minor on the claim. The typed name must be the
/// claimant's. Signing again adds only the signatures still missing;
/// the answer lists the signatures this call recorded.
pub async fn sign(
    state: &AppState,
    user: &CurrentUser,
    claim_id: Uuid,
    document_id: Uuid,
    signer_name: &str,
    context: SigningContext,
) -> AppResult<Vec<Signature>> {
    // Every read on one connection: the claim, its people, its signatures.
    let txn = state.db.begin_write().await?;
    let (model, draft) = own_claim_and_draft(&txn, &state.keys, user, claim_id).await?;
    if !signable(status_of(&model)?) {
        return Err(AppError::WrongState("claim_not_signable"));
    }
    let versions = state.documents.with_document(&txn, model.case_id, document_id).await?.ok_or(AppError::NotFound)?;
    let doc = versions.iter().find(|d| d.id == document_id).ok_or(AppError::NotFound)?;
    let Some(me) = draft.claimant() else {
        return Err(AppError::Incomplete(vec!["persons".into()]));
    };
    let typed = crate::domain::normalise(signer_name);
    if !signature_matches(&typed, me) {
        let mut errors = FieldErrors::new();
        errors.add("signer_name", if typed.is_empty() { ErrorCode::Required } else { ErrorCode::SignatureMismatch });
        return Err(errors.into());
    }
    // Checked before anything is written (on SQLite, before the writer is
    // waited for): a version published in between leaves this signature on
    // the text the claimant was shown, and the claim then asks for the new one
    // (`state_of` marks it outdated). The unique index on signatures keeps
    // a concurrent second signing from recording twice.
    let newest_of_kind = versions.iter().filter(|d| d.kind == doc.kind).max_by_key(|d| d.version);
    if newest_of_kind.is_none_or(|n| n.id != doc.id) {
        return Err(AppError::Conflict("document_superseded"));
    }
    let key = data_key(&state.keys, &model)?;
    let subjects = required_subjects(&state.keys, &draft, state.clock.today());
    let signing = Signing { key: &key, claim_id: model.id, doc, typed: &typed, context, now: state.clock.now() };
    let (rows, recorded) = signing.rows(subjects)?;
    let recorded = insert_new(&txn, rows, recorded).await?;
    let detail = serde_json::json!({
        "document": doc.id, "kind": doc.kind, "version": doc.version, "sha256": doc.sha256, "signatures": recorded.len()
    });
    let event = Event::new("consent.signed").subject("claim", model.id).owner(user.id).detail(detail);
    audit::append(&txn, &user.actor(), event).await?;
    txn.commit().await?;
    Ok(recorded)
}

/// One signing of one document: what each signature row records.
struct Signing<'a> {
    key: &'a DataKey,
    claim_id: Uuid,
    doc: &'a consent_document::Model,
    typed: &'a str,
    context: SigningContext,
    now: DateTime<Utc>,
}

impl Signing<'_> {
    /// A sealed row for each subject, and the signature as the answer
    /// shows it.
    fn rows(self, subjects: Vec<(Capacity, String, String)>) -> AppResult<(Vec<consent::ActiveModel>, Vec<Signature>)> {
        let doc = self.doc;
        let kind = DocumentKind::parse(&doc.kind).map_err(|_| AppError::internal("document kind"))?;
        let user_agent = self.context.user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>());
        let mut rows = Vec::new();
        let mut recorded = Vec::new();
        for (capacity, index, name) in subjects {
            let id = Uuid::new_v4();
            let sealed = SignatureSealed {
                signer_name: self.typed.to_string(),
                subject_name: name,
                ip: self.context.ip.clone(),
                user_agent: user_agent.clone(),
            };
            rows.push(consent::ActiveModel {
                id: Set(id),
                claim_id: Set(self.claim_id),
                document_id: Set(doc.id),
                document_sha256: Set(doc.sha256.clone()),
                capacity: Set(capacity.as_str().into()),
                subject_index: Set(index),
                sealed: Set(crypto::seal_json(self.key.bytes(), &sealed, id.as_bytes())),
                signed_at: Set(self.now),
            });
            recorded.push(Signature {
                id,
                document_id: doc.id,
                kind,
                title: doc.title.clone(),
                version: doc.version,
                document_sha256: doc.sha256.clone(),
                capacity,
                signer_name: sealed.signer_name,
                subject_name: sealed.subject_name,
                signed_at: self.now,
                ip: sealed.ip,
                user_agent: sealed.user_agent,
            });
        }
        Ok((rows, recorded))
    }
}

/// Insert the signature rows; a signature already given is not read
/// first: the unique index on signatures refuses it again, and the answer
/// lists only what this call recorded (a concurrent signing may have won).
async fn insert_new(
    txn: &crate::db::WriteTx,
    rows: Vec<consent::ActiveModel>,
    mut recorded: Vec<Signature>,
) -> AppResult<Vec<Signature>> {
    if rows.is_empty() {
        return Ok(recorded);
    }
    let inserted = consent::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([
            consent::Column::ClaimId,
            consent::Column::DocumentId,
            consent::Column::Capacity,
            consent::Column::SubjectIndex,
        ])
        .exec_with_returning_keys(txn)
        .await?;
    let kept = match inserted {
        TryInsertResult::Inserted(ids) => ids,
        TryInsertResult::Empty | TryInsertResult::Conflicted => vec![],
    };
    recorded.retain(|s| kept.contains(&s.id));
    Ok(recorded)
}

/// Every signature on a claim, oldest first, decrypted.
pub async fn signatures(db: &impl ConnectionTrait, keys: &Keyring, model: &claim::Model) -> AppResult<Vec<Signature>> {
    let rows = consent::Entity::find()
        .filter(consent::Column::ClaimId.eq(model.id))
        .order_by_asc(consent::Column::SignedAt)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let docs = all_versions(db, model.case_id).await?;
    open_signatures(keys, model, &docs, rows)
}

/// Decrypt a claim's signatures from its consent rows (in signing order) and
/// its case's documents, read by the caller.
pub(crate) fn open_signatures(
    keys: &Keyring,
    model: &claim::Model,
    docs: &[consent_document::Model],
    rows: Vec<consent::Model>,
) -> AppResult<Vec<Signature>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let key = data_key(keys, model)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let doc = docs.iter().find(|d| d.id == row.document_id).ok_or_else(|| AppError::internal("document"))?;
        let sealed: SignatureSealed = crypto::open_json(key.bytes(), &row.sealed, row.id.as_bytes())?;
        out.push(Signature {
            id: row.id,
            document_id: doc.id,
            kind: DocumentKind::parse(&doc.kind).map_err(|_| AppError::internal("document kind"))?,
            title: doc.title.clone(),
            version: doc.version,
            document_sha256: row.document_sha256,
            capacity: Capacity::parse(&row.capacity).ok_or_else(|| AppError::internal("capacity"))?,
            signer_name: sealed.signer_name,
            subject_name: sealed.subject_name,
            signed_at: row.signed_at,
            ip: sealed.ip,
            user_agent: sealed.user_agent,
        });
    }
    Ok(out)
}

/// The signatures on the caller's own claim (receipt, export, consent page).
pub async fn own_signatures(state: &AppState, user: &CurrentUser, claim_id: Uuid) -> AppResult<Vec<Signature>> {
    let model = own_claim(state.db.conn(), user, claim_id).await?;
    signatures(state.db.conn(), &state.keys, &model).await
}

/// The claimant's own claim's consent state and signatures.
pub async fn for_claim(
    state: &AppState,
    user: &CurrentUser,
    claim_id: Uuid,
) -> AppResult<(ConsentState, Vec<Signature>)> {
    let (model, draft) = own_claim_and_draft(state.db.conn(), &state.keys, user, claim_id).await?;
    let consent = state_of(state, state.db.conn(), &model, &draft).await?;
    let signed = signatures(state.db.conn(), &state.keys, &model).await?;
    Ok((consent, signed))
}
