//! AWS IoT Core policy documents and their evaluation (pure code).
//!
//! [`PolicyDocument::parse`] validates a policy the way `CreatePolicy` does (its
//! [`PolicyError`] message goes into a `MalformedPolicyException`), and
//! [`is_allowed`] decides an MQTT action for a principal from all of its
//! attached policies: any matching `Deny` wins, else any matching `Allow`,
//! else deny (no policy means no access).
//!
//! Supported, as in AWS IoT:
//! - `Version` `"2012-10-17"` or `"2008-10-17"` (or absent); `Id`; statements as
//!   an object or an array, with `Sid`, `Effect`, `Action`/`NotAction`,
//!   `Resource`/`NotResource`, `Condition`. Any other element is rejected.
//! - Actions: glob patterns (`*`, `?`), case-insensitive (`iot:*`, `iot:publish`, `*`).
//! - Resources: `*` or an ARN `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`
//!   (all six fields). Fleetjobs is single-tenant, so partition, region and
//!   account are ignored; SERVICE must glob-match `iot` and RESOURCE (everything
//!   after the fifth colon) is glob-matched, case-sensitively, against e.g.
//!   `topic/$aws/things/T/jobs/get`. `*` matches any sequence including `/`,
//!   `?` one character; MQTT's `+` and `#` are literal characters here.
//! - Policy variables in resources and condition values:
//!   `${iot:ClientId}`, `${iot:Connection.Thing.ThingName}`,
//!   `${iot:Connection.Thing.IsAttached}` and the escapes `${*}`, `${?}`, `${$}`.
//!   Substituted values match literally (a `*` in a client id is not a wildcard).
//!   A pattern using a variable with no value (no attached thing, or an unknown
//!   variable) matches nothing, as in AWS.
//! - Conditions: `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`,
//!   `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `Bool`
//!   (each also with the `IfExists` suffix) and `Null`, on the keys
//!   `iot:ClientId`, `iot:Connection.Thing.ThingName` and
//!   `iot:Connection.Thing.IsAttached`, with IAM semantics (values OR-ed,
//!   keys and operators AND-ed, negated operators true when the key is absent).
//!   A condition using anything else (another operator or key, `ForAnyValue:`…)
//!   or a condition value whose variable has no value is *not understood*, and
//!   the statement then never matches. That is the safe reading for an `Allow`;
//!   for a `Deny` it means the deny does not apply, so keep deny statements
//!   within what is supported here.

use serde_json::{Map, Value};

/// Why a policy document was rejected; the message suits an AWS
/// `MalformedPolicyException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Policy document is not valid JSON")]
    InvalidJson,
    #[error("Policy document must be a JSON object")]
    NotAnObject,
    #[error("Invalid Version: {0}")]
    InvalidVersion(String),
    #[error("Policy document must contain Statement")]
    MissingStatement,
    #[error("Statement must be an object or a non-empty array of objects")]
    InvalidStatement,
    #[error("Unsupported policy element: {0}")]
    UnsupportedElement(String),
    #[error("Invalid Effect")]
    InvalidEffect,
    #[error("Statement must contain exactly one of Action or NotAction")]
    MissingAction,
    #[error("Invalid Action: {0}")]
    InvalidAction(String),
    #[error("Statement must contain exactly one of Resource or NotResource")]
    MissingResource,
    #[error("Invalid Resource: {0} (expected \"*\" or arn:aws:iot:REGION:ACCOUNT:RESOURCE)")]
    InvalidResource(String),
    #[error("Condition must be an object")]
    InvalidCondition,
}

/// The device actions Fleetjobs authorizes (MQTT, and the `iot-jobs-data` HTTPS API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IotAction {
    /// `iot:Connect`, resource `client/{clientId}`.
    Connect,
    /// `iot:Publish`, resource `topic/{topic}`.
    Publish,
    /// `iot:Subscribe`, resource `topicfilter/{filter}`.
    Subscribe,
    /// `iot:Receive`, resource `topic/{topic}`.
    Receive,
    /// `iot:RetainPublish`, resource `topic/{topic}`: a PUBLISH with the retain flag needs it
    /// besides `iot:Publish`.
    RetainPublish,
    /// The `iot-jobs-data` HTTPS actions of a device, resource `thing/{thingName}`.
    GetPendingJobExecutions,
    StartNextPendingJobExecution,
    DescribeJobExecution,
    UpdateJobExecution,
}

impl IotAction {
    /// The IAM action name, e.g. `"iot:Connect"`.
    pub fn as_str(self) -> &'static str {
        match self {
            IotAction::Connect => "iot:Connect",
            IotAction::Publish => "iot:Publish",
            IotAction::Subscribe => "iot:Subscribe",
            IotAction::Receive => "iot:Receive",
            IotAction::RetainPublish => "iot:RetainPublish",
            IotAction::GetPendingJobExecutions => "iot:GetPendingJobExecutions",
            IotAction::StartNextPendingJobExecution => "iot:StartNextPendingJobExecution",
            IotAction::DescribeJobExecution => "iot:DescribeJobExecution",
            IotAction::UpdateJobExecution => "iot:UpdateJobExecution",
        }
    }
}

impl IotAction {
    const ALL: [IotAction; 9] = [
        IotAction::Connect,
        IotAction::Publish,
        IotAction::Subscribe,
        IotAction::Receive,
        IotAction::RetainPublish,
        IotAction::GetPendingJobExecutions,
        IotAction::StartNextPendingJobExecution,
        IotAction::DescribeJobExecution,
        IotAction::UpdateJobExecution,
    ];

    /// The action name lowercased, as statements' action patterns are (IAM action names are
    /// case-insensitive).
    fn lowercase(self) -> &'static str {
        match self {
            IotAction::Connect => "iot:connect",
            IotAction::Publish => "iot:publish",
            IotAction::Subscribe => "iot:subscribe",
            IotAction::Receive => "iot:receive",
            IotAction::RetainPublish => "iot:retainpublish",
            IotAction::GetPendingJobExecutions => "iot:getpendingjobexecutions",
            IotAction::StartNextPendingJobExecution => "iot:startnextpendingjobexecution",
            IotAction::DescribeJobExecution => "iot:describejobexecution",
            IotAction::UpdateJobExecution => "iot:updatejobexecution",
        }
    }
}

impl std::fmt::Display for IotAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The values of the policy variables for one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyContext<'a> {
    /// MQTT client id (`${iot:ClientId}`).
    pub client_id: &'a str,
    /// Name of the thing attached to the certificate whose name equals the
    /// client id (`${iot:Connection.Thing.ThingName}`); `None` when there is none.
    pub thing_name: Option<&'a str>,
    /// The connection's certificate id. Not an AWS policy variable; carried for
    /// callers, unused by evaluation.
    pub certificate_id: Option<&'a str>,
}

/// The outcome of evaluating all policies of a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Some `Allow` statement matched and no `Deny` did.
    Allow,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// No statement matched.
    ImplicitDeny,
}

/// A parsed, validated AWS IoT policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Parses and validates a policy document (the `policyDocument` JSON string).
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(json).map_err(|_| PolicyError::InvalidJson)?;
        let Value::Object(doc) = value else {
            return Err(PolicyError::NotAnObject);
        };
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::UnsupportedElement(key.clone()));
            }
        }
        match doc.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(other) => return Err(PolicyError::InvalidVersion(display(other))),
        }
        let statements = match doc.get("Statement") {
            None | Some(Value::Null) => return Err(PolicyError::MissingStatement),
            Some(Value::Object(s)) => vec![Statement::parse(s)?],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    Value::Object(s) => Statement::parse(s),
                    _ => Err(PolicyError::InvalidStatement),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(PolicyError::InvalidStatement),
        };
        Ok(Self { statements })
    }

    /// The effect of this document alone: `Some(Deny)` if a deny statement
    /// matches, else `Some(Allow)` if an allow statement matches, else `None`.
    fn effect(&self, action: IotAction, resource: &str, ctx: &PolicyContext) -> Option<Effect> {
        let mut result = None;
        for statement in &self.statements {
            if statement.applies(action, resource, ctx) {
                match statement.effect {
                    Effect::Deny => return Some(Effect::Deny),
                    Effect::Allow => result = Some(Effect::Allow),
                }
            }
        }
        result
    }
}

impl AsRef<PolicyDocument> for PolicyDocument {
    fn as_ref(&self) -> &PolicyDocument {
        self
    }
}

/// Evaluates all policies attached to a principal; see [`is_allowed`]. The policies come as
/// any iterator (`&[&PolicyDocument]`, the state's `Arc`s as they are found): the device
/// path checks every packet and collects nothing.
pub fn decide<P: AsRef<PolicyDocument>>(
    policies: impl IntoIterator<Item = P>,
    action: IotAction,
    resource: &str,
    ctx: &PolicyContext,
) -> Decision {
    let mut decision = Decision::ImplicitDeny;
    for policy in policies {
        match policy.as_ref().effect(action, resource, ctx) {
            Some(Effect::Deny) => return Decision::ExplicitDeny,
            Some(Effect::Allow) => decision = Decision::Allow,
            None => {}
        }
    }
    decision
}

/// Decision over all policies attached to a principal: any matching `Deny`
/// wins; else any matching `Allow`; else deny (no policy, no access).
///
/// `resource` is the part of the ARN after `ACCOUNT:`, e.g.
/// `topic/$aws/things/T/jobs/get`, `topicfilter/$aws/things/T/jobs/#` or
/// `client/myClient`.
pub fn is_allowed<P: AsRef<PolicyDocument>>(
    policies: impl IntoIterator<Item = P>,
    action: IotAction,
    resource: &str,
    ctx: &PolicyContext,
) -> bool {
    decide(policies, action, resource, ctx) == Decision::Allow
}

// ---------------------------------------------------------------------------
// Statements

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    actions: Actions,
    /// `true` for `NotResource`.
    resources: (bool, Vec<ResourcePattern>),
    condition: Condition,
}

impl Statement {
    fn parse(s: &Map<String, Value>) -> Result<Self, PolicyError> {
        for key in s.keys() {
            if !matches!(
                key.as_str(),
                "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition"
            ) {
                return Err(PolicyError::UnsupportedElement(key.clone()));
            }
        }
        let effect = match s.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Effect::Allow,
            Some(Value::String(e)) if e == "Deny" => Effect::Deny,
            _ => return Err(PolicyError::InvalidEffect),
        };

        let (negated, raw) = one_of(s, "Action", "NotAction").ok_or(PolicyError::MissingAction)?;
        let patterns: Vec<Pattern> = strings(raw)
            .ok_or_else(|| PolicyError::InvalidAction(display(raw)))?
            .into_iter()
            .map(|a| {
                if a == "*" || a.contains(':') {
                    Ok(Pattern::parse(&a.to_ascii_lowercase(), false))
                } else {
                    Err(PolicyError::InvalidAction(a.to_owned()))
                }
            })
            .collect::<Result<_, _>>()?;

        let (not_resource, raw) = one_of(s, "Resource", "NotResource").ok_or(PolicyError::MissingResource)?;
        let resources = strings(raw)
            .ok_or_else(|| PolicyError::InvalidResource(display(raw)))?
            .into_iter()
            .map(ResourcePattern::parse)
            .collect::<Result<_, _>>()?;

        let condition = match s.get("Condition") {
            None => Condition::Clauses(Vec::new()),
            Some(Value::Object(c)) => Condition::parse(c),
            Some(_) => return Err(PolicyError::InvalidCondition),
        };

        let actions = Actions::matching(&patterns, negated);
        Ok(Self { effect, actions, resources: (not_resource, resources), condition })
    }

    fn applies(&self, action: IotAction, resource: &str, ctx: &PolicyContext) -> bool {
        if !self.actions.contains(action) {
            return false;
        }
        // A pattern whose variable has no value matches nothing; under
        // `NotResource` it makes the whole statement inapplicable rather than
        // letting it cover everything.
        let (not_resource, patterns) = &self.resources;
        let mut matched = false;
        for pattern in patterns {
            match pattern.try_match(resource, ctx) {
                Some(true) => matched = true,
                Some(false) => {}
                None if *not_resource => return false,
                None => {}
            }
        }
        if matched == *not_resource {
            return false;
        }
        self.condition.holds(ctx)
    }
}

/// The actions a statement covers (its `Action`, or every action but its `NotAction`), decided
/// when the policy is parsed: action patterns hold no policy variables and the actions
/// Fleetjobs authorizes are a fixed set, so the check at every packet is a bit test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Actions(u16);

impl Actions {
    fn matching(patterns: &[Pattern], negated: bool) -> Self {
        let no_variables = PolicyContext::default();
        let covered = IotAction::ALL
            .iter()
            .filter(|a| patterns.iter().any(|p| p.matches(a.lowercase(), &no_variables)) != negated)
            .fold(0, |bits, a| bits | Self::bit(*a));
        Actions(covered)
    }

    fn bit(action: IotAction) -> u16 {
        1 << action as u16
    }

    fn contains(self, action: IotAction) -> bool {
        self.0 & Self::bit(action) != 0
    }
}

/// Exactly one of the two keys: `(is_second, value)`.
fn one_of<'v>(s: &'v Map<String, Value>, a: &str, not_a: &str) -> Option<(bool, &'v Value)> {
    match (s.get(a), s.get(not_a)) {
        (Some(v), None) => Some((false, v)),
        (None, Some(v)) => Some((true, v)),
        _ => None,
    }
}

/// A string or a non-empty array of strings.
fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s]),
        Value::Array(items) if !items.is_empty() => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Resources

#[derive(Debug, Clone, PartialEq, Eq)]
enum ResourcePattern {
    Any,
    /// An `iot` ARN (the service field matched `iot` when the policy was parsed).
    Arn {
        resource: Pattern,
    },
    /// An ARN of another service: covers nothing Fleetjobs authorizes.
    OtherService,
}

impl ResourcePattern {
    fn parse(s: &str) -> Result<Self, PolicyError> {
        if s == "*" {
            return Ok(Self::Any);
        }
        let invalid = || PolicyError::InvalidResource(s.to_owned());
        let mut fields = s.splitn(6, ':');
        if fields.next() != Some("arn") {
            return Err(invalid());
        }
        let _partition = fields.next().ok_or_else(invalid)?;
        let service = fields.next().ok_or_else(invalid)?;
        let _region = fields.next().ok_or_else(invalid)?;
        let _account = fields.next().ok_or_else(invalid)?;
        let resource = fields.next().ok_or_else(invalid)?;
        // The service field holds no policy variables: decided once.
        if !Pattern::parse(service, false).matches("iot", &PolicyContext::default()) {
            return Ok(Self::OtherService);
        }
        Ok(Self::Arn { resource: Pattern::parse(resource, true) })
    }

    /// `None` when the pattern uses a variable that has no value.
    fn try_match(&self, resource: &str, ctx: &PolicyContext) -> Option<bool> {
        match self {
            Self::Any => Some(true),
            Self::Arn { resource: pattern } => pattern.try_match(resource, ctx),
            Self::OtherService => Some(false),
        }
    }
}

// ---------------------------------------------------------------------------
// Glob patterns with policy variables

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    ClientId,
    ThingName,
    IsAttached,
    /// Not a variable Fleetjobs knows: never has a value.
    Unknown,
}

impl Var {
    fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "iot:clientid" => Var::ClientId,
            "iot:connection.thing.thingname" => Var::ThingName,
            "iot:connection.thing.isattached" => Var::IsAttached,
            _ => Var::Unknown,
        }
    }

    fn value<'a>(self, ctx: &PolicyContext<'a>) -> Option<&'a str> {
        match self {
            Var::ClientId => Some(ctx.client_id),
            Var::ThingName => ctx.thing_name,
            Var::IsAttached => Some(if ctx.thing_name.is_some() { "true" } else { "false" }),
            Var::Unknown => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Lit(char),
    /// `?`
    AnyChar,
    /// `*`
    AnySeq,
    Var(Var),
}

/// A glob pattern, optionally with `${...}` policy variables: its pieces, and the same with
/// every run of literal characters joined, which matching walks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    pieces: Vec<Piece>,
    segments: Vec<Segment>,
}

/// A piece of a pattern as matching sees it: a run of literal characters is one string,
/// compared with the text at once, rather than a step of the match per character (a resource
/// ARN is ~80 characters, checked several times per packet of every device).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Lit(Box<str>),
    AnyChar,
    AnySeq,
    Var(Var),
}

impl Pattern {
    fn parse(s: &str, variables: bool) -> Self {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if variables && rest.starts_with("${") {
                if let Some(end) = rest.find('}') {
                    pieces.push(match &rest[2..end] {
                        "*" => Piece::Lit('*'),
                        "?" => Piece::Lit('?'),
                        "$" => Piece::Lit('$'),
                        name => Piece::Var(Var::from_name(name)),
                    });
                    rest = &rest[end + 1..];
                    continue;
                }
            }
            pieces.push(match c {
                '*' => Piece::AnySeq,
                '?' => Piece::AnyChar,
                c => Piece::Lit(c),
            });
            rest = &rest[c.len_utf8()..];
        }
        Pattern::new(pieces)
    }

    fn new(pieces: Vec<Piece>) -> Self {
        let mut segments = Vec::new();
        let mut run = String::new();
        for piece in &pieces {
            let segment = match piece {
                Piece::Lit(c) => {
                    run.push(*c);
                    continue;
                }
                Piece::AnyChar => Segment::AnyChar,
                Piece::AnySeq => Segment::AnySeq,
                Piece::Var(var) => Segment::Var(*var),
            };
            if !run.is_empty() {
                segments.push(Segment::Lit(std::mem::take(&mut run).into_boxed_str()));
            }
            segments.push(segment);
        }
        if !run.is_empty() {
            segments.push(Segment::Lit(run.into_boxed_str()));
        }
        Pattern { pieces, segments }
    }

    /// Substitutes variables; `None` if one has no value.
    fn resolve(&self, ctx: &PolicyContext) -> Option<Vec<Piece>> {
        let mut out = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            match piece {
                Piece::Var(var) => out.extend(var.value(ctx)?.chars().map(Piece::Lit)),
                other => out.push(*other),
            }
        }
        Some(out)
    }

    /// `None` when a variable has no value. Evaluated at every packet of every device, so
    /// variables are matched in place, as the literal text of their value: nothing allocated.
    fn try_match(&self, text: &str, ctx: &PolicyContext) -> Option<bool> {
        if self.segments.iter().any(|s| matches!(s, Segment::Var(v) if v.value(ctx).is_none())) {
            return None;
        }
        Some(glob_in_place(&self.segments, text, ctx))
    }

    fn matches(&self, text: &str, ctx: &PolicyContext) -> bool {
        self.try_match(text, ctx) == Some(true)
    }
}

/// [`glob`] over unresolved segments and a `&str`: a variable matches its value's text
/// literally (as the characters it resolves to would), a literal run its text, `?` one
/// character. The caller has checked that every variable has a value. Same single-star
/// backtracking as [`glob`]: between two stars every segment has a fixed length, so a run of
/// them either matches whole at a position or the match backtracks to the last `*`, exactly
/// as their characters one by one would (checked against [`glob`] by a property test).
fn glob_in_place(pattern: &[Segment], text: &str, ctx: &PolicyContext) -> bool {
    let value = |var: &Var| var.value(ctx).unwrap_or_default();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let rest = &text[t..];
        let step = match pattern.get(p) {
            // A trailing `*` takes whatever text is left: no need to walk it (a resource
            // like `topic/$aws/things/${iot:ClientId}/jobs/*` ends in one).
            Some(Segment::AnySeq) if p + 1 == pattern.len() => return true,
            Some(Segment::AnySeq) => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(Segment::AnyChar) => rest.chars().next().map(char::len_utf8),
            Some(Segment::Lit(l)) if rest.starts_with(&**l) => Some(l.len()),
            Some(Segment::Var(var)) if rest.starts_with(value(var)) => Some(value(var).len()),
            _ => None,
        };
        match (step, star) {
            (Some(n), _) => {
                p += 1;
                t += n;
            }
            (None, Some((sp, st))) => {
                let mut next = st + text[st..].chars().next().map_or(1, char::len_utf8);
                // The segment after the star is literal text: the match can resume only where
                // that text occurs, so skip to it instead of trying each position between.
                let after = match pattern.get(sp + 1) {
                    Some(Segment::Lit(l)) => Some(&**l),
                    Some(Segment::Var(var)) => Some(value(var)),
                    _ => None,
                };
                if let Some(needle) = after {
                    match text.get(next..).and_then(|rest| rest.find(needle)) {
                        Some(at) => next += at,
                        None => return false,
                    }
                }
                p = sp + 1;
                t = next;
                star = Some((sp, next));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|segment| match segment {
        Segment::AnySeq => true,
        Segment::Var(var) => value(var).is_empty(),
        _ => false,
    })
}

/// Glob match with single-star backtracking (linear in practice, never exponential).
fn glob(pattern: &[Piece], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Piece::AnySeq) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Piece::AnyChar) => {
                p += 1;
                t += 1;
            }
            Some(Piece::Lit(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|piece| *piece == Piece::AnySeq)
}

// ---------------------------------------------------------------------------
// Conditions

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// All clauses must hold (none: no condition).
    Clauses(Vec<Clause>),
    /// Something Fleetjobs does not evaluate: the statement never matches.
    NotUnderstood,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StringEquals { ignore_case: bool },
    StringLike,
    Bool,
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    op: Op,
    negated: bool,
    if_exists: bool,
    key: Var,
    values: Vec<Pattern>,
}

impl Condition {
    fn parse(c: &Map<String, Value>) -> Self {
        let mut clauses = Vec::new();
        for (operator, block) in c {
            let (name, if_exists) = match operator.strip_suffix("IfExists") {
                Some(name) => (name, true),
                None => (operator.as_str(), false),
            };
            let (op, negated) = match name {
                "StringEquals" => (Op::StringEquals { ignore_case: false }, false),
                "StringNotEquals" => (Op::StringEquals { ignore_case: false }, true),
                "StringEqualsIgnoreCase" => (Op::StringEquals { ignore_case: true }, false),
                "StringNotEqualsIgnoreCase" => (Op::StringEquals { ignore_case: true }, true),
                "StringLike" => (Op::StringLike, false),
                "StringNotLike" => (Op::StringLike, true),
                "Bool" => (Op::Bool, false),
                "Null" if !if_exists => (Op::Null, false),
                _ => return Condition::NotUnderstood,
            };
            let Value::Object(block) = block else {
                return Condition::NotUnderstood;
            };
            for (key, values) in block {
                let key = Var::from_name(key);
                let raw: Vec<String> = match values {
                    Value::Array(items) if !items.is_empty() => match items.iter().map(scalar).collect::<Option<_>>() {
                        Some(v) => v,
                        None => return Condition::NotUnderstood,
                    },
                    single => match scalar(single) {
                        Some(v) => vec![v],
                        None => return Condition::NotUnderstood,
                    },
                };
                if key == Var::Unknown {
                    return Condition::NotUnderstood;
                }
                let values = raw
                    .iter()
                    .map(|v| match op {
                        // Wildcards only mean something to StringLike.
                        Op::StringLike => Pattern::parse(v, true),
                        _ => Pattern::new(
                            Pattern::parse(v, true)
                                .pieces
                                .into_iter()
                                .map(|piece| match piece {
                                    Piece::AnySeq => Piece::Lit('*'),
                                    Piece::AnyChar => Piece::Lit('?'),
                                    other => other,
                                })
                                .collect(),
                        ),
                    })
                    .collect();
                clauses.push(Clause { op, negated, if_exists, key, values });
            }
        }
        Condition::Clauses(clauses)
    }

    fn holds(&self, ctx: &PolicyContext) -> bool {
        match self {
            Condition::NotUnderstood => false,
            Condition::Clauses(clauses) => clauses.iter().all(|c| c.holds(ctx) == Some(true)),
        }
    }
}

impl Clause {
    /// `None` when a value uses a variable without a value (not understood).
    fn holds(&self, ctx: &PolicyContext) -> Option<bool> {
        let actual = self.key.value(ctx);
        let mut values = Vec::with_capacity(self.values.len());
        for v in &self.values {
            values.push(v.resolve(ctx)?);
        }
        if self.op == Op::Null {
            let expect_absent = values.iter().map(|v| literal(v).to_ascii_lowercase()).collect::<Vec<_>>();
            return Some(expect_absent.iter().any(|v| match v.as_str() {
                "true" => actual.is_none(),
                "false" => actual.is_some(),
                _ => false,
            }));
        }
        let Some(actual) = actual else {
            return Some(self.if_exists || self.negated);
        };
        let text: Vec<char> = actual.chars().collect();
        let any = values.iter().any(|v| match self.op {
            Op::StringEquals { ignore_case: false } => literal(v) == actual,
            Op::StringEquals { ignore_case: true } => literal(v).to_lowercase() == actual.to_lowercase(),
            Op::StringLike => glob(v, &text),
            Op::Bool => literal(v).eq_ignore_ascii_case(actual),
            Op::Null => unreachable!(),
        });
        Some(any != self.negated)
    }
}

/// A resolved pattern without wildcards, as text.
fn literal(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(c) => *c,
            Piece::AnyChar => '?',
            Piece::AnySeq => '*',
            Piece::Var(_) => unreachable!("resolved"),
        })
        .collect()
}

/// Condition values may be strings, booleans or numbers.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn retain_publish_is_its_own_action() {
        let ctx = PolicyContext { client_id: "c", thing_name: None, certificate_id: None };
        let doc = |action: &str| {
            PolicyDocument::parse(&format!(
                r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"{action}","Resource":"*"}}}}"#
            ))
            .unwrap()
        };
        let publish = doc("iot:Publish");
        assert!(is_allowed([&publish], IotAction::Publish, "topic/a", &ctx));
        assert!(!is_allowed([&publish], IotAction::RetainPublish, "topic/a", &ctx));
        for action in ["iot:RetainPublish", "iot:*", "iot:retainpublish"] {
            assert!(is_allowed([&doc(action)], IotAction::RetainPublish, "topic/a", &ctx), "{action}");
        }
    }

    use super::*;

    /// The policy of the AWS IoT Jobs tutorial ("Prepare the Raspberry Pi to
    /// run jobs"), thing name `thingname`.
    const TUTORIAL: &str = r#"{
      "Version": "2012-10-17",
      "Statement": [
        {
          "Effect": "Allow",
          "Action": "iot:Connect",
          "Resource": "arn:aws:iot:us-west-2:123456789012:client/test-*"
        },
        {
          "Effect": "Allow",
          "Action": "iot:Publish",
          "Resource": [
            "arn:aws:iot:us-west-2:123456789012:topic/test/dc/pubtopic",
            "arn:aws:iot:us-west-2:123456789012:topic/$aws/events/job/*",
            "arn:aws:iot:us-west-2:123456789012:topic/$aws/events/jobExecution/*",
            "arn:aws:iot:us-west-2:123456789012:topic/$aws/things/thingname/jobs/*"
          ]
        },
        {
          "Effect": "Allow",
          "Action": "iot:Subscribe",
          "Resource": [
            "arn:aws:iot:us-west-2:123456789012:topicfilter/test/dc/subtopic",
            "arn:aws:iot:us-west-2:123456789012:topicfilter/$aws/events/jobExecution/*",
            "arn:aws:iot:us-west-2:123456789012:topicfilter/$aws/things/thingname/jobs/*"
          ]
        },
        {
          "Effect": "Allow",
          "Action": "iot:Receive",
          "Resource": [
            "arn:aws:iot:us-west-2:123456789012:topic/test/dc/subtopic",
            "arn:aws:iot:us-west-2:123456789012:topic/$aws/things/thingname/jobs/*"
          ]
        }
      ]
    }"#;

    const CTX: PolicyContext<'static> =
        PolicyContext { client_id: "test-1", thing_name: Some("thingname"), certificate_id: None };

    const NO_THING: PolicyContext<'static> =
        PolicyContext { client_id: "test-1", thing_name: None, certificate_id: None };

    use IotAction::*;

    fn doc(json: &str) -> PolicyDocument {
        PolicyDocument::parse(json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// A one-statement policy.
    fn stmt(effect: &str, action: &str, resource: &str) -> PolicyDocument {
        doc(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}}}"#
        ))
    }

    fn allowed(p: &PolicyDocument, action: IotAction, resource: &str, ctx: &PolicyContext) -> bool {
        is_allowed([p], action, resource, ctx)
    }

    fn err(json: &str) -> PolicyError {
        PolicyDocument::parse(json).expect_err(json)
    }

    #[test]
    fn tutorial_policy() {
        let p = doc(TUTORIAL);
        let ok = |a, r| allowed(&p, a, r, &CTX);

        assert!(ok(Connect, "client/test-1"));
        assert!(ok(Connect, "client/test-"));
        assert!(!ok(Connect, "client/prod-1"));
        assert!(!ok(Connect, "client/xtest-1"));

        assert!(ok(Publish, "topic/$aws/things/thingname/jobs/get"));
        assert!(ok(Publish, "topic/$aws/things/thingname/jobs/start-next"));
        // `*` spans `/`.
        assert!(ok(Publish, "topic/$aws/things/thingname/jobs/job-1/update"));
        assert!(ok(Publish, "topic/$aws/things/thingname/jobs/$next/get"));
        assert!(ok(Publish, "topic/test/dc/pubtopic"));
        assert!(!ok(Publish, "topic/test/dc/pubtopic/more"));
        assert!(!ok(Publish, "topic/$aws/things/otherthing/jobs/get"));
        assert!(!ok(Publish, "topic/$aws/things/thingname/shadow/get"));
        // Wrong resource type for the action.
        assert!(!ok(Publish, "topicfilter/$aws/things/thingname/jobs/get"));

        assert!(ok(Subscribe, "topicfilter/$aws/things/thingname/jobs/#"));
        assert!(ok(Subscribe, "topicfilter/$aws/things/thingname/jobs/+/get/accepted"));
        assert!(ok(Subscribe, "topicfilter/$aws/things/thingname/jobs/notify-next"));
        assert!(ok(Subscribe, "topicfilter/$aws/events/jobExecution/job-1/succeeded"));
        assert!(!ok(Subscribe, "topicfilter/$aws/events/job/job-1/completed"));
        // `+` in the requested filter is a literal, not a thing name match.
        assert!(!ok(Subscribe, "topicfilter/$aws/things/+/jobs/get"));
        assert!(!ok(Subscribe, "topicfilter/$aws/things/#"));
        assert!(!ok(Subscribe, "topic/$aws/things/thingname/jobs/get"));

        assert!(ok(Receive, "topic/$aws/things/thingname/jobs/get/accepted"));
        assert!(ok(Receive, "topic/test/dc/subtopic"));
        assert!(!ok(Receive, "topic/test/dc/pubtopic"));
        assert!(!ok(Receive, "topic/$aws/events/job/job-1/completed"));
    }

    #[test]
    fn mqtt_wildcards_in_patterns_are_literal() {
        let p = stmt("Allow", "iot:Subscribe", "arn:aws:iot:r:1:topicfilter/a/+/c");
        assert!(allowed(&p, Subscribe, "topicfilter/a/+/c", &CTX));
        assert!(!allowed(&p, Subscribe, "topicfilter/a/b/c", &CTX));
        let p = stmt("Allow", "iot:Subscribe", "arn:aws:iot:r:1:topicfilter/a/#");
        assert!(allowed(&p, Subscribe, "topicfilter/a/#", &CTX));
        assert!(!allowed(&p, Subscribe, "topicfilter/a/b", &CTX));
        assert!(!allowed(&p, Subscribe, "topicfilter/a/b/#", &CTX));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        let p = stmt("Allow", "iot:Connect", "arn:aws:iot:r:1:client/dev-??");
        assert!(allowed(&p, Connect, "client/dev-01", &CTX));
        assert!(allowed(&p, Connect, "client/dev-é1", &CTX)); // one char, two bytes
        assert!(!allowed(&p, Connect, "client/dev-1", &CTX));
        assert!(!allowed(&p, Connect, "client/dev-001", &CTX));
        let p = stmt("Allow", "iot:Publish", "arn:aws:iot:r:1:topic/a?c");
        assert!(allowed(&p, Publish, "topic/a/c", &CTX)); // `?` may match `/`
    }

    #[test]
    fn resources_are_case_sensitive_and_exact() {
        let p = stmt("Allow", "iot:Publish", "arn:aws:iot:r:1:topic/Foo");
        assert!(allowed(&p, Publish, "topic/Foo", &CTX));
        assert!(!allowed(&p, Publish, "topic/foo", &CTX));
        assert!(!allowed(&p, Publish, "topic/Foo/", &CTX));
        assert!(!allowed(&p, Publish, "topic/Fo", &CTX));
        assert!(!allowed(&p, Publish, "", &CTX));
    }

    #[test]
    fn region_account_and_partition_are_ignored_service_is_not() {
        for arn in [
            "arn:aws:iot:us-east-1:123456789012:topic/x",
            "arn:aws:iot:eu-west-1:999999999999:topic/x",
            "arn:aws:iot:::topic/x",
            "arn:aws:iot:*:*:topic/x",
            "arn:aws-cn:iot:cn-north-1:1:topic/x",
            "arn:aws:io?:us-east-1:1:topic/x",
        ] {
            let p = stmt("Allow", "iot:Publish", arn);
            assert!(allowed(&p, Publish, "topic/x", &CTX), "{arn}");
            assert!(!allowed(&p, Publish, "topic/y", &CTX), "{arn}");
        }
        let p = stmt("Allow", "iot:Publish", "arn:aws:s3:::topic/x");
        assert!(!allowed(&p, Publish, "topic/x", &CTX));
        // Everything after the fifth colon is the resource, colons included.
        let p = stmt("Allow", "iot:Publish", "arn:aws:iot:r:1:topic/a:b:*");
        assert!(allowed(&p, Publish, "topic/a:b:c", &CTX));
        // Wildcards everywhere.
        let p = stmt("Allow", "iot:*", "arn:aws:iot:*:*:*");
        assert!(allowed(&p, Connect, "client/anything", &CTX));
        let p = stmt("Allow", "*", "*");
        assert!(allowed(&p, Receive, "topic/anything", &CTX));
    }

    #[test]
    fn action_names_are_case_insensitive_globs() {
        for action in
            ["iot:Publish", "iot:publish", "IOT:PUBLISH", "iot:*", "*", "iot:Pub*", "iot:?ublish", "IoT:*lish"]
        {
            let p = stmt("Allow", action, "*");
            assert!(allowed(&p, Publish, "topic/t", &CTX), "{action}");
        }
        for action in
            ["iot:Connect", "iot:Publish2", "iot:Pub", "iot:Subscribe", "s3:*", "iot:RetainPublish", "iot:Publis?x"]
        {
            let p = stmt("Allow", action, "*");
            assert!(!allowed(&p, Publish, "topic/t", &CTX), "{action}");
        }
        assert_eq!(Connect.as_str(), "iot:Connect");
        assert_eq!(Publish.to_string(), "iot:Publish");
        assert_eq!(Subscribe.as_str(), "iot:Subscribe");
        assert_eq!(Receive.as_str(), "iot:Receive");
    }

    #[test]
    fn deny_overrides_allow_within_and_across_policies() {
        let both = doc(r#"{"Statement":[
                {"Effect":"Allow","Action":"iot:*","Resource":"*"},
                {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:r:1:topic/secret/*"}
            ]}"#);
        assert!(allowed(&both, Publish, "topic/public", &CTX));
        assert!(!allowed(&both, Publish, "topic/secret/x", &CTX));
        assert_eq!(decide([&both], Publish, "topic/secret/x", &CTX), Decision::ExplicitDeny);
        assert!(allowed(&both, Receive, "topic/secret/x", &CTX));

        let allow = stmt("Allow", "iot:*", "*");
        let deny = stmt("Deny", "iot:Connect", "arn:aws:iot:r:1:client/bad-*");
        for policies in [[&allow, &deny], [&deny, &allow]] {
            assert!(!is_allowed(policies, Connect, "client/bad-1", &CTX));
            assert!(is_allowed(policies, Connect, "client/good-1", &CTX));
        }
        // A lone deny never allows.
        assert_eq!(decide([&deny], Connect, "client/good-1", &CTX), Decision::ImplicitDeny);
        assert_eq!(decide([&allow], Connect, "client/good-1", &CTX), Decision::Allow);
    }

    #[test]
    fn no_policy_means_no_access() {
        assert!(!is_allowed(std::iter::empty::<&PolicyDocument>(), Connect, "client/test-1", &CTX));
        assert_eq!(decide(std::iter::empty::<&PolicyDocument>(), Publish, "topic/x", &CTX), Decision::ImplicitDeny);
        let unrelated = stmt("Allow", "iot:Publish", "arn:aws:iot:r:1:topic/other");
        assert!(!allowed(&unrelated, Publish, "topic/x", &CTX));
    }

    const THING_POLICY: &str = r#"{
      "Version": "2012-10-17",
      "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"},
        {"Effect": "Allow", "Action": "iot:Publish",
         "Resource": "arn:aws:iot:us-east-1:123456789012:topic/clients/${iot:ClientId}"},
        {"Effect": "Allow", "Action": "iot:Publish",
         "Resource": "arn:aws:iot:us-east-1:123456789012:topic/attached/${iot:Connection.Thing.IsAttached}"}
      ]
    }"#;

    #[test]
    fn policy_variables_with_a_thing() {
        let p = doc(THING_POLICY);
        let ctx = PolicyContext { client_id: "thingname", thing_name: Some("thingname"), certificate_id: Some("abc") };
        assert!(allowed(&p, Connect, "client/thingname", &ctx));
        assert!(!allowed(&p, Connect, "client/other", &ctx));
        assert!(allowed(&p, Publish, "topic/$aws/things/thingname/jobs/start-next", &ctx));
        assert!(allowed(&p, Receive, "topic/$aws/things/thingname/jobs/notify", &ctx));
        assert!(!allowed(&p, Publish, "topic/$aws/things/other/jobs/start-next", &ctx));
        assert!(allowed(&p, Subscribe, "topicfilter/$aws/things/thingname/jobs/#", &ctx));
        assert!(!allowed(&p, Subscribe, "topicfilter/$aws/things/+/jobs/#", &ctx));
        assert!(allowed(&p, Publish, "topic/clients/thingname", &ctx));
        assert!(allowed(&p, Publish, "topic/attached/true", &ctx));
        assert!(!allowed(&p, Publish, "topic/attached/false", &ctx));
    }

    #[test]
    fn policy_variables_without_a_thing_match_nothing() {
        let p = doc(THING_POLICY);
        let ctx = PolicyContext { client_id: "thingname", thing_name: None, certificate_id: None };
        assert!(!allowed(&p, Connect, "client/thingname", &ctx));
        // Not even the empty substitution.
        assert!(!allowed(&p, Connect, "client/", &ctx));
        assert!(!allowed(&p, Publish, "topic/$aws/things/thingname/jobs/get", &ctx));
        assert!(!allowed(&p, Publish, "topic/$aws/things//jobs/get", &ctx));
        assert!(!allowed(&p, Subscribe, "topicfilter/$aws/things/thingname/jobs/#", &ctx));
        // Variables that do have a value still work.
        assert!(allowed(&p, Publish, "topic/clients/thingname", &ctx));
        assert!(allowed(&p, Publish, "topic/attached/false", &ctx));
        assert!(!allowed(&p, Publish, "topic/attached/true", &ctx));

        // A deny whose variable has no value does not apply either (AWS behaviour).
        let allow = stmt("Allow", "iot:*", "*");
        let deny = stmt("Deny", "iot:Publish", "arn:aws:iot:r:1:topic/${iot:Connection.Thing.ThingName}/*");
        assert!(is_allowed([&allow, &deny], Publish, "topic/x/y", &NO_THING));
        assert!(!is_allowed([&allow, &deny], Publish, "topic/thingname/y", &CTX));
    }

    #[test]
    fn substituted_values_match_literally() {
        let p = stmt("Allow", "iot:Connect", "arn:aws:iot:r:1:client/${iot:ClientId}");
        let star = PolicyContext { client_id: "*", ..CTX };
        assert!(allowed(&p, Connect, "client/*", &star));
        assert!(!allowed(&p, Connect, "client/anyone", &star));
        let q = PolicyContext { client_id: "a?", ..CTX };
        assert!(allowed(&p, Connect, "client/a?", &q));
        assert!(!allowed(&p, Connect, "client/ab", &q));
        // Variable names are case-insensitive; unknown variables have no value.
        let p = stmt("Allow", "iot:Connect", "arn:aws:iot:r:1:client/${IOT:clientid}");
        assert!(allowed(&p, Connect, "client/test-1", &CTX));
        let p = stmt("Allow", "iot:Connect", "arn:aws:iot:r:1:client/${iot:Certificate.Id}");
        assert!(!allowed(&p, Connect, "client/", &PolicyContext { certificate_id: Some("x"), ..CTX }));
        assert!(!allowed(&p, Connect, "client/x", &PolicyContext { certificate_id: Some("x"), ..CTX }));
    }

    proptest::proptest! {
        /// Matching variables in place decides as substituting them first and matching the
        /// characters does, over patterns and texts from a small alphabet (so that they meet).
        #[test]
        fn variables_in_place_match_as_substituted(
            pattern in "[ab*?/]{0,6}(\\$\\{iot:ClientId\\})?[ab*?/]{0,6}(\\$\\{iot:ClientId\\})?[ab*?]{0,3}",
            text in "[ab/é*?]{0,14}",
            client_id in "[ab*?é]{0,3}",
        ) {
            let pattern = Pattern::parse(&pattern, true);
            let ctx = PolicyContext { client_id: &client_id, ..CTX };
            let chars: Vec<char> = text.chars().collect();
            let substituted = pattern.resolve(&ctx).map(|pieces| glob(&pieces, &chars));
            proptest::prop_assert_eq!(pattern.try_match(&text, &ctx), substituted);
        }
    }

    #[test]
    fn special_character_escapes() {
        let p = stmt("Allow", "iot:Publish", "arn:aws:iot:r:1:topic/a${*}b${?}c${$}d");
        assert!(allowed(&p, Publish, "topic/a*b?c$d", &CTX));
        assert!(!allowed(&p, Publish, "topic/axxb?c$d", &CTX));
        assert!(!allowed(&p, Publish, "topic/a*bxc$d", &CTX));
        // An unterminated `${` is plain text.
        let p = stmt("Allow", "iot:Publish", "arn:aws:iot:r:1:topic/${oops");
        assert!(allowed(&p, Publish, "topic/${oops", &CTX));
    }

    #[test]
    fn string_and_array_forms() {
        let as_strings = doc(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:1:topic/a"}}"#,
        );
        let as_arrays = doc(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:r:1:topic/a"]}]}"#,
        );
        for p in [&as_strings, &as_arrays] {
            assert!(allowed(p, Publish, "topic/a", &CTX));
            assert!(!allowed(p, Publish, "topic/b", &CTX));
            assert!(!allowed(p, Receive, "topic/a", &CTX));
        }
        let multi = doc(r#"{"Statement":[{"Sid":"s1","Effect":"Allow","Action":["iot:Publish","iot:Receive"],
                "Resource":["arn:aws:iot:r:1:topic/a","arn:aws:iot:r:1:topic/b"]}]}"#);
        for action in [Publish, Receive] {
            for topic in ["topic/a", "topic/b"] {
                assert!(allowed(&multi, action, topic, &CTX));
            }
        }
        assert!(!allowed(&multi, Subscribe, "topic/a", &CTX));
    }

    #[test]
    fn versions() {
        for v in [r#""Version":"2012-10-17","#, r#""Version":"2008-10-17","#, ""] {
            let p = doc(&format!(r#"{{{v}"Statement":{{"Effect":"Allow","Action":"*","Resource":"*"}}}}"#));
            assert!(allowed(&p, Connect, "client/x", &CTX));
        }
        assert_eq!(
            err(r#"{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#),
            PolicyError::InvalidVersion("2020-01-01".into())
        );
        assert_eq!(
            err(r#"{"Version":2012,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#),
            PolicyError::InvalidVersion("2012".into())
        );
    }

    #[test]
    fn not_action_and_not_resource() {
        let p = doc(r#"{"Statement":{"Effect":"Allow","NotAction":"iot:Connect","Resource":"*"}}"#);
        assert!(!allowed(&p, Connect, "client/x", &CTX));
        assert!(allowed(&p, Publish, "topic/x", &CTX));
        let p = doc(r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"},
                {"Effect":"Deny","Action":"iot:Publish","NotResource":"arn:aws:iot:r:1:topic/ok/*"}]}"#);
        assert!(allowed(&p, Publish, "topic/ok/1", &CTX));
        assert!(!allowed(&p, Publish, "topic/other", &CTX));
        // NotResource with a variable that has no value: the statement does not apply.
        let p = doc(r#"{"Statement":{"Effect":"Allow","Action":"iot:*",
                "NotResource":"arn:aws:iot:r:1:topic/${iot:Connection.Thing.ThingName}"}}"#);
        assert!(!allowed(&p, Publish, "topic/x", &NO_THING));
        assert!(allowed(&p, Publish, "topic/x", &CTX));
        assert!(!allowed(&p, Publish, "topic/thingname", &CTX));
    }

    #[test]
    fn aws_is_attached_condition() {
        // The connect policy from the AWS IoT docs.
        let p = doc(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect"],
                "Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"],
                "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]}"#);
        assert!(allowed(&p, Connect, "client/thingname", &CTX));
        assert!(!allowed(&p, Connect, "client/thingname", &NO_THING));
        let p = doc(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
                "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":[false]}}}}"#);
        assert!(!allowed(&p, Connect, "client/x", &CTX));
        assert!(allowed(&p, Connect, "client/x", &NO_THING));
    }

    #[test]
    fn string_conditions() {
        let cond = |c: &str| {
            doc(&format!(r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{c}}}}}"#))
        };
        let ok = |p: &PolicyDocument, ctx: &PolicyContext| allowed(p, Connect, "client/x", ctx);

        let p = cond(r#"{"StringLike":{"iot:ClientId":["test-*","dev-?"]}}"#);
        assert!(ok(&p, &CTX));
        assert!(ok(&p, &PolicyContext { client_id: "dev-1", ..CTX }));
        assert!(!ok(&p, &PolicyContext { client_id: "prod", ..CTX }));

        let p = cond(r#"{"StringEquals":{"iot:ClientId":"test-*"}}"#);
        assert!(!ok(&p, &CTX)); // no wildcards in StringEquals
        assert!(ok(&p, &PolicyContext { client_id: "test-*", ..CTX }));

        let p = cond(r#"{"StringEqualsIgnoreCase":{"iot:ClientId":"TEST-1"}}"#);
        assert!(ok(&p, &CTX));

        let p = cond(r#"{"StringEquals":{"iot:ClientId":"${iot:Connection.Thing.ThingName}"}}"#);
        assert!(ok(&p, &PolicyContext { client_id: "thingname", ..CTX }));
        assert!(!ok(&p, &CTX));
        assert!(!ok(&p, &PolicyContext { client_id: "thingname", thing_name: None, ..CTX }));

        // Negated operators hold when the key is absent.
        let p = cond(r#"{"StringNotEquals":{"iot:Connection.Thing.ThingName":"blocked"}}"#);
        assert!(ok(&p, &CTX));
        assert!(ok(&p, &NO_THING));
        assert!(!ok(&p, &PolicyContext { thing_name: Some("blocked"), ..CTX }));

        let p = cond(r#"{"StringEquals":{"iot:Connection.Thing.ThingName":"thingname"}}"#);
        assert!(ok(&p, &CTX));
        assert!(!ok(&p, &NO_THING));
        let p = cond(r#"{"StringEqualsIfExists":{"iot:Connection.Thing.ThingName":"thingname"}}"#);
        assert!(ok(&p, &CTX));
        assert!(ok(&p, &NO_THING));
        assert!(!ok(&p, &PolicyContext { thing_name: Some("other"), ..CTX }));

        let p = cond(r#"{"Null":{"iot:Connection.Thing.ThingName":"true"}}"#);
        assert!(!ok(&p, &CTX));
        assert!(ok(&p, &NO_THING));

        // Operators and keys are AND-ed.
        let p = cond(r#"{"StringLike":{"iot:ClientId":"test-*"},"Bool":{"iot:Connection.Thing.IsAttached":"true"}}"#);
        assert!(ok(&p, &CTX));
        assert!(!ok(&p, &NO_THING));

        // An empty condition is no condition.
        assert!(ok(&cond("{}"), &NO_THING));
    }

    #[test]
    fn conditions_not_understood_never_match() {
        for c in [
            r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
            r#"{"StringEquals":{"iot:Certificate.Subject.CommonName":"x"}}"#,
            r#"{"ForAnyValue:StringLike":{"iot:ClientId":"*"}}"#,
            r#"{"StringLike":{"iot:ClientId":{"nested":1}}}"#,
            r#"{"StringLike":"iot:ClientId"}"#,
            r#"{"StringLike":{"iot:ClientId":"*"},"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}"#,
        ] {
            let allow =
                doc(&format!(r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{c}}}}}"#));
            assert!(!allowed(&allow, Connect, "client/x", &CTX), "{c}");
            // Documented: a deny with a condition we do not understand does not apply.
            let deny = doc(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}},
                    {{"Effect":"Deny","Action":"*","Resource":"*","Condition":{c}}}]}}"#
            ));
            assert!(allowed(&deny, Connect, "client/x", &CTX), "{c}");
        }
    }

    #[test]
    fn malformed_documents() {
        use PolicyError as E;
        let s = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":{body}}}"#);

        assert_eq!(err(""), E::InvalidJson);
        assert_eq!(err("{"), E::InvalidJson);
        assert_eq!(err("not json"), E::InvalidJson);
        assert_eq!(err("[]"), E::NotAnObject);
        assert_eq!(err(r#""x""#), E::NotAnObject);
        assert_eq!(err(r#"{"Version":"2012-10-17"}"#), E::MissingStatement);
        assert_eq!(err(r#"{"Statement":null}"#), E::MissingStatement);
        assert_eq!(err(&s("[]")), E::InvalidStatement);
        assert_eq!(err(&s(r#""Allow""#)), E::InvalidStatement);
        assert_eq!(err(&s(r#"[{"Effect":"Allow","Action":"*","Resource":"*"}, 1]"#)), E::InvalidStatement);
        assert_eq!(
            err(r#"{"Statment":[],"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#),
            E::UnsupportedElement("Statment".into())
        );
        assert_eq!(
            err(&s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}"#)),
            E::UnsupportedElement("Principal".into())
        );

        assert_eq!(err(&s(r#"{"Action":"*","Resource":"*"}"#)), E::InvalidEffect);
        assert_eq!(err(&s(r#"{"Effect":"allow","Action":"*","Resource":"*"}"#)), E::InvalidEffect);
        assert_eq!(err(&s(r#"{"Effect":"Permit","Action":"*","Resource":"*"}"#)), E::InvalidEffect);
        assert_eq!(err(&s(r#"{"Effect":true,"Action":"*","Resource":"*"}"#)), E::InvalidEffect);

        assert_eq!(err(&s(r#"{"Effect":"Allow","Resource":"*"}"#)), E::MissingAction);
        assert_eq!(
            err(&s(r#"{"Effect":"Allow","Action":"*","NotAction":"iot:Connect","Resource":"*"}"#)),
            E::MissingAction
        );
        assert_eq!(
            err(&s(r#"{"Effect":"Allow","Action":"publish","Resource":"*"}"#)),
            E::InvalidAction("publish".into())
        );
        assert_eq!(err(&s(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#)), E::InvalidAction("[]".into()));
        assert_eq!(err(&s(r#"{"Effect":"Allow","Action":7,"Resource":"*"}"#)), E::InvalidAction("7".into()));
        assert!(matches!(
            err(&s(r#"{"Effect":"Allow","Action":["iot:Connect",1],"Resource":"*"}"#)),
            E::InvalidAction(_)
        ));

        assert_eq!(err(&s(r#"{"Effect":"Allow","Action":"*"}"#)), E::MissingResource);
        assert_eq!(err(&s(r#"{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}"#)), E::MissingResource);
        for bad in
            ["topic/foo", "arn:aws:iot:us-east-1:topic/foo", "arn:aws:iot:*", "**", "ARN:aws:iot:r:1:topic/x", ""]
        {
            assert_eq!(
                err(&s(&format!(r#"{{"Effect":"Allow","Action":"*","Resource":"{bad}"}}"#))),
                E::InvalidResource(bad.into()),
                "{bad}"
            );
        }
        assert_eq!(err(&s(r#"{"Effect":"Allow","Action":"*","Resource":[]}"#)), E::InvalidResource("[]".into()));
        assert_eq!(err(&s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":"x"}"#)), E::InvalidCondition);
    }

    #[test]
    fn error_messages() {
        assert_eq!(PolicyError::InvalidJson.to_string(), "Policy document is not valid JSON");
        assert_eq!(PolicyError::MissingStatement.to_string(), "Policy document must contain Statement");
        assert_eq!(PolicyError::InvalidEffect.to_string(), "Invalid Effect");
    }

    #[test]
    fn lowercase_action_names_are_the_names_lowercased() {
        use IotAction::*;
        for action in [
            Connect,
            Publish,
            Subscribe,
            Receive,
            RetainPublish,
            GetPendingJobExecutions,
            StartNextPendingJobExecution,
            DescribeJobExecution,
            UpdateJobExecution,
        ] {
            assert_eq!(action.lowercase(), action.as_str().to_ascii_lowercase());
        }
    }

    #[test]
    fn patterns_read_variables_in_place() {
        let ctx = PolicyContext { client_id: "dév-1", thing_name: Some("t"), certificate_id: None };
        let g = |p: &str, t: &str| Pattern::parse(p, true).try_match(t, &ctx);
        assert_eq!(g("topic/${iot:ClientId}/*", "topic/dév-1/x"), Some(true));
        assert_eq!(g("topic/${iot:ClientId}", "topic/dév-12"), Some(false));
        assert_eq!(g("*${iot:Connection.Thing.ThingName}", "abct"), Some(true));
        assert_eq!(g("${iot:ClientId}?${iot:Connection.Thing.ThingName}", "dév-1ét"), Some(true));
        assert_eq!(g("${iot:Unknown}*", "x"), None);
        assert_eq!(g("é?*", "éé"), Some(true));
        assert_eq!(g("*é", "aéb"), Some(false));
    }

    #[test]
    fn every_action_has_its_own_bit() {
        // The match has no wildcard arm: a new action does not compile here until it is given
        // a place, and the assertions then fail until `IotAction::ALL` lists it.
        let place = |a: IotAction| match a {
            Connect => 0,
            Publish => 1,
            Subscribe => 2,
            Receive => 3,
            RetainPublish => 4,
            GetPendingJobExecutions => 5,
            StartNextPendingJobExecution => 6,
            DescribeJobExecution => 7,
            UpdateJobExecution => 8,
        };
        let mut listed: Vec<usize> = IotAction::ALL.iter().map(|a| place(*a)).collect();
        listed.sort_unstable();
        assert_eq!(listed, (0..=8).collect::<Vec<_>>());
        let all = doc(r#"{"Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}}"#);
        for a in IotAction::ALL {
            assert!(is_allowed([&all], a, "thing/x", &CTX), "{a}");
            let bits: Vec<bool> = IotAction::ALL.iter().map(|b| Actions(Actions::bit(a)).contains(*b)).collect();
            assert_eq!(bits.iter().filter(|b| **b).count(), 1, "{a}");
        }
    }

    #[test]
    fn glob_edge_cases() {
        let g = |p: &str, t: &str| glob(&Pattern::parse(p, false).pieces, &t.chars().collect::<Vec<_>>());
        assert!(g("", ""));
        assert!(!g("", "a"));
        assert!(g("*", ""));
        assert!(g("**", "abc"));
        assert!(g("a*", "a"));
        assert!(g("*a", "bba"));
        assert!(!g("*a", "bab"));
        assert!(g("a*b*c", "axxbyyc"));
        assert!(g("a*b*c", "abcbc"));
        assert!(!g("a*b*c", "acb"));
        assert!(g("*?", "x"));
        assert!(!g("?*?", "x"));
        // Pathological patterns stay fast.
        let text = "a".repeat(5000);
        assert!(!g("*a*a*a*a*a*a*a*a*b", &text));
        assert!(g("*a*a*a*a*a*a*a*a*", &text));
    }
}
