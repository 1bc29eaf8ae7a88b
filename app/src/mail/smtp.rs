//! Sending over SMTP with lettre: plain, STARTTLS or implicit TLS as the
//! `APP_SMTP_URL` says. One connection per message: deliveries are few and
//! spread out, and a fresh connection means a server that went away and came
//! back is simply used again.
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Background;

/// A configured SMTP sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of every `Message-ID`.
    domain: String,
}

/// Why a message was not sent.
#[derive(Debug)]
pub struct SendError {
    /// The server refused the message for good (5xx): retrying will not help.
    pub permanent: bool,
    /// What an administrator reads: the server's answer or the connection error,
    /// never the message.
    pub reason: String,
}

impl Mailer {
    /// `None` when no SMTP server is configured.
    pub fn from_settings(settings: &Background) -> Result<Option<Self>, String> {
        let Some(url) = &settings.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|e| format!("APP_SMTP_URL is not usable: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        let from: Mailbox = settings.mail_from.parse().map_err(|e| format!("APP_MAIL_FROM is not an address: {e}"))?;
        let domain = url_host(&settings.public_url).unwrap_or_else(|| "portal.invalid".into());
        Ok(Some(Self { transport, from, domain }))
    }

    /// The `Message-ID` of an outbox row: the same for every attempt.
    pub fn message_id(&self, outbox_id: uuid::Uuid) -> String {
        format!("<{outbox_id}@{}>", self.domain)
    }

    pub async fn send(&self, to: &str, message_id: &str, subject: &str, body: &str) -> Result<(), SendError> {
        let to: Mailbox = to.parse().map_err(|_| SendError { permanent: true, reason: "invalid recipient".into() })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .message_id(Some(message_id.to_string()))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| SendError { permanent: true, reason: format!("message: {e}") })?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError { permanent: e.is_permanent(), reason: describe(&e) })
    }
}

/// The error without the message: lettre's display names the server's code
/// and text, or the connection failure. A server's answer may quote the
/// recipient's address (`550 <name@example.jp>: unknown`): it goes to the job
/// row and the log, so addresses are cut out.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    without_addresses(&text).chars().take(300).collect()
}

/// Every word with an `@` in it becomes `[address]`.
fn without_addresses(text: &str) -> String {
    text.split(' ').map(|word| if word.contains('@') { "[address]" } else { word }).collect::<Vec<_>>().join(" ")
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.split(['/', ':']).next()?.trim();
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answer_keeps_its_code_and_loses_the_address() {
        let said = without_addresses("permanent error (550): 5.1.1 <hanako@example.jp>: Recipient address rejected");
        assert_eq!(said, "permanent error (550): 5.1.1 [address] Recipient address rejected");
    }

    #[test]
    fn the_message_id_domain_is_the_public_host() {
        assert_eq!(url_host("https://portal.example.jp/x").as_deref(), Some("portal.example.jp"));
        assert_eq!(url_host("http://localhost:8000").as_deref(), Some("localhost"));
    }
}
