//! A synthetic frozen round for the export benchmark: claimants with a
//! child each (two plaintiffs a claim), evidence files uploaded through the
//! real upload path (sealed in the store), claims verified, and the round
//! frozen with plaintiff numbers. The plaintext files are also written to a
//! directory, so a plain `zip -0` of the same bytes can be timed beside it.
use std::path::Path;

use entities::{claim, filing_round, round_member, tier_policy};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::auth::{CurrentUser, Role};
use crate::claims::domain::{ClaimStatus, DraftInput};
use crate::error::{AppError, AppResult};
use crate::evidence::domain::EvidenceKind;
use crate::AppState;

/// One synthetic file: a valid JPEG of `len` bytes whose content differs per `seed`.
pub fn jpeg(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0]);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len.saturating_sub(2) {
        // xorshift: incompressible bytes, like a photo; never 0xFF (no markers).
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend(x.to_le_bytes().iter().map(|b| if *b == 0xFF { 0xFE } else { *b }));
    }
    out.truncate(len.saturating_sub(2));
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Make the round. Returns its id.
pub async fn seed_round(
    state: &AppState,
    case_slug: &str,
    plaintiffs: u64,
    files: u64,
    file_bytes: usize,
    plain_dir: &Path,
    mut progress: impl FnMut(u64),
) -> AppResult<Uuid> {
    let case = state.cases.by_slug(state.db.conn(), case_slug).await?;
    let claims = plaintiffs.div_ceil(2).max(1);
    let per_claim = files.div_ceil(claims);
    std::fs::create_dir_all(plain_dir).map_err(io)?;
    let input = template_draft()?;
    let round_id = insert_frozen_round(state, case.model.id).await?;
    let mut plaintiff = 0u64;
    let mut written = 0u64;
    for c in 0..claims {
        let user = synthetic_claimant(state, round_id, c).await?;
        let claim = crate::intake::service::create_claim(state, &user, case_slug).await?;
        crate::intake::service::replace_draft(state, &user, claim.id, &input).await?;
        for f in 0..per_claim.min(files - written) {
            let bytes = jpeg(file_bytes, written);
            std::fs::write(plain_dir.join(format!("{written:06}.jpg")), &bytes).map_err(io)?;
            let kind = if f == 0 { EvidenceKind::ApologyLetter } else { EvidenceKind::DirectMail };
            let size = bytes.len() as u64;
            let mut reader = std::io::Cursor::new(bytes);
            crate::evidence::service::upload(state, &user, claim.id, kind, Some(size), &mut reader, None).await?;
            written += 1;
        }
        claim::Entity::update_many()
            .col_expr(claim::Column::Status, Expr::value(ClaimStatus::Verified.as_str()))
            .col_expr(claim::Column::SubmittedAt, Expr::value(Some(state.clock.now())))
            .filter(claim::Column::Id.eq(claim.id))
            .exec(state.db.conn())
            .await?;
        for position in 0..2.min(plaintiffs - plaintiff) as i32 {
            plaintiff += 1;
            add_member(state, round_id, plaintiff as i32, claim.id, position).await?;
        }
        progress(c + 1);
    }
    Ok(round_id)
}

fn io(e: std::io::Error) -> AppError {
    AppError::caused_by("synthetic round", e)
}

/// The draft every synthetic claim has: a parent and a child.
fn template_draft() -> AppResult<DraftInput> {
    let template = serde_json::json!({
        "persons": [
            {"relation": "self", "family_name": "山田", "given_name": "花子", "family_name_kana": "やまだ",
             "given_name_kana": "はなこ", "birth_date": "1980-05-05", "gender": "female"},
            {"relation": "child", "family_name": "山田", "given_name": "一郎", "family_name_kana": "やまだ",
             "given_name_kana": "いちろう", "birth_date": "2012-04-02", "gender": "male"}
        ],
        "address": {"postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区", "line1": "千代田1-1", "line2": ""},
        "phone": "090-1234-5678",
        "leaked_items": ["name", "address", "phone", "birth_date", "expected_delivery_date"],
        "services": ["shinkenzemi"],
        "apology_letter_received": true,
        "registration_code": "AB12-CD34",
        "apology_option": "book_card_500",
        "learned_of_leak_on": "2014-07-10",
        "harms": [{"kind": "direct_mail", "date": "2014-08-01", "sender": "某社", "note": ""}]
    });
    serde_json::from_value(template).map_err(|e| AppError::caused_by("synthetic round", e))
}

/// A frozen round filed today, with the default tier policy.
async fn insert_frozen_round(state: &AppState, case_id: Uuid) -> AppResult<Uuid> {
    let round_id = Uuid::new_v4();
    let today = state.clock.today();
    filing_round::Entity::insert(filing_round::ActiveModel {
        id: Set(round_id),
        case_id: Set(case_id),
        number: Set(1000 + (state.clock.now().timestamp() % 100_000) as i32),
        name: Set("ベンチマーク提訴".into()),
        court: Set("東京地方裁判所".into()),
        cut_off: Set(today),
        filing_date: Set(today),
        state: Set("frozen".into()),
        result_sha256: Set(Some("synthetic".into())),
        created_at: Set(state.clock.now()),
        frozen_at: Set(Some(state.clock.now())),
        frozen_by: Set(None),
    })
    .exec_without_returning(state.db.conn())
    .await?;
    let policy = serde_json::to_string(&super::domain::benesse_default_policy()).unwrap_or_default();
    tier_policy::Entity::insert(tier_policy::ActiveModel {
        id: Set(Uuid::new_v4()),
        round_id: Set(round_id),
        version: Set(1),
        body: Set(policy),
        sha256: Set("synthetic".into()),
        created_at: Set(state.clock.now()),
        created_by: Set(None),
    })
    .exec_without_returning(state.db.conn())
    .await?;
    Ok(round_id)
}

/// The `n`th synthetic claimant's account, signed in as far as the
/// services need.
async fn synthetic_claimant(state: &AppState, round_id: Uuid, n: u64) -> AppResult<CurrentUser> {
    let user_id = Uuid::new_v4();
    let email =
        crate::domain::Email::parse(&format!("bench{n}-{}@example.invalid", &round_id.simple().to_string()[..6]))
            .map_err(|_| AppError::internal("bench e-mail"))?;
    let row = crate::auth::service::new_user_row(
        &state.keys,
        user_id,
        &email,
        state.dummy_hash.clone(),
        Role::Claimant,
        state.clock.now(),
    );
    entities::user::Entity::insert(row).exec_without_returning(state.db.conn()).await?;
    Ok(CurrentUser {
        id: user_id,
        role: Role::Claimant,
        session_id: Uuid::nil(),
        ip: None,
        via_cookie: false,
        mfa: false,
        must_change_password: false,
        reauthenticated_at: None,
        // `new_user_row` makes an account whose address is proven.
        email_confirmed: true,
    })
}

async fn add_member(state: &AppState, round_id: Uuid, number: i32, claim_id: Uuid, position: i32) -> AppResult<()> {
    round_member::Entity::insert(round_member::ActiveModel {
        round_id: Set(round_id),
        plaintiff_number: Set(number),
        claim_id: Set(claim_id),
        position: Set(position),
        tier: Set("B".into()),
        amount_yen: Set(55_000),
        points: Set(12),
        reasons: Set("[]".into()),
        limitation_ended_on: Set(None),
    })
    .exec_without_returning(state.db.conn())
    .await?;
    Ok(())
}
