//! Request guards: who is calling (Bearer token or session cookie), from
//! which address, and the CSRF token of a browser.
use std::net::IpAddr;

use rocket::http::{Cookie, Method, SameSite, Status};
use rocket::request::{FromRequest, Outcome, Request};
use uuid::Uuid;

use super::service;
use super::Role;
use crate::audit::Actor;
use crate::crypto::constant_time_eq;
use crate::error::AppError;
use crate::AppState;

pub const SESSION_COOKIE: &str = "session";
const CSRF_COOKIE: &str = "csrf_seed";

/// A cookie's name as the browser keeps it: behind TLS with the `__Host-`
/// prefix, which a browser accepts only from this host, over HTTPS, for
/// the whole site (S4).
pub fn cookie_name(base: &'static str, secure: bool) -> &'static str {
    match (base, secure) {
        (SESSION_COOKIE, true) => "__Host-session",
        (CSRF_COOKIE, true) => "__Host-csrf_seed",
        (name, _) => name,
    }
}

/// The client address: as the socket saw it, or, when the peer is one of
/// the operator's trusted proxies (`APP_TRUSTED_PROXIES`), the nearest
/// address in `X-Forwarded-For` that is not a trusted proxy itself.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(ClientIp(client_ip(req)))
    }
}

/// See [`ClientIp`]. Per-address limits, the audit trail and the burst
/// signal all take the address from here.
pub fn client_ip(req: &Request<'_>) -> Option<IpAddr> {
    let trusted = req.rocket().state::<AppState>().map(|s| s.settings.trusted_proxies.as_slice()).unwrap_or(&[]);
    let peer = req.client_ip();
    match peer {
        Some(ip) if trusted.iter().any(|net| net.contains(&ip)) => {
            forwarded_client(req.headers().get("X-Forwarded-For"), trusted).or(peer)
        }
        _ => peer,
    }
}

/// The rightmost address in the `X-Forwarded-For` values that no trusted
/// proxy holds: each proxy appends the address it received from.
fn forwarded_client<'a>(values: impl Iterator<Item = &'a str>, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let hops: Vec<IpAddr> = values.flat_map(|v| v.split(',')).filter_map(|h| h.trim().parse().ok()).collect();
    hops.into_iter().rev().find(|ip| !trusted.iter().any(|net| net.contains(ip)))
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;

    #[test]
    fn the_client_is_the_nearest_hop_no_trusted_proxy_holds() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let one = |v: &'static str| forwarded_client(std::iter::once(v), &trusted).map(|ip| ip.to_string());
        assert_eq!(one("203.0.113.5").as_deref(), Some("203.0.113.5"));
        // A client may send its own header; only what our proxies appended counts.
        assert_eq!(one("198.51.100.1, 203.0.113.5, 10.0.0.2").as_deref(), Some("203.0.113.5"));
        assert_eq!(one("10.0.0.3").as_deref(), None);
        assert_eq!(one("not an address").as_deref(), None);
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
    pub ip: Option<IpAddr>,
    pub via_cookie: bool,
    /// This session passed the TOTP second factor.
    pub mfa: bool,
    /// When this session last re-entered its password.
    pub reauthenticated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The account's password was generated: a new one comes first.
    pub must_change_password: bool,
    /// The account's address is proven (as the session cache knows it).
    pub email_confirmed: bool,
}

impl CurrentUser {
    pub fn actor(&self) -> Actor {
        Actor { user_id: Some(self.id), role: Some(self.role), ip: self.ip.map(|i| i.to_string()) }
    }
    /// Deny unless the caller has `role` (admins pass every staff check),
    /// and, for a staff role, passed the second factor in this session.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        let ok = self.role == role || (self.role == Role::Admin && role == Role::Lawyer);
        if !ok {
            Err(AppError::NotFound)
        } else if self.must_change_password {
            Err(AppError::PasswordChangeRequired)
        } else if role != Role::Claimant && !self.mfa {
            Err(AppError::SecondFactorRequired)
        } else {
            Ok(())
        }
    }
}

fn token_of(req: &Request<'_>, secure: bool) -> Option<(String, bool)> {
    if let Some(h) = req.headers().get_one("Authorization") {
        return h.strip_prefix("Bearer ").map(|t| (t.trim().to_string(), false));
    }
    req.cookies().get(cookie_name(SESSION_COOKIE, secure)).map(|c| (c.value().to_string(), true))
}

/// A cookie-authenticated state change must come from our own origin (S15,
/// S27). Browsers say where a request comes from in Fetch Metadata
/// (`Sec-Fetch-Site`), which every current browser sends and no page can
/// forge; that is trusted first. Without it, a real `Origin` must name this
/// host. `Origin: null` (sandboxed frames, `data:` pages, some privacy
/// settings) is refused: it cannot be told apart from a forged request.
/// A request with neither header does not come from a browser page, and
/// the form token still guards every form.
pub(crate) fn same_origin(sec_fetch_site: Option<&str>, origin: Option<&str>, host: Option<&str>) -> bool {
    if let Some(site) = sec_fetch_site {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let Some(origin) = origin else {
        return true;
    };
    let host = host.unwrap_or_default();
    origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/').eq_ignore_ascii_case(host)).unwrap_or(false)
}

fn request_is_same_origin(req: &Request<'_>) -> bool {
    let h = req.headers();
    same_origin(h.get_one("Sec-Fetch-Site"), h.get_one("Origin"), h.get_one("Host"))
}

async fn resolve(req: &Request<'_>) -> Result<CurrentUser, AppError> {
    let state = req.rocket().state::<AppState>().ok_or_else(|| AppError::internal("no state"))?;
    let (token, via_cookie) = token_of(req, state.settings.cookie_secure).ok_or(AppError::Unauthenticated)?;
    if via_cookie && !matches!(req.method(), Method::Get | Method::Head) && !request_is_same_origin(req) {
        return Err(AppError::Csrf);
    }
    let now = state.clock.now();
    let known = service::authenticate(state, &token, now).await?;
    // Left unused too long, a session ends (30 minutes for staff, 2 hours for claimants).
    if super::lifecycle::idle_expired(&state.settings, known.role, known.last_seen, now) {
        return Err(AppError::Unauthenticated);
    }
    super::lifecycle::touch(state, &known, now).await?;
    Ok(CurrentUser {
        id: known.user_id,
        role: known.role,
        session_id: known.session_id,
        ip: client_ip(req),
        via_cookie,
        mfa: known.mfa,
        reauthenticated_at: known.reauthenticated_at,
        must_change_password: known.must_change_password,
        email_confirmed: known.email_confirmed,
    })
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = Status;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let cached: &Result<CurrentUser, Status> = req
            .local_cache_async(async {
                resolve(req).await.map_err(|e| match e {
                    AppError::Csrf => Status::Forbidden,
                    AppError::Unavailable(_) => Status::ServiceUnavailable,
                    _ => Status::Unauthorized,
                })
            })
            .await;
        match cached {
            Ok(user) => Outcome::Success(user.clone()),
            Err(status) => Outcome::Error((*status, *status)),
        }
    }
}

/// Why a staff guard refused a signed-in caller, kept on the request for
/// the catcher: a staff member who has not passed the second factor in this
/// session is sent to it (pages) or told so (API), not shown a bare 403.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardRefusal {
    pub second_factor: bool,
    /// The account must choose a new password first.
    pub password_change: bool,
    /// A page form's token was missing or did not match.
    pub csrf: bool,
}

/// The outcome of a role guard: the caller's role decides
/// 404 (the route does not exist for them), the session decides the second
/// factor (S5: every staff route, pages and API, needs it).
async fn role_guard(req: &Request<'_>, admit: fn(Role) -> bool, need_mfa: bool) -> Outcome<CurrentUser, Status> {
    match CurrentUser::from_request(req).await {
        Outcome::Success(user) if !admit(user.role) => Outcome::Error((Status::NotFound, Status::NotFound)),
        Outcome::Success(user) if user.must_change_password => {
            req.local_cache(|| GuardRefusal { password_change: true, ..Default::default() });
            Outcome::Error((Status::Forbidden, Status::Forbidden))
        }
        Outcome::Success(user) if need_mfa && !user.mfa => {
            req.local_cache(|| GuardRefusal { second_factor: true, ..Default::default() });
            Outcome::Error((Status::Forbidden, Status::Forbidden))
        }
        other => other,
    }
}

/// A signed-in administrator who passed the second factor in this session.
/// Anyone else signed in gets 404, before any request body is read, so
/// admin routes reveal nothing to other roles.
pub struct AdminUser(pub CurrentUser);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminUser {
    type Error = Status;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        role_guard(req, |r| r == Role::Admin, true).await.map(AdminUser)
    }
}

/// A signed-in lawyer or administrator who passed the second factor in this
/// session. Claimants get 404 before any request body is read.
pub struct StaffUser(pub CurrentUser);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for StaffUser {
    type Error = Status;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        role_guard(req, |r| r != Role::Claimant, true).await.map(StaffUser)
    }
}

/// A signed-in lawyer or administrator, second factor or not: only the
/// pages that enrol and check the second factor take this.
pub struct StaffSigningIn(pub CurrentUser);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for StaffSigningIn {
    type Error = Status;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        role_guard(req, |r| r != Role::Claimant, false).await.map(StaffSigningIn)
    }
}

/// A signed-in claimant. Staff get 404 before any request body is read:
/// a claimant's routes do not exist for them. Reads as a `CurrentUser`.
pub struct ClaimantUser(pub CurrentUser);

/// Each role guard reads as the `CurrentUser` it admitted.
macro_rules! reads_as_current_user {
    ($($guard:ty),*) => {$(
        impl std::ops::Deref for $guard {
            type Target = CurrentUser;
            fn deref(&self) -> &CurrentUser {
                &self.0
            }
        }
    )*};
}
reads_as_current_user!(ClaimantUser, StaffUser, AdminUser, StaffSigningIn);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClaimantUser {
    type Error = Status;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        role_guard(req, |r| r == Role::Claimant, false).await.map(ClaimantUser)
    }
}

/// The caller if signed in, else `None` (for pages open to everyone).
pub struct MaybeUser(pub Option<CurrentUser>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for MaybeUser {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(MaybeUser(CurrentUser::from_request(req).await.succeeded()))
    }
}

/// The browser's CSRF token: an HMAC of a random per-browser cookie (S15).
pub struct Csrf {
    token: String,
}

impl Csrf {
    pub fn token(&self) -> &str {
        &self.token
    }
    pub fn verify(&self, submitted: &str) -> Result<(), AppError> {
        if constant_time_eq(submitted.as_bytes(), self.token.as_bytes()) {
            Ok(())
        } else {
            Err(AppError::Csrf)
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Csrf {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let Some(state) = req.rocket().state::<AppState>() else {
            return Outcome::Forward(Status::InternalServerError);
        };
        let name = cookie_name(CSRF_COOKIE, state.settings.cookie_secure);
        let seed = match req.cookies().get(name) {
            Some(c) if c.value().len() >= 16 => c.value().to_string(),
            _ => {
                let seed = crate::crypto::random_token(24);
                let cookie = Cookie::build((name, seed.clone()))
                    .http_only(true)
                    .same_site(SameSite::Lax)
                    .secure(state.settings.cookie_secure)
                    .path("/");
                req.cookies().add(cookie);
                seed
            }
        };
        Outcome::Success(Csrf { token: state.keys.csrf_token(&seed) })
    }
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn fetch_metadata_decides_when_the_browser_sends_it() {
        // Chromium under a no-referrer policy: Origin null, but same-origin by Fetch Metadata.
        assert!(same_origin(Some("same-origin"), Some("null"), Some("portal.example")));
        assert!(!same_origin(Some("cross-site"), Some("https://portal.example"), Some("portal.example")));
        assert!(!same_origin(Some("same-site"), None, Some("portal.example")));
        assert!(!same_origin(Some("none"), None, Some("portal.example")));
    }

    #[test]
    fn without_fetch_metadata_a_real_origin_must_name_this_host() {
        assert!(same_origin(None, Some("https://portal.example"), Some("portal.example")));
        assert!(same_origin(None, Some("http://127.0.0.1:8000"), Some("127.0.0.1:8000")));
        assert!(!same_origin(None, Some("https://evil.example"), Some("portal.example")));
        assert!(!same_origin(None, Some("null"), Some("portal.example")));
        assert!(same_origin(None, None, Some("portal.example")), "API clients send neither header");
    }
}
