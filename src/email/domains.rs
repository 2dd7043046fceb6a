//! Sending domains: a tenant names a domain, Bulwark generates its DKIM key (RSA-2048,
//! sealed under the tenant's key, never returned) and lists the DNS records to publish;
//! `verify` looks them up through the configured resolver. Only a verified domain sends.

use serde::Serialize;
use utoipa::ToSchema;

use super::store::{self, DomainRow};
use super::{address, dkim};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::crypto::field::Place;
use crate::dns;
use crate::error::{DomainError, DomainResult};
use crate::ids::EmailDomainId;
use crate::tenancy::{Permission, TenantScope};

/// A record the tenant publishes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DnsRecord {
    /// `TXT` or `CNAME`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub value: String,
    /// `dkim`, `spf`, `dmarc` or `return_path`.
    pub purpose: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainView {
    pub id: EmailDomainId,
    pub domain: String,
    /// The selector of the key that signs.
    pub dkim_selector: String,
    /// A rotation's next key (`rotate-dkim`): its record is listed too, and it takes over
    /// signing once `verify` finds it published.
    pub next_dkim_selector: Option<String>,
    /// `pending` until `verify` finds every record, then `verified`.
    pub status: String,
    pub dns_records: Vec<DnsRecord>,
    pub created_at: Timestamp,
    pub verified_at: Option<Timestamp>,
}

/// What `verify` found, record by record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Checks {
    pub dkim: bool,
    pub spf: bool,
    pub dmarc: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verification {
    /// `verified` or `pending`.
    pub status: String,
    pub checks: Checks,
}

pub(super) fn place(scope: &TenantScope, id: EmailDomainId) -> Place<'static> {
    Place {
        tenant: scope.tenant_id(),
        table: "email_domains",
        column: "dkim_private",
        row: id.as_uuid(),
    }
}

/// Where a rotation's next key is sealed.
pub(super) fn next_place(scope: &TenantScope, id: EmailDomainId) -> Place<'static> {
    Place { column: "next_dkim_private", ..place(scope, id) }
}

fn view(app: &AppState, row: DomainRow) -> DomainView {
    let return_path = app.config().public_url.host_str().unwrap_or("localhost").to_owned();
    let mut dns_records = vec![
        DnsRecord {
            kind: "TXT",
            name: format!("{}._domainkey.{}", row.selector, row.domain),
            value: dkim::record(&row.dkim_public),
            purpose: "dkim",
        },
        DnsRecord {
            kind: "TXT",
            name: row.domain.clone(),
            value: "v=spf1 a mx ~all".into(),
            purpose: "spf",
        },
        DnsRecord {
            kind: "TXT",
            name: format!("_dmarc.{}", row.domain),
            value: "v=DMARC1; p=quarantine; adkim=s; aspf=r".into(),
            purpose: "dmarc",
        },
        DnsRecord {
            kind: "CNAME",
            name: format!("bounces.{}", row.domain),
            value: return_path,
            purpose: "return_path",
        },
    ];
    // A rotation in progress: the next key's record, to publish beside the current one.
    if let (Some(selector), Some(public)) = (&row.next_selector, &row.next_dkim_public) {
        dns_records.insert(
            1,
            DnsRecord {
                kind: "TXT",
                name: format!("{selector}._domainkey.{}", row.domain),
                value: dkim::record(public),
                purpose: "dkim",
            },
        );
    }
    DomainView {
        id: row.id,
        dkim_selector: row.selector,
        next_dkim_selector: row.next_selector,
        domain: row.domain,
        status: row.status,
        dns_records,
        created_at: row.created_at,
        verified_at: row.verified_at,
    }
}

/// Adds a sending domain with a new DKIM key; audited.
pub async fn create(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    domain: &str,
) -> DomainResult<DomainView> {
    scope.require(Permission::EmailManage)?;
    let domain = domain.trim().to_ascii_lowercase();
    if !address::is_domain(&domain) {
        return Err(DomainError::Invalid(vec![("domain".into(), "must be a domain name".into())]));
    }
    let key = dkim::generate().await?;
    let id = EmailDomainId::new();
    let mut tx = app.store().tenant_tx(scope).await?;
    if store::domain_by_name(&mut tx, &domain).await?.is_some() {
        return Err(DomainError::Conflict("this domain is already added"));
    }
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let row = DomainRow {
        id,
        domain,
        selector: dkim::new_selector(),
        key_version: i32::try_from(keys.current_version()).unwrap_or(i32::MAX),
        dkim_private: keys.encrypt(&place(scope, id), key.private_pem.as_bytes()),
        dkim_public: key.public_base64,
        status: "pending".into(),
        created_at: Timestamp::now(),
        verified_at: None,
        next_selector: None,
        next_dkim_private: None,
        next_dkim_public: None,
    };
    store::insert_domain(&mut tx, &row).await?;
    let event = Event::new(Action::EmailDomainCreate)
        .by_scope(scope)
        .target("email_domain", id)
        .detail("domain", row.domain.as_str());
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    Ok(view(app, row))
}

pub async fn list(app: &AppState, scope: &TenantScope) -> DomainResult<Vec<DomainView>> {
    scope.require(Permission::EmailManage)?;
    let mut tx = app.store().tenant_read(scope).await?;
    let rows = store::domains(&mut tx).await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|row| view(app, row)).collect())
}

pub async fn get(
    app: &AppState,
    scope: &TenantScope,
    id: EmailDomainId,
) -> DomainResult<DomainView> {
    scope.require(Permission::EmailManage)?;
    let mut tx = app.store().tenant_read(scope).await?;
    let row = store::domain(&mut tx, id).await?.ok_or(DomainError::NotFound("email domain"))?;
    tx.commit().await?;
    Ok(view(app, row))
}

/// Removes a domain and its key; its messages keep their history. Audited.
pub async fn delete(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: EmailDomainId,
) -> DomainResult<()> {
    scope.require(Permission::EmailManage)?;
    let mut tx = app.store().tenant_tx(scope).await?;
    if !store::delete_domain(&mut tx, id).await? {
        return Err(DomainError::NotFound("email domain"));
    }
    let event = Event::new(Action::EmailDomainDelete).by_scope(scope).target("email_domain", id);
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Looks the domain's records up; marks it verified when DKIM, SPF and DMARC are published.
pub async fn verify(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: EmailDomainId,
) -> DomainResult<Verification> {
    scope.require(Permission::EmailManage)?;
    let read = async || -> DomainResult<DomainRow> {
        let mut tx = app.store().tenant_read(scope).await?;
        let row = store::domain(&mut tx, id).await?.ok_or(DomainError::NotFound("email domain"))?;
        tx.commit().await?;
        Ok(row)
    };
    let mut row = read().await?;
    let resolver = dns::Resolver::new(app.config().email.dns_resolver);
    // A rotation's next key takes over once its record is out; the checks below then look
    // for the new key's record.
    if promote_if_published(app, scope, ctx, &resolver, &row).await? {
        row = read().await?;
    }
    let dkim_name = format!("{}._domainkey.{}", row.selector, row.domain);
    let dmarc_name = format!("_dmarc.{}", row.domain);
    let (dkim_txt, spf_txt, dmarc_txt) = tokio::join!(
        resolver.txt(&dkim_name),
        resolver.txt(&row.domain),
        resolver.txt(&dmarc_name),
    );
    let checks = Checks {
        dkim: dkim_txt.iter().any(|value| dkim::record_matches(value, &row.dkim_public)),
        spf: spf_txt.iter().any(|value| value.trim_start().starts_with("v=spf1")),
        dmarc: dmarc_txt.iter().any(|value| value.trim_start().starts_with("v=DMARC1")),
    };
    let verified = checks.dkim && checks.spf && checks.dmarc;
    if verified && row.status != "verified" {
        let mut tx = app.store().tenant_tx(scope).await?;
        store::mark_verified(&mut tx, id, Timestamp::now()).await?;
        let event =
            Event::new(Action::EmailDomainVerify).by_scope(scope).target("email_domain", id);
        audit::record(&mut tx, ctx, event).await?;
        tx.commit().await?;
    }
    let status = if verified { "verified" } else { "pending" };
    Ok(Verification { status: status.into(), checks })
}

/// Makes a rotation's next key the signing key when its record is published (re-sealed for
/// its new column); whether it did. Audited.
async fn promote_if_published(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    resolver: &dns::Resolver,
    row: &DomainRow,
) -> DomainResult<bool> {
    let (Some(selector), Some(public), Some(sealed)) =
        (&row.next_selector, &row.next_dkim_public, &row.next_dkim_private)
    else {
        return Ok(false);
    };
    let published = resolver.txt(&format!("{selector}._domainkey.{}", row.domain)).await;
    if !published.iter().any(|value| dkim::record_matches(value, public)) {
        return Ok(false);
    }
    let mut tx = app.store().tenant_tx(scope).await?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let pem = keys
        .decrypt(&next_place(scope, row.id), sealed)
        .map_err(|err| DomainError::Internal(format!("DKIM key: {err}")))?;
    let resealed = keys.encrypt(&place(scope, row.id), &pem);
    let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    let promoted = store::promote_next_key(&mut tx, row.id, selector, version, &resealed).await?;
    if promoted {
        let event = Event::new(Action::EmailDomainRotateDkim)
            .by_scope(scope)
            .target("email_domain", row.id)
            .detail("selector", selector.as_str())
            .detail("step", "promoted");
        audit::record(&mut tx, ctx, event).await?;
    }
    tx.commit().await?;
    Ok(promoted)
}

/// Starts a key rotation: a new key under a new selector, published beside the current one,
/// which keeps signing until `verify` finds the new record. Audited.
pub async fn rotate_dkim(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: EmailDomainId,
) -> DomainResult<DomainView> {
    scope.require(Permission::EmailManage)?;
    let key = dkim::generate().await?;
    let selector = dkim::new_selector();
    let mut tx = app.store().tenant_tx(scope).await?;
    let keys = crate::crm::sealing_keys(app, &mut tx).await?;
    let version = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    let sealed = keys.encrypt(&next_place(scope, id), key.private_pem.as_bytes());
    if !store::set_next_key(&mut tx, id, &selector, version, &sealed, &key.public_base64).await? {
        return Err(DomainError::NotFound("email domain"));
    }
    let row = store::domain(&mut tx, id).await?.ok_or(DomainError::NotFound("email domain"))?;
    let event = Event::new(Action::EmailDomainRotateDkim)
        .by_scope(scope)
        .target("email_domain", id)
        .detail("selector", selector.as_str())
        .detail("step", "started");
    audit::record(&mut tx, ctx, event).await?;
    tx.commit().await?;
    Ok(view(app, row))
}
