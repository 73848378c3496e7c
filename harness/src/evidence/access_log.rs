//! Envoy access-log lines in Istio's default TEXT format and its JSON encoding.

use serde::Deserialize;

/// The fields of Istio's default access-log format, named as in its JSON encoding
/// (`EnvoyJSONLogFormatIstio`, istio/istio pilot/pkg/model/telemetry_logging.go), in TEXT order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    StartTime,
    Method,
    Path,
    Protocol,
    ResponseCode,
    ResponseFlags,
    ResponseCodeDetails,
    ConnectionTerminationDetails,
    UpstreamTransportFailureReason,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamServiceTime,
    XForwardedFor,
    UserAgent,
    RequestId,
    Authority,
    UpstreamHost,
    UpstreamCluster,
    UpstreamLocalAddress,
    DownstreamLocalAddress,
    DownstreamRemoteAddress,
    RequestedServerName,
    RouteName,
}

impl Field {
    /// All fields in the order the TEXT format prints them.
    pub const ALL: [Field; 24] = [
        Field::StartTime,
        Field::Method,
        Field::Path,
        Field::Protocol,
        Field::ResponseCode,
        Field::ResponseFlags,
        Field::ResponseCodeDetails,
        Field::ConnectionTerminationDetails,
        Field::UpstreamTransportFailureReason,
        Field::BytesReceived,
        Field::BytesSent,
        Field::Duration,
        Field::UpstreamServiceTime,
        Field::XForwardedFor,
        Field::UserAgent,
        Field::RequestId,
        Field::Authority,
        Field::UpstreamHost,
        Field::UpstreamCluster,
        Field::UpstreamLocalAddress,
        Field::DownstreamLocalAddress,
        Field::DownstreamRemoteAddress,
        Field::RequestedServerName,
        Field::RouteName,
    ];

    /// The JSON access-log key.
    pub fn name(self) -> &'static str {
        match self {
            Field::StartTime => "start_time",
            Field::Method => "method",
            Field::Path => "path",
            Field::Protocol => "protocol",
            Field::ResponseCode => "response_code",
            Field::ResponseFlags => "response_flags",
            Field::ResponseCodeDetails => "response_code_details",
            Field::ConnectionTerminationDetails => "connection_termination_details",
            Field::UpstreamTransportFailureReason => "upstream_transport_failure_reason",
            Field::BytesReceived => "bytes_received",
            Field::BytesSent => "bytes_sent",
            Field::Duration => "duration",
            Field::UpstreamServiceTime => "upstream_service_time",
            Field::XForwardedFor => "x_forwarded_for",
            Field::UserAgent => "user_agent",
            Field::RequestId => "request_id",
            Field::Authority => "authority",
            Field::UpstreamHost => "upstream_host",
            Field::UpstreamCluster => "upstream_cluster",
            Field::UpstreamLocalAddress => "upstream_local_address",
            Field::DownstreamLocalAddress => "downstream_local_address",
            Field::DownstreamRemoteAddress => "downstream_remote_address",
            Field::RequestedServerName => "requested_server_name",
            Field::RouteName => "route_name",
        }
    }
}
