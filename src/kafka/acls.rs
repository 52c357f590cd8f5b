//! Topic ACLs through librdkafka's `DescribeAcls` and `CreateAcls`, which rust-rdkafka does not
//! wrap. The crate's only `unsafe` code lives here; every librdkafka handle it creates is owned by
//! a small guard that frees it, and every string it reads is copied before the handle goes away.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::raw::c_char;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

use super::native::{self, string, Event};

/// The operations an ACL can grant or deny (Kafka's `AclOperation`, minus the filter-only ANY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclPermission {
    Allow,
    Deny,
}

/// How an ACL's resource name matches topic names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    Literal,
    Prefixed,
}

/// One ACL binding on a topic resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicAcl {
    pub topic: String,
    pub pattern: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// The cluster runs without an authorizer (`SECURITY_DISABLED`): there are no ACLs to read.
    #[error("the cluster has no authorizer (security disabled)")]
    SecurityDisabled,
    #[error("{0}")]
    Failed(String),
}

/// Every ACL on a topic resource (any name, literal or prefixed), as `DescribeAcls` returns them.
/// Blocks up to `timeout`; call it off the async runtime.
pub fn describe_topic_acls<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
) -> Result<Vec<TopicAcl>, AclError> {
    let filter = Binding::filter_any_topic()?;
    let event = request(client, timeout, |rk, options, queue| unsafe {
        rd::rd_kafka_DescribeAcls(rk, filter.0, options, queue)
    })?;
    let mut acls = Vec::new();
    unsafe {
        let result = rd::rd_kafka_event_DescribeAcls_result(event.0);
        if result.is_null() {
            return Err(AclError::Failed("unexpected reply to DescribeAcls".into()));
        }
        let mut count = 0usize;
        let bindings = rd::rd_kafka_DescribeAcls_result_acls(result, &mut count);
        for index in 0..count {
            let binding = *bindings.add(index);
            if let Some(acl) = topic_acl(binding) {
                acls.push(acl);
            }
        }
    }
    Ok(acls)
}

/// Creates `acls` (idempotent on the broker); per binding `Ok` or the broker's error.
/// Blocks up to `timeout`; call it off the async runtime.
pub fn create_topic_acls<C: ClientContext>(
    client: &Client<C>,
    acls: &[TopicAcl],
    timeout: Duration,
) -> Result<Vec<Result<(), String>>, AclError> {
    if acls.is_empty() {
        return Ok(Vec::new());
    }
    let bindings = acls
        .iter()
        .map(Binding::new)
        .collect::<Result<Vec<_>, _>>()?;
    let mut pointers: Vec<*mut rd::rd_kafka_AclBinding_t> = bindings.iter().map(|b| b.0).collect();
    let event = request(client, timeout, |rk, options, queue| unsafe {
        // librdkafka copies the bindings; `bindings` still owns (and frees) ours.
        rd::rd_kafka_CreateAcls(rk, pointers.as_mut_ptr(), pointers.len(), options, queue)
    })?;
    let mut outcomes = Vec::with_capacity(acls.len());
    unsafe {
        let result = rd::rd_kafka_event_CreateAcls_result(event.0);
        if result.is_null() {
            return Err(AclError::Failed("unexpected reply to CreateAcls".into()));
        }
        let mut count = 0usize;
        let results = rd::rd_kafka_CreateAcls_result_acls(result, &mut count);
        for index in 0..count {
            let error = rd::rd_kafka_acl_result_error(*results.add(index));
            outcomes.push(if error.is_null() {
                Ok(())
            } else {
                Err(string(rd::rd_kafka_error_string(error)))
            });
        }
    }
    if outcomes.len() != acls.len() {
        return Err(AclError::Failed(format!(
            "CreateAcls answered {} of {} bindings",
            outcomes.len(),
            acls.len()
        )));
    }
    Ok(outcomes)
}

/// One admin round trip; `SECURITY_DISABLED` (no authorizer) is its own error.
fn request<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
    send: impl FnOnce(
        *mut rd::rd_kafka_t,
        *const rd::rd_kafka_AdminOptions_t,
        *mut rd::rd_kafka_queue_t,
    ),
) -> Result<Event, AclError> {
    native::request(client, timeout, |_| {}, send).map_err(|error| {
        if error.code == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_SECURITY_DISABLED {
            AclError::SecurityDisabled
        } else {
            AclError::Failed(error.message)
        }
    })
}

/// Reads one binding of a DescribeAcls result; `None` for non-topic resources and for values
/// this build cannot represent (they could not be recreated faithfully).
unsafe fn topic_acl(binding: *const rd::rd_kafka_AclBinding_t) -> Option<TopicAcl> {
    use rd::rd_kafka_AclOperation_t as Op;
    use rd::rd_kafka_AclPermissionType_t as Perm;
    use rd::rd_kafka_ResourcePatternType_t as Pat;
    if rd::rd_kafka_AclBinding_restype(binding)
        != rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC
    {
        return None;
    }
    let pattern = match rd::rd_kafka_AclBinding_resource_pattern_type(binding) {
        Pat::RD_KAFKA_RESOURCE_PATTERN_LITERAL => PatternType::Literal,
        Pat::RD_KAFKA_RESOURCE_PATTERN_PREFIXED => PatternType::Prefixed,
        _ => return None,
    };
    let operation = match rd::rd_kafka_AclBinding_operation(binding) {
        Op::RD_KAFKA_ACL_OPERATION_ALL => AclOperation::All,
        Op::RD_KAFKA_ACL_OPERATION_READ => AclOperation::Read,
        Op::RD_KAFKA_ACL_OPERATION_WRITE => AclOperation::Write,
        Op::RD_KAFKA_ACL_OPERATION_CREATE => AclOperation::Create,
        Op::RD_KAFKA_ACL_OPERATION_DELETE => AclOperation::Delete,
        Op::RD_KAFKA_ACL_OPERATION_ALTER => AclOperation::Alter,
        Op::RD_KAFKA_ACL_OPERATION_DESCRIBE => AclOperation::Describe,
        Op::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION => AclOperation::ClusterAction,
        Op::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS => AclOperation::DescribeConfigs,
        Op::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS => AclOperation::AlterConfigs,
        Op::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE => AclOperation::IdempotentWrite,
        _ => return None,
    };
    let permission = match rd::rd_kafka_AclBinding_permission_type(binding) {
        Perm::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW => AclPermission::Allow,
        Perm::RD_KAFKA_ACL_PERMISSION_TYPE_DENY => AclPermission::Deny,
        _ => return None,
    };
    Some(TopicAcl {
        topic: string(rd::rd_kafka_AclBinding_name(binding)),
        pattern,
        principal: string(rd::rd_kafka_AclBinding_principal(binding)),
        host: string(rd::rd_kafka_AclBinding_host(binding)),
        operation,
        permission,
    })
}

fn c_string(value: &str) -> Result<CString, AclError> {
    CString::new(value).map_err(|_| AclError::Failed(format!("NUL byte in ACL field {value:?}")))
}

/// An `rd_kafka_AclBinding_t` (or filter) we allocated.
struct Binding(*mut rd::rd_kafka_AclBinding_t);

impl Binding {
    fn filter_any_topic() -> Result<Self, AclError> {
        let mut errstr = [0 as c_char; 512];
        let pointer = unsafe {
            rd::rd_kafka_AclBindingFilter_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                std::ptr::null(),
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY,
                std::ptr::null(),
                std::ptr::null(),
                rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY,
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        Self::checked(pointer, &errstr)
    }

    fn new(acl: &TopicAcl) -> Result<Self, AclError> {
        use rd::rd_kafka_AclOperation_t as Op;
        let operation = match acl.operation {
            AclOperation::All => Op::RD_KAFKA_ACL_OPERATION_ALL,
            AclOperation::Read => Op::RD_KAFKA_ACL_OPERATION_READ,
            AclOperation::Write => Op::RD_KAFKA_ACL_OPERATION_WRITE,
            AclOperation::Create => Op::RD_KAFKA_ACL_OPERATION_CREATE,
            AclOperation::Delete => Op::RD_KAFKA_ACL_OPERATION_DELETE,
            AclOperation::Alter => Op::RD_KAFKA_ACL_OPERATION_ALTER,
            AclOperation::Describe => Op::RD_KAFKA_ACL_OPERATION_DESCRIBE,
            AclOperation::ClusterAction => Op::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
            AclOperation::DescribeConfigs => Op::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
            AclOperation::AlterConfigs => Op::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
            AclOperation::IdempotentWrite => Op::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
        };
        let permission = match acl.permission {
            AclPermission::Allow => {
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW
            }
            AclPermission::Deny => {
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY
            }
        };
        let pattern = match acl.pattern {
            PatternType::Literal => {
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL
            }
            PatternType::Prefixed => {
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED
            }
        };
        let (topic, principal, host) = (
            c_string(&acl.topic)?,
            c_string(&acl.principal)?,
            c_string(&acl.host)?,
        );
        let mut errstr = [0 as c_char; 512];
        let pointer = unsafe {
            rd::rd_kafka_AclBinding_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                topic.as_ptr(),
                pattern,
                principal.as_ptr(),
                host.as_ptr(),
                operation,
                permission,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        Self::checked(pointer, &errstr)
    }

    fn checked(
        pointer: *mut rd::rd_kafka_AclBinding_t,
        errstr: &[c_char],
    ) -> Result<Self, AclError> {
        if pointer.is_null() {
            Err(AclError::Failed(unsafe { string(errstr.as_ptr()) }))
        } else {
            Ok(Self(pointer))
        }
    }
}

impl Drop for Binding {
    fn drop(&mut self) {
        unsafe { rd::rd_kafka_AclBinding_destroy(self.0) }
    }
}
