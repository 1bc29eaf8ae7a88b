//! The first published version of each consent document of `benesse-2014`.
//! Inserted once, like the case itself; administrators publish later versions.
use entities::consent_document;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set};
use uuid::Uuid;

use super::domain::{body_sha256, canonical_body, DocumentKind, FeeTerms};

const RETAINER: &str = "訴訟委任状

私（および私が法定代理人として代理する未成年者）は、本ポータルを運営する弁護団の弁護士を訴訟代理人と定め、次の事項を委任します。

1. 株式会社ベネッセコーポレーションほかを被告とする、2014年に発生した顧客情報漏えい事件に関する損害賠償請求訴訟の提起および追行に関する一切の件
2. 和解、請求の放棄・認諾、訴えの取下げ
3. 控訴、上告およびその取下げ
4. 復代理人の選任
5. 弁済の受領

私は、いつでもこの委任を取り消して訴訟から離脱できることを理解しています。";

const FEE_TERMS: &str = "弁護士報酬および費用に関する取り決め

1. 着手金はいただきません（0円）。
2. 成功報酬は、判決または和解により実際に受け取った金額の20%（消費税込み）とします。
3. 訴訟費用（印紙代・郵券）の按分額、記録の謄写などの実費は、受け取った金額から差し引きます。見込み額は原告1人あたり300円です。
4. 報酬および実費は受け取った金額からのみ差し引き、それを超えてご請求することはありません。何も受け取れなかった場合、お支払いいただくものはありません。
5. 請求額は裁判所の認容額を保証するものではありません。過去の同種事件では、1人あたり1,000円〜3,300円が認められました。";

const PRIVACY_NOTICE: &str = "個人情報の取扱いについて

1. 利用目的：訴訟の準備・提起・追行、被害者であることの確認、ご連絡、法令に基づく対応に限って利用します。
2. 提供：裁判所への提出のほかは、ご本人の同意なく第三者に提供しません。
3. 管理：個人情報は暗号化して保管し、閲覧はすべて記録され、ご本人が「私のデータへのアクセス」で確認できます。
4. ご本人の権利：保有する個人データの開示（ダウンロード）、訂正、利用停止（訴訟からの離脱）、消去をこのポータルから請求できます。
5. 消去：消去を請求されると、暗号鍵を破棄してデータを復元できない状態にし、証拠ファイルを削除します。監査記録には個人を特定しない事実のみが残ります。";

pub fn benesse_fee_terms() -> FeeTerms {
    FeeTerms {
        upfront_fee_yen: 0,
        contingency_percent: 20,
        costs_borne: vec!["訴訟費用（印紙代・郵券）の按分額".into(), "記録の謄写などの実費".into()],
        estimated_costs_per_plaintiff_yen: 300,
        deducted_from_award: true,
    }
}

/// Publish version 1 of every document for a case that has none.
pub async fn seed_documents(db: &crate::db::Db, case_id: Uuid) -> Result<(), DbErr> {
    let txn = db.begin_write().await?;
    publish_first_versions(&txn, case_id).await?;
    txn.commit().await
}

async fn publish_first_versions(db: &impl ConnectionTrait, case_id: Uuid) -> Result<(), DbErr> {
    let existing =
        consent_document::Entity::find().filter(consent_document::Column::CaseId.eq(case_id)).count(db).await?;
    if existing > 0 {
        return Ok(());
    }
    let docs = [
        (DocumentKind::Retainer, "訴訟委任状", RETAINER, None),
        (DocumentKind::FeeTerms, "弁護士報酬・費用に関する取り決め", FEE_TERMS, Some(benesse_fee_terms())),
        (DocumentKind::PrivacyNotice, "個人情報の取扱い（利用目的）", PRIVACY_NOTICE, None),
    ];
    let now = chrono::Utc::now();
    let rows: Vec<consent_document::ActiveModel> = docs
        .into_iter()
        .map(|(kind, title, body, fee_terms)| {
            let body = canonical_body(body);
            consent_document::ActiveModel {
                id: Set(Uuid::new_v4()),
                case_id: Set(case_id),
                kind: Set(kind.as_str().into()),
                version: Set(1),
                // Stored as the publishing form would store it (NFKC).
                title: Set(crate::domain::normalise(title)),
                sha256: Set(body_sha256(&body)),
                body: Set(body),
                fee_terms: Set(fee_terms.map(|t| serde_json::to_value(t).unwrap_or_default())),
                published_at: Set(now),
                published_by: Set(None),
            }
        })
        .collect();
    consent_document::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}
