//! Parsers for what Istio shows: access-log lines, echoed headers, XFCC, peer metadata,
//! Gateway API status, ztunnel's connection lines, Envoy's stats.

pub mod access_log;
pub mod config_dump;
pub mod envoy_stats;
pub mod headers;
pub mod peer_metadata;
pub mod status;
pub mod xfcc;
pub mod ztunnel_log;
