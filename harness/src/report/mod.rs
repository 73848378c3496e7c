//! Reports of a run in `reports/<run-id>/`, all rendered from one [`results::Results`]:
//!
//! - `results`: the versioned `results.json` schema.
//! - `case`: a trial's findings as a case, known issues applied.
//! - `hops`: the path a request took, read from the evidence.
//! - `junit`, `markdown`, `html` (with `svg` diagrams): the renderings.
//! - `baseline`: what changed since an earlier run.
//! - `collect`: the cases of a running process, written on every exit path.
//! - `merge`: shards and versions combined into one report.

pub mod baseline;
pub mod browser;
pub mod case;
pub mod collect;
pub mod hops;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod results;
pub mod svg;
pub mod write;

/// Now, RFC 3339 in UTC.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
