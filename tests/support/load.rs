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
                    .insert(&txn)
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

/// The steps of an intake, in order, as separate requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Create,
    Save,
    Sign,
    Submit,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Create => "create the claim",
            Step::Save => "save the whole draft",
            Step::Sign => "sign a document",
            Step::Submit => "submit",
        }
    }
}

/// One request of an intake; `claim` is the claim's id once created,
/// `document` the document a `Sign` step signs.
pub async fn step(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    step: Step,
    claim: &str,
    draft: &serde_json::Value,
    document: &str,
) -> Result<Option<String>, String> {
    let (request, expected) = match step {
        Step::Create => (
            http.post(format!("{base}/api/v1/claims")).json(&serde_json::json!({"case": "benesse-2014"})),
            Some(reqwest::StatusCode::CREATED),
        ),
        Step::Save => (http.put(format!("{base}/api/v1/claims/{claim}")).json(draft), None),
        Step::Sign => (
            http.post(format!("{base}/api/v1/claims/{claim}/consents"))
                .json(&serde_json::json!({"document_id": document, "signer_name": "山田 花子"})),
            Some(reqwest::StatusCode::CREATED),
        ),
        Step::Submit => (http.post(format!("{base}/api/v1/claims/{claim}/submit")), None),
    };
    let response = request.bearer_auth(token).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let ok = match expected {
        Some(code) => status == code,
        None => status.is_success(),
    };
    if !ok {
        return Err(format!("{}: {status}", step.label()));
    }
    if step == Step::Create {
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        return Ok(Some(body["id"].as_str().ok_or("no id")?.to_string()));
    }
    let _ = response.bytes().await;
    Ok(None)
}

pub async fn one_intake(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    draft: &serde_json::Value,
    documents: &[String],
    progress: &mut Progress,
) -> Result<(), String> {
    let id = step(http, base, token, Step::Create, "", draft, "").await?.ok_or("no id")?;
    progress.claim = Some(id.clone());
    step(http, base, token, Step::Save, &id, draft, "").await?;
    progress.saved = true;
    for document in documents {
        step(http, base, token, Step::Sign, &id, draft, document).await?;
        progress.signed += 1;
    }
    step(http, base, token, Step::Submit, &id, draft, "").await?;
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
