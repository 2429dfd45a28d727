//! The Jobs MQTT API's topics: parsing the request topics `$aws/things/{thingName}/jobs/...`,
//! and building every `$aws/...` topic the server publishes on (replies, notifications, events).
//!
//! A job created with a `namespaceId` lives on the namespaced variants of the topics, in the
//! form AWS documents (`…/jobs/JOB_ID/notify-namespace-NAMESPACE_ID/`) and the Greengrass
//! clients use: requests on a job put a `namespace-{ns}` level after the job id
//! (`jobs/{jobId|$next}/namespace-{ns}/get|update`), and the pushes append `-namespace-{ns}`
//! to their verb (`jobs/notify-namespace-{ns}`, `jobs/notify-next-namespace-{ns}`). No
//! source shows a namespaced `jobs/get` or `jobs/start-next`, so there is none here: those
//! two serve the default namespace only.

// Parsed on every device request: plain byte checks, no regex and no allocation. The
// names' alphabets are ASCII, so a byte count is a character count.

/// A thing name as a topic level: `[a-zA-Z0-9:_-]{1,128}`.
fn is_thing_name(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// `[a-zA-Z0-9_-]{1,64}`: a job id or a namespace id.
fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// A job id as a topic level, or `$next`.
fn is_job_id(s: &str) -> bool {
    s == "$next" || is_id(s)
}

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
    /// A request of `thing` in a job namespace (`None`: the default one); answer on
    /// `{topic}/accepted` or `{topic}/rejected`.
    Request { thing: &'a str, namespace: Option<&'a str>, request: JobsRequest<'a> },
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
    if !is_thing_name(thing) {
        return JobsTopic::Invalid { thing };
    }
    // At most three levels after `jobs` make a request.
    let mut found = [""; 3];
    let mut n = 0;
    for level in rest.split('/').skip(1) {
        let Some(slot) = found.get_mut(n) else { return JobsTopic::Invalid { thing } };
        *slot = level;
        n += 1;
    }
    let (namespace, levels) = match found[..n] {
        [job_id, ns, verb] => match namespace_of_level(ns) {
            Some(ns) => (Some(ns), [job_id, verb, ""]),
            None => return JobsTopic::Invalid { thing },
        },
        _ => (None, found),
    };
    let levels = &levels[..n.min(2)];
    let request = match *levels {
        ["get"] => Some(JobsRequest::GetPending),
        ["start-next"] => Some(JobsRequest::StartNext),
        [job_id, "get"] if is_job_id(job_id) => Some(JobsRequest::Describe { job_id }),
        [job_id, "update"] if is_job_id(job_id) && job_id != "$next" => Some(JobsRequest::Update { job_id }),
        _ => None,
    };
    match request {
        Some(request) => JobsTopic::Request { thing, namespace, request },
        None => JobsTopic::Invalid { thing },
    }
}

/// `namespace-{ns}` → `ns`.
fn namespace_of_level(level: &str) -> Option<&str> {
    level.strip_prefix("namespace-").filter(|ns| is_id(ns))
}

// Topics are built for every request and notification: `<[&str]>::concat` makes one
// allocation of the exact size, without `format!`'s machinery and growth.

/// `{thing}/jobs/{verb}` under `$aws/things/`, with `-namespace-{ns}` after the verb for a
/// namespaced job.
fn push_topic(thing: &str, verb: &str, namespace: Option<&str>) -> String {
    match namespace {
        None => ["$aws/things/", thing, "/jobs/", verb].concat(),
        Some(ns) => ["$aws/things/", thing, "/jobs/", verb, "-namespace-", ns].concat(),
    }
}

/// Where a request is answered: `{request topic}/accepted` or `/rejected`.
pub fn reply(request_topic: &str, accepted: bool) -> String {
    let outcome = if accepted { "/accepted" } else { "/rejected" };
    [request_topic, outcome].concat()
}

/// `jobs/notify` (`jobs/notify-namespace-{ns}`): a thing's pending executions in a namespace
/// changed.
pub fn notify(thing: &str, namespace: Option<&str>) -> String {
    push_topic(thing, "notify", namespace)
}

/// `jobs/notify-next` (`jobs/notify-next-namespace-{ns}`): a thing's next pending execution
/// in a namespace changed.
pub fn notify_next(thing: &str, namespace: Option<&str>) -> String {
    push_topic(thing, "notify-next", namespace)
}

/// The levels every job event topic starts with ([`job_event`], [`execution_event`]).
pub const EVENTS_PREFIX: &str = "$aws/events";

/// A JOB event: `$aws/events/job/{jobId}/{operation}`.
pub fn job_event(job_id: &str, operation: &str) -> String {
    ["$aws/events/job/", job_id, "/", operation].concat()
}

/// A JOB_EXECUTION event: `$aws/events/jobExecution/{jobId}/{operation}`.
pub fn execution_event(job_id: &str, operation: &str) -> String {
    ["$aws/events/jobExecution/", job_id, "/", operation].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(
            parse("$aws/things/T1/jobs/get"),
            JobsTopic::Request { thing: "T1", namespace: None, request: JobsRequest::GetPending }
        );
        assert_eq!(
            parse("$aws/things/T1/jobs/start-next"),
            JobsTopic::Request { thing: "T1", namespace: None, request: JobsRequest::StartNext }
        );
        assert_eq!(
            parse("$aws/things/T1/jobs/$next/get"),
            JobsTopic::Request { thing: "T1", namespace: None, request: JobsRequest::Describe { job_id: "$next" } }
        );
        assert_eq!(
            parse("$aws/things/a:b/jobs/job-1/update"),
            JobsTopic::Request { thing: "a:b", namespace: None, request: JobsRequest::Update { job_id: "job-1" } }
        );
    }

    #[test]
    fn namespaced_requests() {
        let ns = Some("aws-gg-deployment");
        assert_eq!(
            parse("$aws/things/T1/jobs/$next/namespace-aws-gg-deployment/get"),
            JobsTopic::Request { thing: "T1", namespace: ns, request: JobsRequest::Describe { job_id: "$next" } }
        );
        assert_eq!(
            parse("$aws/things/T1/jobs/j1/namespace-aws-gg-deployment/get"),
            JobsTopic::Request { thing: "T1", namespace: ns, request: JobsRequest::Describe { job_id: "j1" } }
        );
        assert_eq!(
            parse("$aws/things/T1/jobs/j1/namespace-aws-gg-deployment/update"),
            JobsTopic::Request { thing: "T1", namespace: ns, request: JobsRequest::Update { job_id: "j1" } }
        );
        // A job whose id starts with "namespace-" is still a job on the default topics.
        assert_eq!(
            parse("$aws/things/T1/jobs/namespace-x/get"),
            JobsTopic::Request {
                thing: "T1",
                namespace: None,
                request: JobsRequest::Describe { job_id: "namespace-x" }
            }
        );
        for t in [
            "$aws/things/T1/jobs/$next/namespace-a/update",
            "$aws/things/T1/jobs/j1/namespace-/get",
            "$aws/things/T1/jobs/j1/namespace-bad ns/get",
            "$aws/things/T1/jobs/j1/space-a/get",
            "$aws/things/T1/jobs/j1/namespace-a/frobnicate",
            "$aws/things/T1/jobs/namespace-a/get/extra",
            "$aws/things/T1/jobs/j1/namespace-a/get/accepted",
            "$aws/things/T1/jobs/notify-namespace-a",
            "$aws/things/T1/jobs/notify-next-namespace-a",
        ] {
            assert_eq!(parse(t), JobsTopic::Invalid { thing: "T1" }, "{t}");
        }
        assert_eq!(notify("T1", Some("a")), "$aws/things/T1/jobs/notify-namespace-a");
        assert_eq!(notify_next("T1", Some("a")), "$aws/things/T1/jobs/notify-next-namespace-a");
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
        let notify = notify("T1", None);
        assert_eq!(notify, "$aws/things/T1/jobs/notify");
        assert_eq!(parse(&notify), JobsTopic::Invalid { thing: "T1" }, "a push topic is no request");
        assert_eq!(parse(&notify_next("T1", None)), JobsTopic::Invalid { thing: "T1" });
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
