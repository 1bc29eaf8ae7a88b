//! Gathering the facts about a claim and turning them into signals.
use chrono::Duration;
use entities::{audit_event, claim, evidence};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde::Serialize;
use uuid::Uuid;

use super::domain::{signals, Facts, SignalKind, Weight};
use crate::claims::store::{load_draft, Parts};
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::roster::domain::{identity_key, key_of_index, phone_key, postal_kana_key, RosterKeys};
use crate::AppState;

/// How far apart claims from one address count as a burst.
pub const BURST_WINDOW_MINUTES: i64 = 60;

/// A signal with its reason in the reader's language.
#[derive(Clone, Debug, Serialize)]
pub struct Signal {
    pub kind: SignalKind,
    pub weight: Weight,
    pub reason: String,
}

/// The facts about a claim. Reads its sealed contact details to match phone
/// and postal code: callers are staff whose read is authorised and audited.
pub async fn facts(state: &AppState, claim_id: Uuid) -> AppResult<Facts> {
    let db = state.db.conn();
    let model = claim::Entity::find_by_id(claim_id).one(db).await?.ok_or(AppError::NotFound)?;
    let draft = load_draft(db, &state.keys, &model, Parts::WithoutHarms).await?;
    let mut hashes = Vec::new();
    hashes.push(RosterKeys {
        code: model.registration_code_index.as_deref().and_then(key_of_index),
        phone: draft.phone.as_ref().map(|p| phone_key(&state.keys, p)),
        ..Default::default()
    });
    for p in &draft.persons {
        let kana = format!("{}{}", p.family_name_kana.index_form(), p.given_name_kana.index_form());
        hashes.push(RosterKeys {
            identity: Some(identity_key(&state.keys, &kana, p.birth_date.date())),
            postal_kana: draft.address.as_ref().map(|a| postal_kana_key(&state.keys, &a.postal_code, &kana)),
            ..Default::default()
        });
    }
    let found = crate::roster::service::lookup(state, model.case_id, &hashes).await?;
    let count_kind = |kind: &'static str| {
        evidence::Entity::find()
            .filter(evidence::Column::ClaimId.eq(claim_id))
            .filter(evidence::Column::Kind.eq(kind))
            .count(db)
    };
    let apology_letters = count_kind("apology_letter").await? as usize;
    let direct_mail_samples = count_kind("direct_mail").await? as usize;
    Ok(Facts {
        roster_code: found.code,
        roster_identity: found.identity,
        roster_phone: found.phone,
        roster_postal_kana: found.postal_kana,
        apology_letters,
        direct_mail_samples,
        possible_duplicate: model.possible_duplicate,
        claims_from_same_address: claims_from_same_address(state, claim_id).await?,
    })
}

/// Claims (this one included) started from the address this claim was
/// started from, within the burst window around it.
async fn claims_from_same_address(state: &AppState, claim_id: Uuid) -> AppResult<usize> {
    let db = state.db.conn();
    let created = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("claim.created"))
        .filter(audit_event::Column::SubjectId.eq(claim_id))
        .one(db)
        .await?;
    let Some(created) = created else { return Ok(0) };
    let Some(ip) = created.ip else { return Ok(0) };
    let window = Duration::minutes(BURST_WINDOW_MINUTES);
    let n = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("claim.created"))
        .filter(audit_event::Column::Ip.eq(ip))
        .filter(audit_event::Column::At.between(created.at - window, created.at + window))
        .count(db)
        .await?;
    Ok(n as usize)
}

/// The signals of a claim, with reasons in `lang`.
pub async fn signals_for(state: &AppState, claim_id: Uuid, lang: Lang) -> AppResult<Vec<Signal>> {
    let facts = facts(state, claim_id).await?;
    Ok(signals(&facts)
        .into_iter()
        .map(|kind| Signal { kind, weight: kind.weight(), reason: lang.t(&kind.reason_key()) })
        .collect())
}
