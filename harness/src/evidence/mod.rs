//! Parsers for what Istio shows: access-log lines, echoed headers, XFCC, peer metadata.

pub mod access_log;
pub mod config_dump;
pub mod headers;
pub mod peer_metadata;
pub mod xfcc;
