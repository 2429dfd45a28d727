//! The Jobs MQTT API's topics: parsing the request topics `$aws/things/{thingName}/jobs/...`,
//! and building every `$aws/...` topic the server publishes on (replies, notifications, events).

use std::sync::LazyLock;

use regex::Regex;

static THING: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[a-zA-Z0-9:_-]{1,128}$").expect("static"));
static JOB_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^([a-zA-Z0-9_-]{1,64}|\$next)$").expect("static"));

/// One request of the Jobs MQTT API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobsRequest<'a> {
    /// `jobs/get`: GetPendingJobExecutions.
    GetPending,
    /// `jobs/start-next`: StartNextPendingJobExecution.
    StartNext,
    /// `jobs/{jobId}/get`: DescribeJobExecution (`jobId` may be `$next`).
    Describe { job_id: &'a str },
    /// `jobs/{jobId}/update`: UpdateJobExecution.
    Update { job_id: &'a str },
}

/// What a published topic means to the jobs service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobsTopic<'a> {
    /// A request of `thing`; answer on `{topic}/accepted` or `{topic}/rejected`.
    Request { thing: &'a str, request: JobsRequest<'a> },
    /// Under `$aws/things/{thing}/jobs/` but no API: answer `InvalidTopic` on `{topic}/rejected`.
    Invalid { thing: &'a str },
    /// Not a jobs topic at all.
    NotJobs,
}

pub fn parse(topic: &str) -> JobsTopic<'_> {
    let Some(rest) = topic.strip_prefix("$aws/things/") else { return JobsTopic::NotJobs };
    let Some((thing, rest)) = rest.split_once('/') else { return JobsTopic::NotJobs };
    let Some(rest) = rest.strip_prefix("jobs").filter(|r| r.is_empty() || r.starts_with('/')) else {
        return JobsTopic::NotJobs;
    };
    if !THING.is_match(thing) {
        return JobsTopic::Invalid { thing };
    }
    let levels: Vec<&str> = rest.split('/').skip(1).collect();
    let request = match levels.as_slice() {
        ["get"] => Some(JobsRequest::GetPending),
        ["start-next"] => Some(JobsRequest::StartNext),
        [job_id, "get"] if JOB_ID.is_match(job_id) => Some(JobsRequest::Describe { job_id }),
        [job_id, "update"] if JOB_ID.is_match(job_id) && *job_id != "$next" => Some(JobsRequest::Update { job_id }),
        _ => None,
    };
    match request {
        Some(request) => JobsTopic::Request { thing, request },
        None => JobsTopic::Invalid { thing },
    }
}

/// Where a request is answered: `{request topic}/accepted` or `/rejected`.
pub fn reply(request_topic: &str, accepted: bool) -> String {
    let outcome = if accepted { "accepted" } else { "rejected" };
    format!("{request_topic}/{outcome}")
}

/// `jobs/notify`: a thing's pending executions changed.
pub fn notify(thing: &str) -> String {
    format!("$aws/things/{thing}/jobs/notify")
}

/// `jobs/notify-next`: a thing's next pending execution changed.
pub fn notify_next(thing: &str) -> String {
    format!("$aws/things/{thing}/jobs/notify-next")
}

/// A JOB event: `$aws/events/job/{jobId}/{operation}`.
pub fn job_event(job_id: &str, operation: &str) -> String {
    format!("$aws/events/job/{job_id}/{operation}")
}

/// A JOB_EXECUTION event: `$aws/events/jobExecution/{jobId}/{operation}`.
pub fn execution_event(job_id: &str, operation: &str) -> String {
    format!("$aws/events/jobExecution/{job_id}/{operation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(
            parse("$aws/things/T1/jobs/get"),
            JobsTopic::Request { thing: "T1", request: JobsRequest::GetPending }
        );
        assert_eq!(
            parse("$aws/things/T1/jobs/start-next"),
            JobsTopic::Request { thing: "T1", request: JobsRequest::StartNext }
        );
        assert_eq!(
            parse("$aws/things/T1/jobs/$next/get"),
            JobsTopic::Request { thing: "T1", request: JobsRequest::Describe { job_id: "$next" } }
        );
        assert_eq!(
            parse("$aws/things/a:b/jobs/job-1/update"),
            JobsTopic::Request { thing: "a:b", request: JobsRequest::Update { job_id: "job-1" } }
        );
    }

    #[test]
    fn invalid_topics_under_jobs() {
        for t in [
            "$aws/things/T1/jobs",
            "$aws/things/T1/jobs/",
            "$aws/things/T1/jobs/frobnicate",
            "$aws/things/T1/jobs/get/accepted",
            "$aws/things/T1/jobs/notify-next",
            "$aws/things/T1/jobs/$next/update",
            "$aws/things/T1/jobs/bad id/get",
            "$aws/things/T1/jobs/j/get/extra",
        ] {
            assert_eq!(parse(t), JobsTopic::Invalid { thing: "T1" }, "{t}");
        }
        assert_eq!(parse("$aws/things/bad thing/jobs/get"), JobsTopic::Invalid { thing: "bad thing" });
    }

    #[test]
    fn built_topics_parse_as_what_they_are() {
        let notify = notify("T1");
        assert_eq!(notify, "$aws/things/T1/jobs/notify");
        assert_eq!(parse(&notify), JobsTopic::Invalid { thing: "T1" }, "a push topic is no request");
        assert_eq!(parse(&notify_next("T1")), JobsTopic::Invalid { thing: "T1" });
        assert_eq!(reply("$aws/things/T1/jobs/get", true), "$aws/things/T1/jobs/get/accepted");
        assert_eq!(parse(&reply("$aws/things/T1/jobs/get", false)), JobsTopic::Invalid { thing: "T1" });
        assert_eq!(parse(&job_event("j", "completed")), JobsTopic::NotJobs);
        assert_eq!(execution_event("j", "succeeded"), "$aws/events/jobExecution/j/succeeded");
    }

    #[test]
    fn other_topics() {
        for t in [
            "testTopic",
            "$aws/things/T1/shadow/get",
            "$aws/things/T1/jobsx/get",
            "$aws/events/job/x/completed",
            "$aws/things/T1",
        ] {
            assert_eq!(parse(t), JobsTopic::NotJobs, "{t}");
        }
    }
}
