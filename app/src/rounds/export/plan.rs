//! What goes into a round's bundle, read before anything is written: the
//! round and its policy, the members in plaintiff-number order, their
//! claims, and the evidence files numbered as exhibits (甲第1号証, …). The
//! party list is decrypted by `parties_of`, which runs beside the stream.
use std::collections::HashMap;
use std::sync::Arc;

use entities::{claim, consent, evidence, filing_round, person, round_member};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::claims::store::assemble_draft;
use crate::crypto::Keyring;
use crate::error::{AppError, AppResult};
use crate::evidence::domain::SniffedType;
use crate::rounds::bundle::{Exhibit, Party, RoundInfo};
use crate::AppState;

/// A bundle's contents, before any of it is decrypted.
pub(super) struct Plan {
    pub round: filing_round::Model,
    pub info: RoundInfo,
    pub members: Vec<round_member::Model>,
    /// The round's claims by id.
    pub claims: Arc<HashMap<Uuid, claim::Model>>,
    pub exhibits: Vec<Exhibit>,
    /// Each exhibit's evidence row, in exhibit order.
    pub files: Vec<evidence::Model>,
}

/// Read what the bundle of `round_id` holds: a few queries for the whole
/// round, none per claim.
pub(super) async fn plan(state: &AppState, round_id: Uuid) -> AppResult<Plan> {
    let db = state.db.conn();
    let round = filing_round::Entity::find_by_id(round_id).one(db).await?.ok_or(AppError::NotFound)?;
    let case = crate::cases::service::by_id(db, round.case_id).await?;
    let defendant = case.catalogue.defendant.get(crate::i18n::Lang::Ja).to_string();
    let policy = crate::rounds::service::latest_policy_row(state, round.id)
        .await?
        .ok_or(AppError::WrongState("round_has_no_policy"))?;
    let members = round_member::Entity::find()
        .filter(round_member::Column::RoundId.eq(round.id))
        .order_by_asc(round_member::Column::PlaintiffNumber)
        .all(db)
        .await?;
    let claims: HashMap<Uuid, claim::Model> = claim::Entity::find()
        .filter(claim::Column::Id.in_subquery(round_claims(round.id)))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let evidence_of = by_claim(
        evidence::Entity::find()
            .filter(evidence::Column::ClaimId.in_subquery(round_claims(round.id)))
            .order_by_asc(evidence::Column::CreatedAt)
            .all(db)
            .await?,
        |e| e.claim_id,
    );
    let (exhibits, files) = exhibits_of(&members, evidence_of, &defendant);
    let info = RoundInfo {
        case: case.model.slug.clone(),
        number: round.number,
        name: round.name.clone(),
        court: round.court.clone(),
        filing_date: round.filing_date,
        policy_version: policy.version,
        policy_sha256: policy.sha256.clone(),
        result_sha256: round.result_sha256.clone().unwrap_or_default(),
    };
    Ok(Plan { round, info, members, claims: Arc::new(claims), exhibits, files })
}

/// Each claim's files in plaintiff order (a claim once, at its first
/// plaintiff), numbered as exhibits.
fn exhibits_of(
    members: &[round_member::Model],
    mut evidence_of: HashMap<Uuid, Vec<evidence::Model>>,
    defendant: &str,
) -> (Vec<Exhibit>, Vec<evidence::Model>) {
    let mut exhibits = Vec::new();
    let mut files = Vec::new();
    for m in members {
        // `remove`: a claim's files come once, however many plaintiffs it has.
        for row in evidence_of.remove(&m.claim_id).unwrap_or_default() {
            let (title, author, purpose) = kind_text(&row.kind, defendant);
            exhibits.push(Exhibit {
                number: exhibits.len() as u32 + 1,
                title,
                original_or_copy: "写し".into(),
                author,
                date: Some(crate::today_of(row.created_at)),
                purpose,
                evidence_id: row.id,
                extension: SniffedType::extension(&row.content_type).to_string(),
            });
            files.push(row);
        }
    }
    (exhibits, files)
}

fn kind_text(kind: &str, defendant: &str) -> (String, String, String) {
    match kind {
        "apology_letter" => (
            "おわびの手紙（ご登録用コード記載）".into(),
            defendant.to_string(),
            "原告が漏えいの対象者として通知を受けたこと".into(),
        ),
        "direct_mail" => (
            "ダイレクトメール".into(),
            "送付元の事業者".into(),
            "漏えいした情報が名簿業者を通じて利用されたこと".into(),
        ),
        "call_log" => ("着信記録".into(), "原告".into(), "漏えいした電話番号に勧誘電話があったこと".into()),
        _ => ("その他の資料".into(), "原告".into(), "原告の被害の内容".into()),
    }
}

/// The claims of a round's members (a subquery, so no list of ids is sent).
fn round_claims(round_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(round_member::Column::ClaimId)
        .from(round_member::Entity)
        .and_where(round_member::Column::RoundId.eq(round_id))
        .to_owned()
}

fn by_claim<T>(rows: Vec<T>, claim_of: impl Fn(&T) -> Uuid) -> HashMap<Uuid, Vec<T>> {
    let mut out: HashMap<Uuid, Vec<T>> = HashMap::new();
    for row in rows {
        out.entry(claim_of(&row)).or_default().push(row);
    }
    out
}

pub(super) type Retainers = Vec<(u32, serde_json::Value)>;

/// The party list and each plaintiff's retainer record, in plaintiff-number
/// order. The signatures (and, for claims in the row layout, the people) of
/// the whole round are read in a query each, not per claim; each claim is
/// decrypted once.
pub(super) async fn parties_of(
    db: crate::db::Db,
    keys: Keyring,
    claims: std::sync::Arc<HashMap<Uuid, claim::Model>>,
    members: Vec<round_member::Model>,
    (round_id, case_id, filing_date): (Uuid, Uuid, chrono::NaiveDate),
) -> AppResult<(Vec<Party>, Retainers)> {
    let db = db.conn();
    // Claims in the document layout carry their people in the claim row;
    // only claims still in the row layout need their person rows.
    let rows_layout = claims.values().any(|c| c.document_format == crate::claims::documents::ROWS);
    let mut persons = match rows_layout {
        true => by_claim(
            person::Entity::find()
                .filter(person::Column::ClaimId.in_subquery(round_claims(round_id)))
                .order_by_asc(person::Column::Position)
                .all(db)
                .await?,
            |p| p.claim_id,
        ),
        false => HashMap::new(),
    };
    let mut consents = by_claim(
        consent::Entity::find()
            .filter(consent::Column::ClaimId.in_subquery(round_claims(round_id)))
            .order_by_asc(consent::Column::SignedAt)
            .all(db)
            .await?,
        |c| c.claim_id,
    );
    let documents = crate::consent::service::all_versions(db, case_id).await?;
    let mut parties = Vec::with_capacity(members.len());
    let mut retainers = Vec::with_capacity(members.len());
    let mut current: Option<(Uuid, crate::claims::domain::Draft, Vec<crate::consent::service::Signature>)> = None;
    for m in &members {
        let model = claims.get(&m.claim_id).ok_or(AppError::NotFound)?;
        if current.as_ref().map(|c| c.0) != Some(m.claim_id) {
            let draft = assemble_draft(&keys, model, persons.remove(&m.claim_id).unwrap_or_default(), vec![])?;
            let rows = consents.remove(&m.claim_id).unwrap_or_default();
            let signatures = crate::consent::service::open_signatures(&keys, model, &documents, rows)?;
            current = Some((m.claim_id, draft, signatures));
        }
        let Some((_, draft, signatures)) = current.as_ref() else { continue };
        let Some(person) = draft.persons.get(m.position as usize) else { continue };
        let name = person.display_name();
        let address = draft
            .address
            .as_ref()
            .map(|a| {
                let line2 = a.line2.as_deref().unwrap_or("");
                format!("〒{} {}{}{} {}", a.postal_code.display(), a.prefecture.as_str(), a.city, a.line1, line2)
            })
            .unwrap_or_default()
            .trim()
            .to_string();
        let guardian = if person.birth_date.is_minor_on(filing_date) {
            draft.claimant().map(|c| format!("親権者 {}", c.display_name()))
        } else {
            None
        };
        let retainer: Vec<&crate::consent::service::Signature> = signatures
            .iter()
            .filter(|s| s.kind == crate::consent::domain::DocumentKind::Retainer && s.subject_name == name)
            .collect();
        retainers.push((
            m.plaintiff_number as u32,
            serde_json::json!({"plaintiff_number": m.plaintiff_number, "claim": model.number, "signatures": retainer}),
        ));
        parties.push(Party {
            plaintiff_number: m.plaintiff_number as u32,
            name,
            address,
            legal_representative: guardian,
            tier: m.tier.clone(),
            amount_yen: m.amount_yen.max(0) as u64,
        });
    }
    Ok((parties, retainers))
}
