//! A member's own settings: availability hours and notifications.

use renkei_cli::Client;

use crate::output::{CliError, Output};

type Result<T> = std::result::Result<T, CliError>;

/// `mon-fri 09:00-17:00`, `sat,sun 10:00-12:00`.
fn parse_window(text: &str) -> Result<renkei_protocol::AvailabilityWindow> {
    use renkei_protocol::Weekday;
    let bad = || CliError::Other(format!("window {text:?}: expected e.g. \"mon-fri 09:00-17:00\""));
    let (days, hours) = text.trim().split_once(' ').ok_or_else(bad)?;
    let (start, end) = hours.trim().split_once('-').ok_or_else(bad)?;
    let all = Weekday::ALL;
    let index = |d: &str| all.iter().position(|w| w.as_str() == d.trim().to_ascii_lowercase()).ok_or_else(bad);
    let mut selected = Vec::new();
    for part in days.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (index(from)?, index(to)?);
                if from > to {
                    return Err(bad());
                }
                selected.extend_from_slice(&all[from..=to]);
            }
            None => selected.push(all[index(part)?]),
        }
    }
    Ok(renkei_protocol::AvailabilityWindow { days: selected, start: start.trim().into(), end: end.trim().into() })
}

pub async fn notifications(client: &Client, out: &Output, cmd: crate::args::NotificationsCommand) -> Result<()> {
    use crate::args::{NotificationsCommand as C, OnOff};
    let view = match cmd {
        C::Show => client.notifications().await?,
        C::Set { email, push, digest_minutes } => {
            let mut settings = client.notifications().await?.settings;
            match email.as_deref() {
                Some("off") => settings.email = false,
                Some(address) => {
                    settings.email = true;
                    settings.email_address = Some(address.to_owned());
                }
                None => {}
            }
            if let Some(push) = push {
                settings.push = push == OnOff::On;
            }
            settings.digest_minutes = digest_minutes.unwrap_or(settings.digest_minutes);
            client.set_notifications(&settings).await?
        }
        C::RemoveDevice { id } => {
            let devices = client.notifications().await?.devices;
            let matching: Vec<_> = devices.iter().filter(|d| d.id.to_string().starts_with(&id)).collect();
            let [device] = matching.as_slice() else {
                return Err(CliError::NotFound(format!(
                    "{id}: {} of my devices match; give more of the id (renkei notifications show)",
                    matching.len()
                )));
            };
            client.remove_push_device(device.id).await?;
            client.notifications().await?
        }
    };
    if out.json {
        out.json(&view);
        return Ok(());
    }
    let s = &view.settings;
    let on = |b: bool| if b { "on" } else { "off" }.to_owned();
    out.record(&[
        ("push", on(s.push)),
        ("email", if s.email { s.email_address.clone().unwrap_or_default() } else { on(false) }),
        ("digest_minutes", s.digest_minutes.to_string()),
    ]);
    let rows = view
        .devices
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                d.device.clone().unwrap_or_default(),
                out.time(d.created_at),
                d.last_sent_at.map(|t| out.time(t)).unwrap_or_default(),
            ]
        })
        .collect();
    out.table(&["device", "name", "registered", "last sent"], rows);
    Ok(())
}

pub async fn availability(client: &Client, out: &Output, cmd: crate::args::AvailabilityCommand) -> Result<()> {
    let current = match cmd {
        crate::args::AvailabilityCommand::Show => client.availability().await?,
        crate::args::AvailabilityCommand::Set { windows, contact } => {
            let windows = windows.iter().map(|w| parse_window(w)).collect::<Result<Vec<_>>>()?;
            client.set_availability(&renkei_protocol::Availability { windows, contact_preference: contact }).await?
        }
    };
    if out.json {
        out.json(&current);
        return Ok(());
    }
    let rows = current
        .windows
        .iter()
        .map(|w| {
            let days: Vec<&str> = w.days.iter().map(|d| d.as_str()).collect();
            vec![days.join(","), format!("{}-{}", w.start, w.end)]
        })
        .collect();
    out.table(&["days", "hours"], rows);
    if let Some(contact) = &current.contact_preference {
        println!("{contact}");
    }
    Ok(())
}
