//! AWS-shaped errors. One enum of exception names; each knows its HTTP status.

use std::fmt;

/// The AWS exception names Fleetjobs answers with (control plane `iot` and data plane
/// `iot-jobs-data`), plus the authentication failures of the API gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    ResourceNotFound,
    ResourceAlreadyExists,
    Conflict,
    InvalidStateTransition,
    VersionConflict,
    LimitExceeded,
    Throttling,
    TerminalState,
    Unauthorized,
    ServiceUnavailable,
    InternalFailure,
    MalformedPolicy,
    DeleteConflict,
    CertificateState,
    VersionsLimitExceeded,
    InvalidQuery,
    /// `iot-jobs-data` over mutual TLS: no usable client certificate; a certificate offered
    /// for registration that is malformed, expired, or not signed by its CA.
    CertificateValidation,
    /// RegisterCACertificate: the verification certificate does not carry the registration code.
    RegistrationCodeValidation,
    /// `iot-jobs-data` over mutual TLS: the certificate's policies deny the action.
    AccessDenied,
    // Authentication (API gateway), all 403.
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidSignature,
    UnrecognizedClient,
    UnknownOperation,
}

impl ErrorCode {
    /// The exception name, as sent in `x-amzn-ErrorType` and `__type`.
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "InvalidRequestException",
            ResourceNotFound => "ResourceNotFoundException",
            ResourceAlreadyExists => "ResourceAlreadyExistsException",
            Conflict => "ConflictException",
            InvalidStateTransition => "InvalidStateTransitionException",
            VersionConflict => "VersionConflictException",
            LimitExceeded => "LimitExceededException",
            Throttling => "ThrottlingException",
            TerminalState => "TerminalStateException",
            Unauthorized => "UnauthorizedException",
            ServiceUnavailable => "ServiceUnavailableException",
            InternalFailure => "InternalFailureException",
            MalformedPolicy => "MalformedPolicyException",
            DeleteConflict => "DeleteConflictException",
            CertificateState => "CertificateStateException",
            VersionsLimitExceeded => "VersionsLimitExceededException",
            InvalidQuery => "InvalidQueryException",
            CertificateValidation => "CertificateValidationException",
            RegistrationCodeValidation => "RegistrationCodeValidationException",
            AccessDenied => "AccessDeniedException",
            MissingAuthenticationToken => "MissingAuthenticationTokenException",
            IncompleteSignature => "IncompleteSignatureException",
            InvalidSignature => "InvalidSignatureException",
            UnrecognizedClient => "UnrecognizedClientException",
            UnknownOperation => "UnknownOperationException",
        }
    }

    /// The modeled HTTP status of the `iot` service (botocore `iot/2015-05-28`).
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidRequest
            | Throttling
            | MalformedPolicy
            | InvalidQuery
            | CertificateValidation
            | RegistrationCodeValidation => 400,
            CertificateState => 406,
            Unauthorized => 401,
            ResourceNotFound | UnknownOperation => 404,
            ResourceAlreadyExists
            | Conflict
            | InvalidStateTransition
            | VersionConflict
            | DeleteConflict
            | VersionsLimitExceeded => 409,
            LimitExceeded | TerminalState => 410,
            InternalFailure => 500,
            ServiceUnavailable => 503,
            MissingAuthenticationToken | IncompleteSignature | InvalidSignature | UnrecognizedClient | AccessDenied => {
                403
            }
        }
    }
}

/// An error answered to a caller: an exception name, a message, and the extra members some
/// exceptions carry (`resourceId`, `resourceArn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub resource_id: Option<String>,
    pub resource_arn: Option<String>,
    /// The request's top-level member at fault (`"abortConfig"`, `"targets"`), where the
    /// check knows it. Never on the wire (AWS's errors carry no such member); a form shows the
    /// error beside that member's field.
    pub member: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), resource_id: None, resource_arn: None, member: None }
    }
    /// The same error, blamed on the request member `member` unless a deeper check already
    /// named one.
    pub fn at(self, member: &'static str) -> Self {
        ApiError { member: self.member.or(Some(member)), ..self }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }
    pub fn already_exists(message: impl Into<String>, id: &str, arn: &str) -> Self {
        ApiError {
            resource_id: Some(id.to_string()),
            resource_arn: Some(arn.to_string()),
            ..Self::new(ErrorCode::ResourceAlreadyExists, message)
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// Blames a failed check on a request member: `check().at("abortConfig")?`.
pub trait AtMember<T> {
    fn at(self, member: &'static str) -> ApiResult<T>;
}

impl<T> AtMember<T> for ApiResult<T> {
    fn at(self, member: &'static str) -> ApiResult<T> {
        self.map_err(|e| e.at(member))
    }
}
