//! The `pick` stage: which endpoint of the chosen cluster gets this request.
//!
//! Today round robin per worker (one cursor per cluster, in the worker's
//! generation); the load-balancing algorithms (weighted, least-request,
//! consistent hash) and health / outlier state plug in here.

use super::generation::WorkerGen;
use crate::error::{ErrorKind, ProxyError};

/// The endpoint (index in the cluster) for the next request to `cluster`;
/// `NoEndpoint` (503) when the cluster has none.
pub fn pick_endpoint(gen: &WorkerGen, cluster: usize) -> Result<usize, ProxyError> {
    let n = gen.config().clusters[cluster].endpoints.len();
    gen.balancers[cluster]
        .pick(n)
        .ok_or_else(|| ProxyError::new(ErrorKind::NoEndpoint))
}
