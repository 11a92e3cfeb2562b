//! Long-running vendor operations: started through a provider, recorded in
//! the store, and tracked until they end — polled with backoff under a
//! deadline. A failed operation is an [`Error::Provider`] carrying the
//! vendor's code, message and request id; one that outlives its deadline
//! is [`Error::Timeout`]. Either way the store's record says so.
//!
//! Also here: the platform's side of node changes — the vendor's instance
//! ids recorded beside the Kubernetes node names
//! ([`Platform::sync_vendor_nodes`]), which [`Platform::nodes`] joins.

use super::Platform;
use crate::provider::{AddNodes, ClusterSpec, PollResult, VendorOperation};
use crate::store::{NodeRecord, OperationRecord, OperationState};
use crate::{Error, Result};
use kubepkg_util::ErrorKind;
use std::time::Duration;

/// How an operation is waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up (Timeout) after this long.
    pub deadline: Duration,
    /// The first wait between two polls; doubles up to `max_interval`.
    pub initial_interval: Duration,
    /// The longest wait between two polls.
    pub max_interval: Duration,
}

impl Default for WaitOptions {
    /// 30 minutes, polls from 2 s doubling up to 30 s (vendors create a
    /// cluster in minutes and rate-limit their APIs).
    fn default() -> Self {
        WaitOptions {
            deadline: Duration::from_secs(30 * 60),
            initial_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(30),
        }
    }
}

/// A started operation: the store's record and the vendor's handle.
#[derive(Debug, Clone)]
pub struct TrackedOperation {
    /// The store's record.
    pub record: OperationRecord,
    /// The vendor's acknowledgement (what to poll).
    pub vendor: VendorOperation,
}

impl Platform {
    /// Starts creating a cluster through the provider registered as
    /// `provider` and records the operation (its target is the vendor's
    /// cluster id). Wait for it with [`Self::wait_operation`], then import
    /// the cluster with [`crate::core::ImportSource::Provider`].
    pub async fn create_vendor_cluster(
        &self,
        provider: &str,
        spec: &ClusterSpec,
    ) -> Result<TrackedOperation> {
        let problems = kubepkg_util::names::dns1123_label_messages(&spec.name);
        if !problems.is_empty() {
            return Err(Error::Invalid(format!(
                "cluster name {:?}: {}",
                spec.name,
                problems.join("; ")
            )));
        }
        let p = self.providers().cluster(provider)?;
        let op = p.create_cluster(spec).await?;
        self.record_operation(provider, op).await
    }

    /// Adds nodes to a stored cluster through its provider and records the
    /// operation.
    pub async fn add_nodes(&self, cluster: &str, nodes: &AddNodes) -> Result<TrackedOperation> {
        let (provider, id) = self.vendor_target(cluster).await?;
        let op = self
            .providers()
            .cluster(&provider)?
            .add_nodes(&id, nodes)
            .await?;
        self.record_operation(&provider, op).await
    }

    /// Removes nodes (by instance id) of a stored cluster through its
    /// provider and records the operation.
    pub async fn remove_nodes(
        &self,
        cluster: &str,
        instance_ids: &[String],
    ) -> Result<TrackedOperation> {
        let (provider, id) = self.vendor_target(cluster).await?;
        let op = self
            .providers()
            .cluster(&provider)?
            .remove_nodes(&id, instance_ids)
            .await?;
        self.record_operation(&provider, op).await
    }

    async fn vendor_target(&self, cluster: &str) -> Result<(String, String)> {
        let record = self.store().get_cluster(cluster).await?;
        let id = record.provider_cluster_id.clone().ok_or_else(|| {
            Error::Unsupported(format!(
                "cluster {cluster:?} has no vendor cluster id (provider {:?})",
                record.provider
            ))
        })?;
        Ok((record.provider, id))
    }

    /// Records a vendor's acknowledged operation in the store (Succeeded at
    /// once when the vendor finished it synchronously).
    pub async fn record_operation(
        &self,
        provider: &str,
        op: VendorOperation,
    ) -> Result<TrackedOperation> {
        let mut record = self
            .store()
            .create_operation(&op.kind, provider, &op.target, op.request_id.as_deref())
            .await?;
        if op.done {
            record.state = OperationState::Succeeded;
            record = self.store().update_operation(&record).await?;
        }
        tracing::info!(operation = %record.id, kind = %op.kind, provider, target = %op.target,
            "vendor operation recorded");
        Ok(TrackedOperation { record, vendor: op })
    }

    /// Polls `op` through its provider until it ends, with backoff, for at
    /// most `options.deadline`; the store's record follows every change.
    ///
    /// A poll answered Unavailable (throttled past the client's retries) is
    /// noted and polled again; any other poll error ends the wait with it.
    pub async fn wait_operation(
        &self,
        op: &TrackedOperation,
        options: &WaitOptions,
    ) -> Result<OperationRecord> {
        let provider = self.providers().cluster(&op.record.provider)?;
        let mut record = self.store().get_operation(&op.record.id).await?;
        if record.state.is_terminal() {
            return self.ended(record, op);
        }
        let start = tokio::time::Instant::now();
        let mut interval = options.initial_interval;
        loop {
            match provider.poll(&op.vendor).await {
                Ok(PollResult::Running) => {
                    if record.state == OperationState::Pending {
                        record.state = OperationState::Running;
                        record = self.store().update_operation(&record).await?;
                    }
                }
                Ok(PollResult::Succeeded) => {
                    record.state = OperationState::Succeeded;
                    record.last_error = None;
                    record = self.store().update_operation(&record).await?;
                    return Ok(record);
                }
                Ok(PollResult::Failed { message, code }) => {
                    record.state = OperationState::Failed;
                    record.last_error = Some(match &code {
                        Some(c) => format!("{c}: {message}"),
                        None => message.clone(),
                    });
                    self.store().update_operation(&record).await?;
                    return Err(Error::Provider {
                        provider: op.record.provider.clone(),
                        kind: ErrorKind::Internal,
                        code: code.unwrap_or_else(|| "OperationFailed".into()),
                        message: format!("{} of {}: {message}", op.vendor.kind, op.vendor.target),
                        request_id: op.vendor.request_id.clone(),
                    });
                }
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    tracing::debug!(operation = %record.id, error = %e, "poll failed; polling again");
                    record.last_error = Some(e.to_string());
                    record = self.store().update_operation(&record).await?;
                }
                Err(e) => {
                    record.state = OperationState::Failed;
                    record.last_error = Some(e.to_string());
                    self.store().update_operation(&record).await?;
                    return Err(e);
                }
            }
            if start.elapsed() + interval > options.deadline {
                record.state = OperationState::Failed;
                record.last_error = Some(format!("not done within {:?}", options.deadline));
                self.store().update_operation(&record).await?;
                return Err(Error::Timeout(format!(
                    "{} operation {} ({} of {}, request id {:?}) not done within {:?}",
                    op.record.provider,
                    op.record.id,
                    op.vendor.kind,
                    op.vendor.target,
                    op.vendor.request_id,
                    options.deadline
                )));
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(options.max_interval);
        }
    }

    fn ended(&self, record: OperationRecord, op: &TrackedOperation) -> Result<OperationRecord> {
        match record.state {
            OperationState::Failed => Err(Error::Provider {
                provider: record.provider.clone(),
                kind: ErrorKind::Internal,
                code: "OperationFailed".into(),
                message: record.last_error.clone().unwrap_or_default(),
                request_id: op.vendor.request_id.clone(),
            }),
            _ => Ok(record),
        }
    }

    /// Records, for a stored cluster, which vendor instance each node is
    /// (from its provider's [`list_nodes`](crate::provider::ClusterProvider::list_nodes)),
    /// and forgets nodes the vendor no longer lists. Returns the records.
    pub async fn sync_vendor_nodes(&self, cluster: &str) -> Result<Vec<NodeRecord>> {
        let (provider, id) = self.vendor_target(cluster).await?;
        let vendor = self.providers().cluster(&provider)?.list_nodes(&id).await?;
        let mut keep = std::collections::BTreeSet::new();
        for n in &vendor {
            let Some(node_name) = &n.node_name else {
                continue;
            };
            keep.insert(node_name.clone());
            self.store()
                .upsert_node(&NodeRecord {
                    cluster: cluster.to_string(),
                    node_name: node_name.clone(),
                    provider_instance_id: n.instance_id.clone(),
                    node_pool: n.node_pool.clone(),
                    created_at: jiff::Timestamp::now(),
                })
                .await?;
        }
        for old in self.store().list_nodes(cluster).await? {
            if !keep.contains(&old.node_name) {
                self.store().delete_node(cluster, &old.node_name).await?;
            }
        }
        self.store().list_nodes(cluster).await
    }
}
