//! `fleetjobs rollout-preview`: a job's rollout timeline from its create-job configs, printed before anything is sent.
//
// Thin on purpose: the arguments become `JobConfigs` (read as `aws iot create-job` reads its
// parameters), CreateJob's own `check` refuses what the server would refuse, and
// `fleetjobs_rollout::preview::timeline` decides the batches; what is here is reading and
// rendering.

use std::process::ExitCode;

use fleetjobs_core::job_config::JobConfigs;
use fleetjobs_core::utc::Civil;
use fleetjobs_core::validate::date_time;
use fleetjobs_core::Millis;
use fleetjobs_rollout::preview::{self, Preview, Stop};
use fleetjobs_rollout::MINUTE;
use serde::Serialize;
use serde_json::{Map, Value};

/// At most this many things: a rollout of one execution a minute is a batch per thing, and the
/// preview holds every batch.
const MAX_THINGS: u64 = 1_000_000;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct PreviewArgs {
    /// `jobExecutionsRolloutConfig`: JSON text or file://PATH, as `aws iot create-job` takes it.
    #[arg(long, value_name = "JSON")]
    pub job_executions_rollout_config: Option<String>,
    /// `schedulingConfig` (startTime, endTime, endBehavior, maintenanceWindows): JSON or file://PATH.
    #[arg(long, value_name = "JSON")]
    pub scheduling_config: Option<String>,
    /// `abortConfig`: JSON or file://PATH (checked; the preview assumes every device succeeds).
    #[arg(long, value_name = "JSON")]
    pub abort_config: Option<String>,
    /// `timeoutConfig`: JSON or file://PATH (checked; it does not change the timeline).
    #[arg(long, value_name = "JSON")]
    pub timeout_config: Option<String>,
    /// `jobExecutionsRetryConfig`: JSON or file://PATH (checked; it does not change the timeline).
    #[arg(long, value_name = "JSON")]
    pub job_executions_retry_config: Option<String>,
    /// `presignedUrlConfig`: JSON or file://PATH (checked; it does not change the timeline).
    #[arg(long, value_name = "JSON")]
    pub presigned_url_config: Option<String>,
    /// A whole create-job request (JSON or file://PATH, as `aws iot create-job --cli-input-json`
    /// takes it): its config members are read, and the flags above override them.
    #[arg(long, value_name = "JSON")]
    pub cli_input_json: Option<String>,
    /// How many things the job targets (for thing groups: the things in them).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_THINGS))]
    pub things: u64,
    /// When the job is created, UTC [default: now, to the minute].
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM")]
    pub start: Option<String>,
    /// Print the timeline as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// The config flags with their create-job member names, in the order create-job checks them.
fn flags(args: &PreviewArgs) -> [(&'static str, &'static str, Option<&str>); 6] {
    [
        ("presignedUrlConfig", "--presigned-url-config", args.presigned_url_config.as_deref()),
        (
            "jobExecutionsRolloutConfig",
            "--job-executions-rollout-config",
            args.job_executions_rollout_config.as_deref(),
        ),
        ("abortConfig", "--abort-config", args.abort_config.as_deref()),
        ("timeoutConfig", "--timeout-config", args.timeout_config.as_deref()),
        ("jobExecutionsRetryConfig", "--job-executions-retry-config", args.job_executions_retry_config.as_deref()),
        ("schedulingConfig", "--scheduling-config", args.scheduling_config.as_deref()),
    ]
}

/// Runs the verb: the timeline on stdout, or why not on stderr with exit code 2 (a usage
/// error, like an invalid config). `now` is the one clock read, taken by the caller.
pub fn run(args: &PreviewArgs, now: Millis) -> ExitCode {
    match report(args, now) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => {
                        eprintln!("fleetjobs rollout-preview: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", table(&report));
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// The timeline of the arguments, or the message that refuses them.
fn report(args: &PreviewArgs, now: Millis) -> Result<Report, String> {
    let start = match &args.start {
        Some(s) => date_time(s).ok_or_else(|| format!("--start '{s}' is not a UTC date-time like 2026-12-02T10:00"))?,
        None => now - now.rem_euclid(MINUTE),
    };
    let configs = configs(args)?;
    // CreateJob's rules, with the job created at `start` (schedulingConfig's times are relative
    // to creation), so the preview refuses exactly what create-job would.
    configs.check(start).map_err(|e| e.to_string())?;
    let targets = usize::try_from(args.things).map_err(|_| format!("--things {} is too many", args.things))?;
    let timeline = preview::timeline(&configs, targets, start).map_err(|e| e.to_string())?;
    Ok(Report::new(&timeline, args.things, start))
}

/// The job's configs from `--cli-input-json` and the flags (a flag wins, as in the AWS CLI).
fn configs(args: &PreviewArgs) -> Result<JobConfigs, String> {
    let mut members = match &args.cli_input_json {
        Some(input) => match parse_json("--cli-input-json", input)? {
            Value::Object(m) => m,
            _ => return Err("Error parsing parameter '--cli-input-json': a create-job request is a JSON object".into()),
        },
        None => Map::new(),
    };
    for (member, flag, value) in flags(args) {
        if let Some(v) = value {
            members.insert(member.to_string(), parse_json(flag, v)?);
        }
    }
    // Unknown members (jobId, targets, document...) are ignored: only the configs matter here.
    serde_path_to_error::deserialize(Value::Object(members))
        .map_err(|e| fleetjobs_api::ops::invalid_request(e).to_string())
}

/// A parameter's JSON: the text itself, or the contents of `file://PATH`.
fn parse_json(flag: &str, value: &str) -> Result<Value, String> {
    let text = match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("Error parsing parameter '{flag}': Unable to load paramfile {value}: {e}"))?,
        None => value.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| format!("Error parsing parameter '{flag}': Invalid JSON: {e}"))
}

/// The timeline as both renderings show it; `--json` prints it as is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    things: u64,
    /// When the job is created (RFC 3339, UTC), as every time below.
    start: String,
    #[serde(skip)]
    start_millis: Millis,
    batches: Vec<BatchRow>,
    /// The maintenance window stretches that created executions (empty: the job has none).
    windows: Vec<WindowRow>,
    created: i64,
    /// When the last execution is created (`None`: nothing is).
    last_created_at: Option<String>,
    not_created: i64,
    /// Why the rollout stops short (`None`: every thing gets its execution).
    stop: Option<StopRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchRow {
    at: String,
    #[serde(skip)]
    at_millis: Millis,
    count: i64,
    cumulative: i64,
    /// The rate it was created at (`None`: no rollout config, no limit).
    per_minute: Option<i64>,
    /// The window stretch it falls in: a 1-based index into `windows`.
    window: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct WindowRow {
    first_batch: String,
    #[serde(skip)]
    first_batch_millis: Millis,
    closes: String,
    #[serde(skip)]
    closes_millis: Millis,
    executions: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct StopRow {
    /// `endTime` or `noWindowOpens`.
    reason: &'static str,
    at: String,
    #[serde(skip)]
    at_millis: Millis,
    /// With `endTime`: STOP_ROLLOUT, CANCEL or FORCE_CANCEL.
    #[serde(skip_serializing_if = "Option::is_none")]
    end_behavior: Option<&'static str>,
}

impl Report {
    fn new(p: &Preview, things: u64, start: Millis) -> Report {
        // A job without maintenance windows is one stretch that never closes: no window rows.
        let windows: Vec<WindowRow> = p
            .windows
            .iter()
            .filter_map(|w| {
                w.closes.map(|closes| WindowRow {
                    first_batch: rfc3339(w.first_batch),
                    first_batch_millis: w.first_batch,
                    closes: rfc3339(closes),
                    closes_millis: closes,
                    executions: 0,
                })
            })
            .collect();
        let mut report = Report {
            things,
            start: rfc3339(start),
            start_millis: start,
            batches: Vec::with_capacity(p.batches.len()),
            windows,
            created: 0,
            last_created_at: p.batches.last().map(|b| rfc3339(b.at)),
            not_created: p.not_created,
            stop: p.stop.map(|s| match s {
                Stop::Ended { at, behavior } => {
                    StopRow { reason: "endTime", at: rfc3339(at), at_millis: at, end_behavior: Some(behavior.as_str()) }
                }
                Stop::NoWindowOpens { at } => {
                    StopRow { reason: "noWindowOpens", at: rfc3339(at), at_millis: at, end_behavior: None }
                }
            }),
        };
        for b in &p.batches {
            report.created += b.count;
            // Stretches are in order and each batch belongs to the last one begun by then.
            let window = report.windows.iter().rposition(|w| w.first_batch_millis <= b.at);
            if let Some(w) = window {
                report.windows[w].executions += b.count;
            }
            report.batches.push(BatchRow {
                at: rfc3339(b.at),
                at_millis: b.at,
                count: b.count,
                cumulative: report.created,
                per_minute: b.per_minute,
                window: window.map(|w| w + 1),
            });
        }
        report
    }
}

/// The human rendering: a table of batches (a run of equal batches a minute apart is one
/// row), then how the rollout ends and the windows it used.
fn table(r: &Report) -> String {
    let mut out = format!("Rollout of {} things, job created {} UTC.\n", r.things, human(r.start_millis));
    out.push_str("Devices are assumed to succeed at once: the quickest rollout the configs allow.\n\n");
    let mut rows =
        vec![["TIME (UTC)".to_string(), "CREATED".into(), "CUMULATIVE".into(), "RATE/MIN".into(), "WINDOW".into()]];
    let mut i = 0;
    while i < r.batches.len() {
        let first = &r.batches[i];
        let mut last = i;
        while r.batches.get(last + 1).is_some_and(|n| {
            let b = &r.batches[last];
            n.at_millis == b.at_millis + MINUTE
                && (n.count, n.per_minute, n.window) == (first.count, first.per_minute, first.window)
        }) {
            last += 1;
        }
        let end = &r.batches[last];
        let (time, created) = if last == i {
            (human(first.at_millis), first.count.to_string())
        } else {
            (
                format!("{} – {}", human(first.at_millis), human_after(first.at_millis, end.at_millis)),
                format!("{} × {}", last - i + 1, first.count),
            )
        };
        rows.push([
            time,
            created,
            end.cumulative.to_string(),
            first.per_minute.map_or("no limit".into(), |r| r.to_string()),
            first.window.map_or("-".into(), |w| w.to_string()),
        ]);
        i = last + 1;
    }
    let widths: Vec<usize> = (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let line = format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:<w4$}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    let batches = r.batches.len();
    match (&r.stop, r.batches.first(), r.batches.last()) {
        (None, Some(first), Some(_)) if batches == 1 => out.push_str(&format!(
            "All {} executions are created at once, {} UTC.\n",
            r.created,
            human(first.at_millis)
        )),
        (None, Some(first), Some(last)) => out.push_str(&format!(
            "The last execution is created {} UTC, {} after the first: {} executions in {batches} batches.\n",
            human(last.at_millis),
            duration(last.at_millis - first.at_millis),
            r.created,
        )),
        (None, _, _) => out.push_str("No execution is created.\n"),
        (Some(stop), _, _) => {
            let why = match stop.end_behavior {
                Some(behavior) => {
                    format!("endTime {} UTC stops the rollout (endBehavior {behavior})", human(stop.at_millis))
                }
                None => format!("No maintenance window opens after {} UTC", human(stop.at_millis)),
            };
            let last = r.batches.last().map_or(String::new(), |b| format!(", the last {} UTC", human(b.at_millis)));
            out.push_str(&format!(
                "{why}: {} of {} things get no execution ({} created in {batches} batch{}{last}).\n",
                r.not_created,
                r.things,
                r.created,
                if batches == 1 { "" } else { "es" },
            ));
        }
    }
    if !r.windows.is_empty() {
        out.push_str("\nMaintenance windows used:\n");
        for (n, w) in r.windows.iter().enumerate() {
            out.push_str(&format!(
                "  {}  {} – {} UTC  {} executions\n",
                n + 1,
                human(w.first_batch_millis),
                human_after(w.first_batch_millis, w.closes_millis),
                w.executions
            ));
        }
    }
    out
}

/// `2026-12-05T02:00:00Z`.
fn rfc3339(at: Millis) -> String {
    match Civil::from_unix(at.div_euclid(1000)) {
        Some(c) => {
            format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
        }
        None => at.to_string(),
    }
}

/// `Sat 2026-12-05 02:00` (seconds only when there are some).
fn human(at: Millis) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let secs = at.div_euclid(1000);
    let Some(c) = Civil::from_unix(secs) else { return at.to_string() };
    // 1970-01-01 was a Thursday.
    let day = DAYS[usize::try_from((secs.div_euclid(86_400) + 4).rem_euclid(7)).unwrap_or_default()];
    let seconds = if c.second == 0 { String::new() } else { format!(":{:02}", c.second) };
    format!("{day} {:04}-{:02}-{:02} {:02}:{:02}{seconds}", c.year, c.month, c.day, c.hour, c.minute)
}

/// The end of a span that began at `from`: only the time when it is the same day.
fn human_after(from: Millis, to: Millis) -> String {
    let (a, b) = (human(from), human(to));
    match (
        a.split_once(' ').and_then(|(_, r)| r.split_once(' ')),
        b.split_once(' ').and_then(|(_, r)| r.split_once(' ')),
    ) {
        (Some((da, _)), Some((db, tb))) if da == db => tb.to_string(),
        _ => b,
    }
}

/// `57 minutes`, `2 days 3 hours 4 minutes`.
fn duration(ms: Millis) -> String {
    let minutes = ms / MINUTE;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let unit = |n: i64, u: &str| format!("{n} {u}{}", if n == 1 { "" } else { "s" });
    let parts: Vec<String> =
        [(d, "day"), (h, "hour"), (m, "minute")].iter().filter(|(n, _)| *n > 0).map(|(n, u)| unit(*n, u)).collect();
    if parts.is_empty() {
        "less than a minute".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetjobs_core::ops::jobs::CreateJobRequest;

    const EXPONENTIAL: &str = r#"{"maximumPerMinute": 1000, "exponentialRate": {"baseRatePerMinute": 50,
        "incrementFactor": 2, "rateIncreaseCriteria": {"numberOfNotifiedThings": 1000}}}"#;
    const SATURDAYS: &str =
        r#"{"maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT *)", "durationInMinutes": 240}]}"#;

    fn args(things: u64, start: &str) -> PreviewArgs {
        PreviewArgs { things, start: Some(start.into()), ..Default::default() }
    }

    fn at(s: &str) -> Millis {
        date_time(s).unwrap()
    }

    #[test]
    fn flags_and_files_and_cli_input_json_make_the_configs() {
        let dir = std::env::temp_dir().join(format!("fleetjobs-preview-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("create-job.json");
        std::fs::write(
            &input,
            r#"{"jobId": "fw", "targets": ["arn:aws:iot:us-east-1:123456789012:thing/a"], "document": "{}",
                "jobExecutionsRolloutConfig": {"maximumPerMinute": 5}, "timeoutConfig": {"inProgressTimeoutInMinutes": 10}}"#,
        )
        .unwrap();
        let windows = dir.join("scheduling.json");
        std::fs::write(&windows, SATURDAYS).unwrap();
        let a = PreviewArgs {
            cli_input_json: Some(format!("file://{}", input.display())),
            job_executions_rollout_config: Some(r#"{"maximumPerMinute": 7}"#.into()),
            scheduling_config: Some(format!("file://{}", windows.display())),
            ..args(10, "2026-12-02T10:00")
        };
        let c = configs(&a).unwrap();
        assert_eq!(c.job_executions_rollout_config.and_then(|r| r.maximum_per_minute), Some(7), "the flag wins");
        assert_eq!(c.timeout_config.and_then(|t| t.in_progress_timeout_in_minutes), Some(10), "from the request");
        assert_eq!(c.scheduling_config.and_then(|s| s.maintenance_windows).map(|w| w.len()), Some(1), "from a file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_or_malformed_input_says_which_parameter() {
        let a = PreviewArgs { abort_config: Some("{".into()), ..args(1, "2026-12-02T10:00") };
        assert!(configs(&a).unwrap_err().starts_with("Error parsing parameter '--abort-config': Invalid JSON"));
        let a =
            PreviewArgs { timeout_config: Some("file:///nonexistent/t.json".into()), ..args(1, "2026-12-02T10:00") };
        assert!(configs(&a).unwrap_err().contains("'--timeout-config': Unable to load paramfile"));
        let a = PreviewArgs { cli_input_json: Some("[]".into()), ..args(1, "2026-12-02T10:00") };
        assert!(configs(&a).unwrap_err().contains("JSON object"));
        let a = PreviewArgs {
            job_executions_rollout_config: Some(r#"{"maximumPerMinute": "x"}"#.into()),
            ..args(1, "2026-12-02T10:00")
        };
        assert_eq!(
            configs(&a).unwrap_err(),
            "InvalidRequestException: Invalid type for parameter jobExecutionsRolloutConfig.maximumPerMinute: \
             invalid type: string \"x\", expected i32"
        );
        let a = PreviewArgs {
            abort_config: Some(r#"{"criteriaList": [{"failureType": "ALL"}]}"#.into()),
            ..args(1, "2026-12-02T10:00")
        };
        assert_eq!(
            configs(&a).unwrap_err(),
            "InvalidRequestException: Missing required parameter: abortConfig.criteriaList[0].action"
        );
        assert!(report(&args(1, "next tuesday"), 0).unwrap_err().starts_with("--start 'next tuesday'"));
    }

    /// What CreateJob answers for the same configs, created at `start`.
    fn create_job_says(config_member: &str, config: &str, start: Millis) -> String {
        let request: CreateJobRequest = serde_json::from_value(serde_json::json!({
            "jobId": "j", "targets": ["arn:aws:iot:us-east-1:123456789012:thing/a"], "document": "{}",
            config_member: serde_json::from_str::<Value>(config).unwrap(),
        }))
        .unwrap();
        request.check(start).unwrap_err().to_string()
    }

    #[test]
    fn what_create_job_refuses_is_refused_with_its_message() {
        let start = at("2026-12-02T10:00");
        let rollout = r#"{"maximumPerMinute": 0}"#;
        let a = PreviewArgs { job_executions_rollout_config: Some(rollout.into()), ..args(1, "2026-12-02T10:00") };
        let refused = report(&a, 0).unwrap_err();
        assert_eq!(refused, "InvalidRequestException: maximumPerMinute must be between 1 and 1000");
        assert_eq!(refused, create_job_says("jobExecutionsRolloutConfig", rollout, start));
        // schedulingConfig's times are checked against the job's creation: --start.
        let scheduling = r#"{"startTime": "2026-12-02T10:10"}"#;
        let a = PreviewArgs { scheduling_config: Some(scheduling.into()), ..args(1, "2026-12-02T10:00") };
        assert_eq!(report(&a, 0).unwrap_err(), create_job_says("schedulingConfig", scheduling, start));
        let a = PreviewArgs { scheduling_config: Some(scheduling.into()), ..args(1, "2026-12-02T09:00") };
        assert!(report(&a, 0).is_ok(), "70 minutes ahead of creation");
        let retry = r#"{"criteriaList": [{"failureType": "ALL", "numberOfRetries": 11}]}"#;
        let a = PreviewArgs { job_executions_retry_config: Some(retry.into()), ..args(1, "2026-12-02T10:00") };
        assert_eq!(report(&a, 0).unwrap_err(), create_job_says("jobExecutionsRetryConfig", retry, start));
    }

    #[test]
    fn the_start_defaults_to_now_to_the_minute() {
        let a = PreviewArgs { start: None, ..args(3, "") };
        let r = report(&a, at("2026-12-02T10:00") + 42_500).unwrap();
        assert_eq!(r.start, "2026-12-02T10:00:00Z");
        assert_eq!(r.batches.len(), 1);
        assert_eq!((r.batches[0].count, r.batches[0].per_minute, r.batches[0].window), (3, None, None));
    }

    #[test]
    fn an_exponential_rollout_renders_runs_of_equal_minutes_as_one_row() {
        let a =
            PreviewArgs { job_executions_rollout_config: Some(EXPONENTIAL.into()), ..args(5000, "2026-12-02T10:00") };
        let r = report(&a, 0).unwrap();
        assert_eq!((r.created, r.not_created, r.stop.as_ref()), (5000, 0, None));
        assert_eq!(r.last_created_at.as_deref(), Some("2026-12-02T10:37:00Z"));
        let t = table(&r);
        let rows: Vec<&str> = t.lines().skip_while(|l| !l.starts_with("TIME")).take(7).collect();
        assert_eq!(
            rows,
            [
                "TIME (UTC)                     CREATED  CUMULATIVE  RATE/MIN  WINDOW",
                "Wed 2026-12-02 10:00 – 10:18   19 × 50         950        50  -",
                "Wed 2026-12-02 10:19 – 10:28  10 × 100        1950       100  -",
                "Wed 2026-12-02 10:29 – 10:33   5 × 200        2950       200  -",
                "Wed 2026-12-02 10:34 – 10:35   2 × 400        3750       400  -",
                "Wed 2026-12-02 10:36               800        4550       800  -",
                "Wed 2026-12-02 10:37               450        5000       800  -",
            ]
        );
        assert!(t.contains("The last execution is created Wed 2026-12-02 10:37 UTC, 37 minutes after the first: 5000 executions in 38 batches."));
        assert!(!t.contains("Maintenance windows"), "{t}");
    }

    #[test]
    fn windows_and_an_end_time_render_what_stops_and_the_windows_used() {
        let scheduling = r#"{"endTime": "2026-12-12T03:00", "endBehavior": "CANCEL",
            "maintenanceWindows": [{"startTime": "cron(0 2 ? * SAT *)", "durationInMinutes": 240}]}"#;
        let a = PreviewArgs {
            job_executions_rollout_config: Some(r#"{"maximumPerMinute": 10}"#.into()),
            scheduling_config: Some(scheduling.into()),
            ..args(5000, "2026-12-02T10:00")
        };
        let r = report(&a, 0).unwrap();
        // 240 minutes on the 5th, 60 on the 12th before endTime.
        assert_eq!((r.created, r.not_created), (3000, 2000));
        let stop = r.stop.clone().unwrap();
        assert_eq!(
            (stop.reason, stop.at.as_str(), stop.end_behavior),
            ("endTime", "2026-12-12T03:00:00Z", Some("CANCEL"))
        );
        assert_eq!(r.windows.iter().map(|w| w.executions).collect::<Vec<_>>(), [2400, 600]);
        assert_eq!(r.batches[0].at, "2026-12-05T02:00:00Z");
        assert_eq!(r.batches.last().map(|b| b.window), Some(Some(2)));
        let t = table(&r);
        assert!(t.contains("Sat 2026-12-05 02:00 – 05:59  240 × 10        2400        10  1\n"), "{t}");
        assert!(t.contains("endTime Sat 2026-12-12 03:00 UTC stops the rollout (endBehavior CANCEL): 2000 of 5000 things get no execution"), "{t}");
        assert!(t.contains("  1  Sat 2026-12-05 02:00 – 06:00 UTC  2400 executions\n  2  Sat 2026-12-12 02:00 – 06:00 UTC  600 executions\n"), "{t}");
        let json: Value = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(
            json["stop"],
            serde_json::json!({"reason": "endTime", "at": "2026-12-12T03:00:00Z", "endBehavior": "CANCEL"})
        );
        assert_eq!(
            json["windows"][1],
            serde_json::json!({"firstBatch": "2026-12-12T02:00:00Z", "closes": "2026-12-12T06:00:00Z", "executions": 600})
        );
        assert_eq!(
            json["batches"][0],
            serde_json::json!({"at": "2026-12-05T02:00:00Z", "count": 10, "cumulative": 10, "perMinute": 10, "window": 1})
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(human(at("2026-12-05T02:00")), "Sat 2026-12-05 02:00");
        assert_eq!(human(at("2026-12-02T10:00:30")), "Wed 2026-12-02 10:00:30");
        assert_eq!(human(0), "Thu 1970-01-01 00:00");
        assert_eq!(human_after(at("2026-12-05T02:00"), at("2026-12-05T06:00")), "06:00");
        assert_eq!(human_after(at("2026-12-05T23:00"), at("2026-12-06T01:00")), "Sun 2026-12-06 01:00");
        assert_eq!(rfc3339(at("2026-12-05T02:00:07")), "2026-12-05T02:00:07Z");
        assert_eq!(duration(37 * MINUTE), "37 minutes");
        assert_eq!(duration((24 * 60 + 61) * MINUTE), "1 day 1 hour 1 minute");
        assert_eq!(duration(30_000), "less than a minute");
    }
}
