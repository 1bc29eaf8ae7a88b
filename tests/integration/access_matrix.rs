//! Deny by default (S6): every mounted route must appear in this matrix, and
//! every route is called by every kind of caller (anonymous, claimant, lawyer
//! and administrator each with and without the second factor) on their own
//! objects and on someone else's, and must answer as the matrix says.
use app::auth::Role;
use portal::{complete_draft, spawn_app, spawn_app_with, ApiClient, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// Who may call a route at all (object-level checks come on top).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Access {
    Public,
    SignedIn,
    Claimant,
    /// Lawyers and administrators who passed the second factor (claimants
    /// get 404, staff without it are sent to it).
    Staff,
    /// Lawyers and administrators, second factor or not: enrolling and
    /// checking it.
    StaffSigningIn,
    /// The claim's owner, or staff working on its case.
    ClaimantOrStaff,
    Admin,
}

pub(crate) const MATRIX: &[(&str, &str, Access)] = &[
    ("GET", "/", Access::Public),
    ("GET", "/health", Access::Public),
    ("GET", "/static/app.css", Access::Public),
    ("GET", "/static/upload.js", Access::Public),
    ("GET", "/static/progress.js", Access::Public),
    ("GET", "/static/icon.svg", Access::Public),
    ("GET", "/favicon.ico", Access::Public),
    ("POST", "/lang", Access::Public),
    ("GET", "/login", Access::Public),
    ("POST", "/login", Access::Public),
    ("GET", "/register", Access::Public),
    ("POST", "/register", Access::Public),
    ("POST", "/logout", Access::SignedIn),
    ("GET", "/confirm", Access::Public),
    ("POST", "/me/confirmation", Access::SignedIn),
    ("GET", "/account/password", Access::SignedIn),
    ("POST", "/account/password", Access::SignedIn),
    ("POST", "/admin/users/<user_id>/disabled", Access::Admin),
    ("POST", "/admin/users/<user_id>/sessions/end", Access::Admin),
    ("POST", "/claims", Access::Claimant),
    ("GET", "/claims/<id>", Access::Claimant),
    ("GET", "/claims/<id>/<step>", Access::Claimant),
    ("POST", "/claims/<id>/identity", Access::Claimant),
    ("POST", "/claims/<id>/contact", Access::Claimant),
    ("POST", "/claims/<id>/household", Access::Claimant),
    ("POST", "/claims/<id>/household/<index>/remove", Access::Claimant),
    ("POST", "/claims/<id>/leak", Access::Claimant),
    ("POST", "/claims/<id>/harms", Access::Claimant),
    ("POST", "/claims/<id>/harms/<index>/remove", Access::Claimant),
    ("POST", "/claims/<id>/submit", Access::Claimant),
    ("POST", "/claims/<id>/withdraw", Access::Claimant),
    ("POST", "/claims/<id>/evidence", Access::Claimant),
    ("GET", "/claims/<_id>/evidence/<evidence>", Access::ClaimantOrStaff),
    ("POST", "/claims/<id>/evidence/<evidence>/delete", Access::Claimant),
    ("POST", "/claims/<id>/consent/<document>", Access::Claimant),
    ("GET", "/claims/<id>/consent/receipt", Access::Claimant),
    ("GET", "/me", Access::Claimant),
    ("POST", "/me/preferences", Access::SignedIn),
    ("GET", "/me/export.zip", Access::Claimant),
    ("POST", "/me/erase", Access::Claimant),
    ("GET", "/admin", Access::Admin),
    ("GET", "/admin/cases/<slug>/documents", Access::Admin),
    ("POST", "/admin/cases/<slug>/documents", Access::Admin),
    ("POST", "/api/v1/auth/register", Access::Public),
    ("POST", "/api/v1/auth/login", Access::Public),
    ("POST", "/api/v1/auth/logout", Access::SignedIn),
    ("POST", "/api/v1/auth/confirm", Access::Public),
    ("POST", "/api/v1/me/confirmation", Access::SignedIn),
    ("PUT", "/api/v1/me/password", Access::SignedIn),
    ("PUT", "/api/v1/admin/users/<id>/disabled", Access::Admin),
    ("POST", "/api/v1/admin/users/<id>/sessions/end", Access::Admin),
    ("GET", "/api/v1/me", Access::SignedIn),
    ("POST", "/api/v1/auth/totp/setup", Access::StaffSigningIn),
    ("POST", "/api/v1/auth/totp/verify", Access::StaffSigningIn),
    ("GET", "/api/v1/cases", Access::Public),
    ("POST", "/api/v1/claims", Access::Claimant),
    ("GET", "/api/v1/claims", Access::Claimant),
    ("GET", "/api/v1/claims/<id>", Access::Claimant),
    ("PUT", "/api/v1/claims/<id>", Access::Claimant),
    ("POST", "/api/v1/claims/<id>/submit", Access::Claimant),
    ("POST", "/api/v1/claims/<id>/withdraw", Access::Claimant),
    ("GET", "/api/v1/admin/audit/verify", Access::Admin),
    ("POST", "/api/v1/claims/<id>/evidence", Access::Claimant),
    ("GET", "/api/v1/claims/<id>/evidence", Access::ClaimantOrStaff),
    ("GET", "/api/v1/evidence/<id>/content", Access::ClaimantOrStaff),
    ("DELETE", "/api/v1/evidence/<id>", Access::Claimant),
    ("GET", "/api/v1/openapi.json", Access::Public),
    ("PUT", "/api/v1/claims/<id>/identity", Access::Claimant),
    ("GET", "/api/v1/cases/<slug>/documents", Access::Public),
    ("POST", "/api/v1/claims/<id>/consents", Access::Claimant),
    ("GET", "/api/v1/claims/<id>/consents", Access::Claimant),
    ("POST", "/api/v1/admin/cases/<slug>/documents", Access::Admin),
    ("GET", "/api/v1/admin/cases/<slug>/documents", Access::Admin),
    ("GET", "/api/v1/me/preferences", Access::SignedIn),
    ("PUT", "/api/v1/me/preferences", Access::SignedIn),
    ("GET", "/api/v1/me/access-log", Access::Claimant),
    ("GET", "/api/v1/me/access-log/<seq>/proof", Access::Claimant),
    ("GET", "/api/v1/me/export", Access::Claimant),
    ("GET", "/api/v1/me/export.zip", Access::Claimant),
    ("POST", "/api/v1/me/erase", Access::Claimant),
    ("GET", "/staff/second-factor", Access::StaffSigningIn),
    ("POST", "/staff/second-factor/setup", Access::StaffSigningIn),
    ("POST", "/staff/second-factor", Access::StaffSigningIn),
    ("GET", "/review", Access::Staff),
    ("POST", "/review/bulk-verify", Access::Staff),
    ("GET", "/review/claims/<id>", Access::Staff),
    ("POST", "/review/claims/<id>/decision", Access::Staff),
    ("POST", "/review/claims/<id>/notes", Access::Staff),
    ("POST", "/review/claims/<id>/assignee", Access::Staff),
    ("GET", "/admin/cases/<slug>/members", Access::Admin),
    ("POST", "/admin/cases/<slug>/members", Access::Admin),
    ("POST", "/admin/cases/<slug>/members/<user_id>/remove", Access::Admin),
    ("POST", "/admin/cases/<slug>/policy", Access::Admin),
    ("GET", "/admin/alerts", Access::Admin),
    ("POST", "/admin/alerts/<id>/acknowledge", Access::Admin),
    ("GET", "/api/v1/review/claims", Access::Staff),
    ("GET", "/api/v1/review/claims/<id>", Access::Staff),
    ("POST", "/api/v1/review/claims/<id>/decision", Access::Staff),
    ("POST", "/api/v1/review/claims/<id>/notes", Access::Staff),
    ("PUT", "/api/v1/review/claims/<id>/assignee", Access::Staff),
    ("POST", "/api/v1/review/bulk-verify", Access::Staff),
    ("GET", "/api/v1/admin/cases/<slug>/members", Access::Admin),
    ("POST", "/api/v1/admin/cases/<slug>/members", Access::Admin),
    ("DELETE", "/api/v1/admin/cases/<slug>/members/<user_id>", Access::Admin),
    ("PUT", "/api/v1/admin/cases/<slug>/policy", Access::Admin),
    ("GET", "/api/v1/admin/alerts", Access::Admin),
    ("POST", "/api/v1/admin/alerts/<id>/acknowledge", Access::Admin),
    ("POST", "/api/v1/admin/cases/<slug>/rounds", Access::Admin),
    ("GET", "/api/v1/admin/cases/<slug>/rounds", Access::Admin),
    ("GET", "/api/v1/admin/rounds/<id>", Access::Admin),
    ("PUT", "/api/v1/admin/rounds/<id>/policy", Access::Admin),
    ("POST", "/api/v1/admin/rounds/<id>/compute", Access::Admin),
    ("POST", "/api/v1/admin/rounds/<id>/freeze", Access::Admin),
    ("POST", "/api/v1/admin/rounds/<id>/filed", Access::Admin),
    ("GET", "/api/v1/admin/rounds/<id>/members", Access::Admin),
    ("POST", "/api/v1/admin/rounds/<id>/exports", Access::Admin),
    ("GET", "/api/v1/admin/rounds/<id>/exports", Access::Admin),
    ("GET", "/api/v1/admin/exports/<id>", Access::Admin),
    ("GET", "/api/v1/admin/exports/<id>/download", Access::Admin),
    ("POST", "/api/v1/auth/reauth", Access::SignedIn),
    ("GET", "/admin/cases/<slug>/rounds", Access::Admin),
    ("POST", "/admin/cases/<slug>/rounds", Access::Admin),
    ("GET", "/admin/rounds/<id>", Access::Admin),
    ("POST", "/admin/rounds/<id>/policy", Access::Admin),
    ("POST", "/admin/rounds/<id>/compute", Access::Admin),
    ("POST", "/admin/rounds/<id>/freeze", Access::Admin),
    ("POST", "/admin/rounds/<id>/filed", Access::Admin),
    ("POST", "/admin/rounds/<id>/exports", Access::Admin),
    ("POST", "/admin/exports/<id>/download", Access::Admin),
];

fn concrete(path: &str) -> String {
    path.replace("<id>", &uuid::Uuid::new_v4().to_string())
        .replace("<_id>", &uuid::Uuid::new_v4().to_string())
        .replace("<evidence>", &uuid::Uuid::new_v4().to_string())
        .replace("<document>", &uuid::Uuid::new_v4().to_string())
        .replace("<user_id>", &uuid::Uuid::new_v4().to_string())
        .replace("<slug>", "benesse-2014")
        .replace("<step>", "identity")
        .replace("<index>", "1")
        .replace("<seq>", "1")
}

#[tokio::test]
async fn every_route_is_in_the_access_matrix_and_protected_ones_refuse_anonymous_callers() {
    let app = spawn_app().await;
    // Each capability mounts its routes at ignition (its `stage()` fairing).
    let rocket = app::build(portal::test_figment("sqlite::memory:", app.data_dir.path()))
        .ignite()
        .await
        .expect("the app ignites");
    let mounted: Vec<(String, String)> =
        rocket.routes().map(|r| (r.method.as_str().to_string(), r.uri.path().to_string())).collect();
    let unlisted: Vec<_> =
        mounted.iter().filter(|(m, p)| !MATRIX.iter().any(|(mm, pp, _)| mm == m && pp == p)).collect();
    assert!(unlisted.is_empty(), "routes missing from the access matrix: {unlisted:?}");
    let stale: Vec<_> = MATRIX.iter().filter(|(m, p, _)| !mounted.iter().any(|(mm, pp)| mm == m && pp == p)).collect();
    assert!(stale.is_empty(), "matrix rows with no route: {stale:?}");

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (method, path, access) in MATRIX {
        if *access == Access::Public {
            continue;
        }
        let url = format!("{}{}", app.address, concrete(path));
        let req = http.request(method.parse().unwrap(), &url);
        let req = if *method == "GET" { req } else { req.header("Content-Type", "application/json").body("{}") };
        let res = req.send().await.unwrap();
        if path.starts_with("/api/") {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        } else {
            let to_login = res.status().is_redirection()
                && res.headers().get("location").is_some_and(|l| l.to_str().unwrap_or_default().ends_with("/login"));
            assert!(to_login, "{method} {path}: {}", res.status());
        }
    }
}

/// The kinds of caller every route is tried with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Claimant,
    LawyerWithoutSecondFactor,
    Lawyer,
    AdminWithoutSecondFactor,
    Admin,
}

const CALLERS: [Caller; 5] = [
    Caller::Claimant,
    Caller::LawyerWithoutSecondFactor,
    Caller::Lawyer,
    Caller::AdminWithoutSecondFactor,
    Caller::Admin,
];

/// How a call ended, as far as access control goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// Past access control (whatever the handler then said: 2xx, 409, 422…).
    Allowed,
    /// 404: the route or the object does not exist for this caller.
    NotFound,
    /// Sent to the second factor: `second_factor_required`, or a redirect to its page.
    SecondFactor,
}

fn expected(access: Access, caller: Caller) -> Answer {
    use Caller::*;
    let staff_without = matches!(caller, LawyerWithoutSecondFactor | AdminWithoutSecondFactor);
    match access {
        Access::Public | Access::SignedIn => Answer::Allowed,
        Access::Claimant if caller == Claimant => Answer::Allowed,
        Access::Claimant => Answer::NotFound,
        Access::ClaimantOrStaff | Access::Staff if staff_without => Answer::SecondFactor,
        Access::ClaimantOrStaff => Answer::Allowed,
        Access::Staff | Access::StaffSigningIn if caller == Claimant => Answer::NotFound,
        Access::Staff | Access::StaffSigningIn => Answer::Allowed,
        Access::Admin if caller == Admin => Answer::Allowed,
        Access::Admin if caller == AdminWithoutSecondFactor => Answer::SecondFactor,
        Access::Admin => Answer::NotFound,
    }
}

/// The objects a path's parameters are filled with.
#[derive(Clone)]
struct Objects {
    claim: String,
    evidence: String,
    round: String,
    export: String,
    alert: String,
    document: String,
    member: String,
}

impl Objects {
    fn fill(&self, path: &str) -> String {
        let id = if path.contains("/evidence/<id>") {
            &self.evidence
        } else if path.contains("/rounds/<id>") {
            &self.round
        } else if path.contains("/exports/<id>") {
            &self.export
        } else if path.contains("/alerts/<id>") {
            &self.alert
        } else if path.contains("/users/<id>") {
            &self.member
        } else {
            &self.claim
        };
        path.replace("<id>", id)
            .replace("<_id>", &self.claim)
            .replace("<evidence>", &self.evidence)
            .replace("<document>", &self.document)
            .replace("<user_id>", &self.member)
            .replace("<slug>", "benesse-2014")
            .replace("<step>", "identity")
            .replace("<index>", "0")
    }
}

/// Call `path` as `caller` (bearer token, JSON `{}` for a body, no
/// redirects followed) and classify the answer.
async fn call(client: &ApiClient, method: &str, path: &str) -> (Answer, StatusCode) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = http.request(method.parse().unwrap(), format!("{}{path}", client.base));
    if let Some(token) = &client.token {
        req = req.bearer_auth(token);
    }
    if method != "GET" {
        req = req.header("Content-Type", "application/json").body("{}");
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let location = res.headers().get("location").map(|l| l.to_str().unwrap_or_default().to_string());
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}: the session was lost");
    let answer = match (status, body["error"]["code"].as_str(), location.as_deref()) {
        (_, Some("second_factor_required"), _) => Answer::SecondFactor,
        (s, _, Some(l)) if s.is_redirection() && l.ends_with("/staff/second-factor") => Answer::SecondFactor,
        (s, _, Some(l)) if s.is_redirection() && l.ends_with("/login") => panic!("{method} {path}: sent to sign in"),
        (StatusCode::NOT_FOUND, _, _) => Answer::NotFound,
        _ => Answer::Allowed,
    };
    (answer, status)
}

/// Routes that end the caller's session or take its objects away go last.
fn walk_order() -> Vec<&'static (&'static str, &'static str, Access)> {
    let mut rows: Vec<_> = MATRIX.iter().collect();
    rows.sort_by_key(|(method, path, _)| {
        if path.contains("logout") {
            2
        } else if *method == "DELETE" || path.ends_with("/remove") || path.ends_with("/withdraw") {
            1
        } else {
            0
        }
    });
    rows
}

/// A claimant's claim with one photo, submitted or left as a draft.
async fn claim_with_photo(app: &TestApp, email: &str, submit: bool) -> (ApiClient, String, String) {
    let claimant = app.claimant(email).await;
    let claim =
        claimant.post("/claims", json!({"case": "benesse-2014"})).await.body["id"].as_str().unwrap().to_string();
    claimant.put(&format!("/claims/{claim}"), complete_draft("やまだ", "1980-05-05")).await;
    let photo = app::evidence::jpeg::fixtures::plain_jpeg(2_000);
    let up = claimant.upload(&format!("/claims/{claim}/evidence"), "apology_letter", photo, "letter.jpg", None).await;
    assert_eq!(up.status, StatusCode::CREATED, "{:?}", up.body);
    let evidence = up.body["id"].as_str().unwrap().to_string();
    if submit {
        claimant.sign_all(&claim).await;
        let r = claimant.post(&format!("/claims/{claim}/submit"), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    (claimant, claim, evidence)
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_the_matrix_says_on_their_own_objects_and_on_others() {
    use sea_orm::ActiveModelTrait;
    let app = spawn_app_with(|f| f.merge(("login_attempts_per_ip_per_minute", 10_000))).await;
    let db = app.db().await;

    // The callers, and a spare lawyer whose membership the admin routes may remove.
    let (claimant, claim, evidence) = claim_with_photo(&app, "hanako@example.jp", true).await;
    let (_, other_claim, other_evidence) = claim_with_photo(&app, "taro@example.jp", false).await;
    let (lawyer, _) = app.staff_verified("lawyer@example.jp", Role::Lawyer).await;
    let lawyer_without = app.staff("lawyer2@example.jp", Role::Lawyer).await;
    let (outsider, _) = app.staff_verified("outsider@example.jp", Role::Lawyer).await;
    let spare = app.staff("spare@example.jp", Role::Lawyer).await;
    for email in ["lawyer@example.jp", "lawyer2@example.jp", "spare@example.jp"] {
        app.add_to_case(email).await;
    }
    let (admin, _) = app.staff_verified("admin2@example.jp", Role::Admin).await;
    let admin_without = app.staff("admin3@example.jp", Role::Admin).await;

    // The objects: a verified claim in a frozen round with a bundle, an open alert.
    let verified = lawyer.post(&format!("/review/claims/{claim}/decision"), json!({"decision": "verify"})).await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
    let round = app.open_round(&admin).await;
    assert_eq!(admin.post(&format!("/admin/rounds/{round}/freeze"), json!({})).await.status, StatusCode::OK);
    let started = admin.post(&format!("/admin/rounds/{round}/exports"), json!({})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let alert = entities::alert::Model {
        id: uuid::Uuid::new_v4(),
        kind: "cap.claim_views".into(),
        user_id: None,
        detail: "{}".into(),
        created_at: app.clock.now(),
        acknowledged_at: None,
        acknowledged_by: None,
    };
    entities::alert::ActiveModel::from(alert.clone()).insert(&db).await.unwrap();
    let documents = app.api().get("/cases/benesse-2014/documents").await.body;
    let own = Objects {
        claim: claim.clone(),
        evidence: evidence.clone(),
        round,
        export: started.body["id"].as_str().unwrap().to_string(),
        alert: alert.id.to_string(),
        document: documents[0]["id"].as_str().expect("a consent document").to_string(),
        member: spare.get("/me").await.body["id"].as_str().unwrap().to_string(),
    };
    let others = Objects { claim: other_claim, evidence: other_evidence, ..own.clone() };

    let client = |caller: Caller| match caller {
        Caller::Claimant => &claimant,
        Caller::LawyerWithoutSecondFactor => &lawyer_without,
        Caller::Lawyer => &lawyer,
        Caller::AdminWithoutSecondFactor => &admin_without,
        Caller::Admin => &admin,
    };
    let mut wrong = Vec::new();
    for (method, path, access) in walk_order() {
        if *access == Access::Public {
            continue;
        }
        let touches_claims = path.contains("<id>") || path.contains("<_id>") || path.contains("<evidence>");
        let personal = matches!(access, Access::Claimant | Access::ClaimantOrStaff | Access::Staff)
            && touches_claims
            && !path.contains("/rounds/")
            && !path.contains("/exports/")
            && !path.contains("/alerts/");
        for caller in CALLERS {
            // Someone else's: another claimant's claim, or a claim in a case the lawyer is not on.
            if personal {
                let (stranger, objects) = match caller {
                    Caller::Claimant => (&claimant, &others),
                    Caller::Lawyer => (&outsider, &own),
                    _ => (client(caller), &others),
                };
                let concrete = objects.fill(path);
                let (answer, status) = call(stranger, method, &concrete).await;
                if status.is_success() || (status.is_redirection() && answer == Answer::Allowed) {
                    wrong.push(format!("{method} {path} as {caller:?} on another's object: {status}"));
                }
            }
            let concrete = own.fill(path);
            let (answer, status) = call(client(caller), method, &concrete).await;
            let want = expected(*access, caller);
            if answer != want {
                wrong.push(format!("{method} {path} as {caller:?}: {answer:?} ({status}), the matrix says {want:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{} answers differ from the matrix:\n{}", wrong.len(), wrong.join("\n"));
}
