//! Load for the intake benchmark and the crash test that kills the server
//! in the middle of it: claimants with open sessions (no argon2), complete
//! intakes over the API (create, fill, sign the three documents, submit).
use sea_orm::ActiveModelTrait;
use uuid::Uuid;

/// How far an intake got: what the server acknowledged.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub claim: Option<String>,
    pub saved: bool,
    pub signed: usize,
    pub submitted: bool,
}

/// The ids of the case's consent documents, to sign.
pub async fn documents(http: &reqwest::Client, base: &str) -> Vec<String> {
    let documents: serde_json::Value = http
        .get(format!("{base}/api/v1/cases/benesse-2014/documents"))
        .send()
        .await
        .expect("documents")
        .json()
        .await
        .expect("documents json");
    documents.as_array().expect("a list").iter().filter_map(|d| d["id"].as_str().map(str::to_string)).collect()
}

/// Create `n` claimants and open a session for each, without argon2 (the
/// password step is not what this benchmark measures).
pub async fn claimant_tokens(state: &app::AppState, n: usize) -> Vec<String> {
    let hash = app::auth::service::dummy_hash();
    let now = state.clock.now();
    let mut tokens = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let txn = state.db.begin_write().await.expect("begin");
        for i in chunk {
            let id = Uuid::new_v4();
            let email = app::domain::Email::parse(&format!("bench{i}-{}@example.jp", id.simple())).expect("email");
            let user =
                app::auth::service::new_user_row(&state.keys, id, &email, hash.clone(), app::auth::Role::Claimant, now)
                    .insert(&*txn)
                    .await
                    .expect("user");
            let session =
                app::auth::service::open_session(state, &txn, &Default::default(), &user, app::auth::Role::Claimant)
                    .await
                    .expect("session");
            tokens.push(session.token);
        }
        txn.commit().await.expect("commit");
    }
    tokens
}

pub async fn one_intake(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    draft: &serde_json::Value,
    documents: &[String],
    progress: &mut Progress,
) -> Result<(), String> {
    let created = http
        .post(format!("{base}/api/v1/claims"))
        .bearer_auth(token)
        .json(&serde_json::json!({"case": "benesse-2014"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if created.status() != reqwest::StatusCode::CREATED {
        return Err(format!("create: {}", created.status()));
    }
    let body: serde_json::Value = created.json().await.map_err(|e| e.to_string())?;
    let id = body["id"].as_str().ok_or("no id")?.to_string();
    progress.claim = Some(id.clone());
    let saved = http
        .put(format!("{base}/api/v1/claims/{id}"))
        .bearer_auth(token)
        .json(draft)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !saved.status().is_success() {
        return Err(format!("save: {}", saved.status()));
    }
    let _ = saved.bytes().await;
    progress.saved = true;
    for document in documents {
        let signed = http
            .post(format!("{base}/api/v1/claims/{id}/consents"))
            .bearer_auth(token)
            .json(&serde_json::json!({"document_id": document, "signer_name": "山田 花子"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if signed.status() != reqwest::StatusCode::CREATED {
            return Err(format!("sign: {}", signed.status()));
        }
        let _ = signed.bytes().await;
        progress.signed += 1;
    }
    let submitted = http
        .post(format!("{base}/api/v1/claims/{id}/submit"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !submitted.status().is_success() {
        return Err(format!("submit: {}", submitted.status()));
    }
    let _ = submitted.bytes().await;
    progress.submitted = true;
    Ok(())
}

/// A complete draft whose people are nobody else's (distinct birth dates),
/// as in real intake, where possible duplicates are rare.
pub fn distinct_draft(i: usize) -> serde_json::Value {
    let day = |base: (i32, u32, u32), offset: usize| {
        let d = chrono::NaiveDate::from_ymd_opt(base.0, base.1, base.2).unwrap_or_default()
            + chrono::Duration::days(offset as i64);
        d.to_string()
    };
    let mut draft = crate::complete_draft("やまだ", &day((1950, 1, 1), i % 15_000));
    draft["persons"][1]["birth_date"] = serde_json::json!(day((1995, 1, 1), i % 9_000));
    draft
}
