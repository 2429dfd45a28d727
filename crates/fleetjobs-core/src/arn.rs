//! ARNs. Fleetjobs is single-tenant: it has one region and one account id, and accepts ARNs
//! whose region and account are empty (`arn:aws:iot:::thing/MyRaspberryPi`, as in the AWS
//! tutorial) or equal to its own.

/// The partition/region/account triple every ARN this server mints carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account_id: String,
}

/// The resource kinds of IoT ARNs (`thing/`, `thinggroup/`, `cert/`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Thing,
    ThingGroup,
    ThingType,
    Job,
    Cert,
    CaCert,
    Policy,
    JobTemplate,
}

impl ResourceKind {
    fn prefix(self) -> &'static str {
        match self {
            ResourceKind::Thing => "thing",
            ResourceKind::ThingGroup => "thinggroup",
            ResourceKind::ThingType => "thingtype",
            ResourceKind::Job => "job",
            ResourceKind::Cert => "cert",
            ResourceKind::CaCert => "cacert",
            ResourceKind::Policy => "policy",
            ResourceKind::JobTemplate => "jobtemplate",
        }
    }
}

impl ArnScope {
    pub fn new(region: impl Into<String>, account_id: impl Into<String>) -> Self {
        ArnScope { region: region.into(), account_id: account_id.into() }
    }

    pub fn arn(&self, kind: ResourceKind, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{}/{}", self.region, self.account_id, kind.prefix(), name)
    }

    /// Parse an IoT ARN of the given kind and return the resource name. Region and account
    /// must be empty or this server's own.
    pub fn parse<'a>(&self, arn: &'a str, kind: ResourceKind) -> Option<&'a str> {
        let (kind_found, name) = self.parse_any(arn)?;
        (kind_found == kind).then_some(name)
    }

    /// Parse any IoT ARN this server could have minted: `(kind, name)`.
    pub fn parse_any<'a>(&self, arn: &'a str) -> Option<(ResourceKind, &'a str)> {
        let mut parts = arn.splitn(6, ':');
        let (arn_, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
        let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
        if arn_ != "arn" || !partition.starts_with("aws") || service != "iot" {
            return None;
        }
        if !(region.is_empty() || region == self.region) || !(account.is_empty() || account == self.account_id) {
            return None;
        }
        let (prefix, name) = resource.split_once('/')?;
        let kind = [
            ResourceKind::Thing,
            ResourceKind::ThingGroup,
            ResourceKind::ThingType,
            ResourceKind::Job,
            ResourceKind::Cert,
            ResourceKind::CaCert,
            ResourceKind::Policy,
            ResourceKind::JobTemplate,
        ]
        .into_iter()
        .find(|k| k.prefix() == prefix)?;
        (!name.is_empty()).then_some((kind, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope::new("us-east-1", "123456789012")
    }

    #[test]
    fn mints_and_parses_round_trip() {
        let arn = scope().arn(ResourceKind::Thing, "MyRaspberryPi");
        assert_eq!(arn, "arn:aws:iot:us-east-1:123456789012:thing/MyRaspberryPi");
        assert_eq!(scope().parse(&arn, ResourceKind::Thing), Some("MyRaspberryPi"));
    }

    #[test]
    fn accepts_empty_region_and_account() {
        assert_eq!(scope().parse("arn:aws:iot:::thing/MyRaspberryPi", ResourceKind::Thing), Some("MyRaspberryPi"));
    }

    #[test]
    fn rejects_foreign_scope_kind_and_garbage() {
        let s = scope();
        assert_eq!(s.parse("arn:aws:iot:eu-west-1:123456789012:thing/a", ResourceKind::Thing), None);
        assert_eq!(s.parse("arn:aws:iot:us-east-1:999999999999:thing/a", ResourceKind::Thing), None);
        assert_eq!(s.parse("arn:aws:iot:::thinggroup/a", ResourceKind::Thing), None);
        assert_eq!(s.parse("arn:aws:s3:::thing/a", ResourceKind::Thing), None);
        assert_eq!(s.parse("thing/a", ResourceKind::Thing), None);
        assert_eq!(s.parse("arn:aws:iot:::thing/", ResourceKind::Thing), None);
        assert_eq!(s.parse_any("arn:aws:iot:::thinggroup/g"), Some((ResourceKind::ThingGroup, "g")));
        assert_eq!(s.parse_any("arn:aws:iot:::thingtype/t"), Some((ResourceKind::ThingType, "t")));
    }
}
