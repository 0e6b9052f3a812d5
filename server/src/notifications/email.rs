//! E-mail notifications through the operator's SMTP server (lettre), with a timeout on every exchange.

use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use renkei_protocol::NotificationPayload;

use super::Sent;
use crate::config::{Config, SmtpSecurity};

#[derive(Debug)]
pub(super) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    /// The transport the configuration describes; `None` without `smtp_host`.
    pub(super) fn from_config(config: &Config) -> anyhow::Result<Option<Self>> {
        let Some(host) = config.smtp_host.as_deref() else { return Ok(None) };
        let builder = match config.smtp_security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        let mut builder = builder.port(config.smtp_port).timeout(Some(Duration::from_secs(15)));
        if let Some(user) = &config.smtp_username {
            let path = config.smtp_password_file.as_ref().context("smtp_username needs smtp_password_file")?;
            let password = std::fs::read_to_string(path)
                .with_context(|| format!("reading the SMTP password {}", path.display()))?;
            builder = builder.credentials(Credentials::new(user.clone(), password.trim_end().to_owned()));
        }
        let from: Mailbox =
            config.smtp_from.parse().with_context(|| format!("smtp_from {:?} is not an address", config.smtp_from))?;
        Ok(Some(Self { transport: builder.build(), from }))
    }

    pub(super) async fn send(&self, to: &str, payload: &NotificationPayload, link: Option<&str>) -> Sent {
        let Ok(to) = to.parse::<Mailbox>() else { return Sent::Failed("address not accepted".into()) };
        let mut body = format!("{}\n{}\n", payload.body_ja, payload.body_en);
        if let Some(link) = link {
            body.push_str(&format!("\n{link}\n"));
        }
        body.push_str(
            "\nこのメールには内容を含めていません。renkei にサインインしてご確認ください。\n\
             This e-mail carries no content: sign in to renkei to read it.\n",
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("{} / {}", payload.body_ja, payload.body_en))
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let message = match message {
            Ok(m) => m,
            Err(e) => return Sent::Failed(format!("e-mail: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Sent::Delivered,
            Err(e) if e.is_permanent() => Sent::Failed(format!("SMTP refused: {e}")),
            Err(e) => Sent::Retry(format!("SMTP: {e}")),
        }
    }
}
