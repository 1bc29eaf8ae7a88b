//! Deny by default (S6): every mounted route must appear in this matrix,
//! and every route that is not public must refuse a caller without a session.
use portal::spawn_app;
use reqwest::StatusCode;

/// Who may call a route at all (object-level checks come on top).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    Public,
    SignedIn,
    Claimant,
    /// Lawyers and administrators (claimants get 404).
    Staff,
    /// The claim's owner, or staff working on its case.
    ClaimantOrStaff,
    Admin,
}

const MATRIX: &[(&str, &str, Access)] = &[
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
    ("GET", "/api/v1/me", Access::SignedIn),
    ("POST", "/api/v1/auth/totp/setup", Access::SignedIn),
    ("POST", "/api/v1/auth/totp/verify", Access::SignedIn),
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
    ("GET", "/api/v1/me/export", Access::Claimant),
    ("GET", "/api/v1/me/export.zip", Access::Claimant),
    ("POST", "/api/v1/me/erase", Access::Claimant),
    ("GET", "/staff/second-factor", Access::Staff),
    ("POST", "/staff/second-factor/setup", Access::Staff),
    ("POST", "/staff/second-factor", Access::Staff),
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
}

#[tokio::test]
async fn every_route_is_in_the_access_matrix_and_protected_ones_refuse_anonymous_callers() {
    let app = spawn_app().await;
    let rocket = app::build(portal::test_figment("sqlite::memory:", app.data_dir.path()));
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

#[tokio::test]
async fn staff_cannot_use_claimant_routes_and_claimants_cannot_use_admin_routes() {
    let app = spawn_app().await;
    let lawyer = app.staff("lawyer@example.jp", app::auth::Role::Lawyer).await;
    let r = lawyer.post("/claims", serde_json::json!({"case": "benesse-2014"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let claimant = app.claimant("hanako@example.jp").await;
    for (method, path, access) in MATRIX {
        if matches!(access, Access::Admin | Access::Staff) && path.starts_with("/api/v1") {
            let path = concrete(path.trim_start_matches("/api/v1"));
            let r = claimant.call(method.parse().unwrap(), &path, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
        }
    }
}
