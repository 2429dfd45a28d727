//! The page frame (head, navigation, sign-out), the sign-in page, and the pieces every page
//! shares: status badges and the stacked progress bar in one set of colors, and times.

use fleetjobs_core::model::{JobExecutionStatus, JobStatus};
use fleetjobs_core::ops::jobs::JobProcessDetails;
use fleetjobs_core::utc::Civil;
use fleetjobs_core::Millis;
use maud::{html, Markup, DOCTYPE};

use crate::auth::Session;

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Jobs,
    Create,
    Devices,
    Test,
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        // htmx must not inject its indicator <style>: the content security policy refuses inline styles.
        meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
        title { (title) " · Fleetjobs" }
        link rel="stylesheet" href="/console/assets/console.css";
        script src="/console/assets/htmx.min.js" defer {}
        script src="/console/assets/console.js" defer {}
    }
}

/// A signed-in page.
pub fn page(title: &str, session: &Session, nav: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header.top {
                    a.brand href="/console/jobs" { "Fleetjobs" }
                    nav {
                        a href="/console/jobs" class=[(nav == Nav::Jobs).then_some("current")] { "Jobs" }
                        a href="/console/jobs/new" class=[(nav == Nav::Create).then_some("current")] { "Create job" }
                        a href="/console/things" class=[(nav == Nav::Devices).then_some("current")] { "Devices" }
                        a href="/console/test" class=[(nav == Nav::Test).then_some("current")] { "MQTT test client" }
                    }
                    form.signout method="post" action="/console/signout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        span.who { (session.access_key_id) }
                        button.link type="submit" { "Sign out" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page with one message (refusals, not found).
pub fn message_page(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body.narrow {
                main {
                    h1 { (title) }
                    p { (message) }
                    p { a href="/console/jobs" { "Back to the console" } }
                }
            }
        }
    }
}

/// The frame of the sign-in pages (no navigation: nobody is signed in yet).
fn signin_frame(content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Sign in")) }
            body.narrow {
                main.signin {
                    h1 { "Fleetjobs console" }
                    (content)
                }
            }
        }
    }
}

pub fn signin(token: &str, error: Option<&str>, access_key_id: &str) -> Markup {
    signin_frame(html! {
                    p.muted { "Sign in with the admin access key from the " code { "credentials" } " file in the data directory." }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    form method="post" action="/console/signin" {
                        input type="hidden" name="signin_token" value=(token);
                        label { "Access key ID"
                            input name="access_key_id" value=(access_key_id) autocomplete="username" required autofocus; }
                        label { "Secret access key"
                            input name="secret_access_key" type="password" autocomplete="current-password" required; }
                        button.primary type="submit" { "Sign in" }
                    }
    })
}

/// What a one-time sign-in link opens: whom it signs in, and the button that does it.
pub fn signin_link(token: &str, link_token: &str, access_key_id: &str) -> Markup {
    signin_frame(html! {
                    p { "This one-time link signs you in with the access key " code { (access_key_id) } "." }
                    form method="post" action="/console/signin" {
                        input type="hidden" name="signin_token" value=(token);
                        input type="hidden" name="link_token" value=(link_token);
                        button.primary type="submit" autofocus { "Sign in" }
                    }
    })
}

pub fn job_status(status: JobStatus) -> Markup {
    html! { span class={ "badge st-" (status.as_str()) } { (status.as_str()) } }
}

pub fn execution_status(status: JobExecutionStatus) -> Markup {
    html! { span class={ "badge st-" (status.as_str()) } { (status.as_str()) } }
}

/// The executions of a job by status, in the order the bar stacks them.
pub fn counts(d: &JobProcessDetails) -> [(JobExecutionStatus, i64); 8] {
    use JobExecutionStatus::*;
    [
        (Succeeded, d.number_of_succeeded_things),
        (Failed, d.number_of_failed_things),
        (TimedOut, d.number_of_timed_out_things),
        (Rejected, d.number_of_rejected_things),
        (Canceled, d.number_of_canceled_things),
        (Removed, d.number_of_removed_things),
        (InProgress, d.number_of_in_progress_things),
        (Queued, d.number_of_queued_things),
    ]
}

/// A stacked bar of the executions by status. SVG, because its widths are attributes: the
/// content security policy refuses inline `style`.
pub fn progress_bar(d: &JobProcessDetails) -> Markup {
    let counts = counts(d);
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let summary: Vec<String> =
        counts.iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{n} {}", s.as_str())).collect();
    let label = if total == 0 { "no executions".to_string() } else { summary.join(", ") };
    let mut segments = Vec::new();
    let mut x = 0.0;
    for (status, n) in counts.iter().filter(|(_, n)| *n > 0) {
        let w = *n as f64 * 100.0 / total as f64;
        segments.push((status.as_str(), *n, x, w));
        x += w;
    }
    html! {
        span.progress data-total=(total) title=(label) {
            svg.bar viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label=(label) {
                @if total == 0 { rect.empty x="0" y="0" width="100" height="10" {} }
                @for (status, n, x, w) in segments {
                    rect class={ "f-" (status) } x=(format!("{x:.3}")) y="0" width=(format!("{w:.3}")) height="10" {
                        title { (n) " " (status) }
                    }
                }
            }
            span.count { (d.number_of_succeeded_things + d.number_of_failed_things + d.number_of_timed_out_things
                + d.number_of_rejected_things + d.number_of_canceled_things + d.number_of_removed_things) "/" (total) }
        }
    }
}

/// `2026-11-30 22:40:12` (UTC).
pub fn time(at: Millis) -> String {
    match Civil::from_unix(at.div_euclid(1000)) {
        Some(c) => format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute, c.second),
        None => at.to_string(),
    }
}

/// A time with its machine-readable form, for the browser to show in local time if it likes.
pub fn time_cell(at: Millis) -> Markup {
    html! { time datetime=(format!("{}Z", time(at).replace(' ', "T"))) { (time(at)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc() {
        assert_eq!(time(1_700_000_000_123), "2023-11-14 22:13:20");
    }

    #[test]
    fn the_bar_stacks_every_status_with_its_share() {
        let d = JobProcessDetails { number_of_succeeded_things: 1, number_of_queued_things: 3, ..Default::default() };
        let html = progress_bar(&d).into_string();
        assert!(html.contains(r#"class="f-SUCCEEDED" x="0.000" y="0" width="25.000""#), "{html}");
        assert!(html.contains(r#"class="f-QUEUED" x="25.000" y="0" width="75.000""#), "{html}");
        assert!(html.contains("1/4"));
        let none = progress_bar(&JobProcessDetails::default()).into_string();
        assert!(none.contains("no executions"));
    }
}
