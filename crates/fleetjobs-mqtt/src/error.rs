//! Why a connection ends. None of these escape the crate: they end one connection and are logged.

use std::io;

use mqtt_proto::v3::PacketType;

/// Reading or decoding one MQTT control packet failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("packet of {size} bytes exceeds the {max} byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("undecodable packet: {0}")]
    Decode(#[from] mqtt_proto::Error),
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocol(u8),
    #[error("unexpected {0:?} packet from a client")]
    UnexpectedPacket(PacketType),
    #[error("connection closed in the middle of a packet")]
    Truncated,
}

/// A connection ended for a reason other than a clean DISCONNECT or end of stream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("no packet within 1.5 times the keep-alive")]
    KeepAliveExpired,
    #[error("client took no data for 1.5 times the keep-alive")]
    WriteStalled,
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("not authorized to publish to {0:?}")]
    PublishDenied(String),
    #[error("session taken over by another connection")]
    Superseded,
}

/// The session is no longer attached to this connection (taken over, discarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session detached from this connection")]
pub(crate) struct Superseded;

impl From<Superseded> for ConnectionError {
    fn from(_: Superseded) -> Self {
        ConnectionError::Superseded
    }
}
