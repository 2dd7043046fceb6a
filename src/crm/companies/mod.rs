//! Companies (organisations the tenant deals with). No personal data: stored in the clear.

pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

pub use self::store::Companies;
use self::store::{CompanyColumns, CompanyRow};
use super::list::{SortColumn, SortValue, sort_schema};
use super::resource::{Opened, Resource};
use super::{Check, Ref, check_refs, decode_custom, decode_tags, encode_custom, encode_tags};
use crate::app::AppState;
use crate::audit::{Action, Event, RequestContext};
use crate::clock::Timestamp;
use crate::error::DomainResult;
use crate::ids::{CompanyId, UserId};
use crate::store::TenantTx;
use crate::tenancy::{Permission, TenantScope};

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyView {
    id: CompanyId,
    name: String,
    domain: Option<String>,
    industry: Option<String>,
    owner_id: Option<UserId>,
    tags: Vec<String>,
    #[schema(schema_with = crate::schema::custom_fields)]
    custom_fields: Map<String, Value>,
    /// Changed only through `PUT /companies/{id}/credit-limit`.
    credit_limit: Option<CreditLimit>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// An amount a company may owe, in minor units of its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditLimit {
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub amount_minor: i64,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

/// The body of a credit-limit change: the new limit, or `null` to remove it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditLimitChange {
    pub credit_limit: Option<CreditLimit>,
}

impl From<CompanyRow> for CompanyView {
    fn from(r: CompanyRow) -> Self {
        CompanyView {
            id: r.id,
            name: r.name,
            domain: r.domain,
            industry: r.industry,
            owner_id: r.owner_id,
            tags: decode_tags(&r.tags),
            custom_fields: decode_custom(&r.custom_fields),
            credit_limit: match (r.credit_limit_minor, r.credit_limit_currency) {
                (Some(amount_minor), Some(currency)) => {
                    Some(CreditLimit { amount_minor, currency })
                }
                _ => None,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Sets or removes a company's credit limit (`credit:manage` and a recent step-up, checked at
/// the route), audited with the old and the new value.
pub async fn set_credit_limit(
    app: &AppState,
    scope: &TenantScope,
    ctx: &RequestContext,
    id: CompanyId,
    change: CreditLimitChange,
) -> DomainResult<CompanyView> {
    scope.require(Permission::CreditManage)?;
    if let Some(limit) = &change.credit_limit {
        let mut check = Check::new();
        check.currency("credit_limit.currency", &limit.currency);
        if !(0..=1_000_000_000_000_000).contains(&limit.amount_minor) {
            check.fail("credit_limit.amount_minor", "must be between 0 and 10^18");
        }
        check.finish()?;
    }
    let mut tx = app.store().tenant_tx(scope).await?;
    let before: CompanyView = super::fetch::<Companies>(&mut tx, id).await?.into();
    let limit = change.credit_limit.as_ref().map(|l| (l.amount_minor, l.currency.as_str()));
    if !store::set_credit_limit(&mut tx, id, limit, Timestamp::now()).await? {
        return Err(super::not_found::<Companies>());
    }
    let as_value = |limit: &Option<CreditLimit>| serde_json::to_value(limit).unwrap_or(Value::Null);
    let event = Event::new(Action::CompanyCreditLimitChange)
        .detail("old", as_value(&before.credit_limit))
        .detail("new", as_value(&change.credit_limit));
    let row = super::finish_write::<Companies>(tx, scope, ctx, event, id).await?;
    Ok(row.into())
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyCreate {
    #[schema(schema_with = crate::schema::line::<200>)]
    name: String,
    /// A domain name such as `example.com`.
    #[schema(schema_with = crate::schema::domain_or_null)]
    domain: Option<String>,
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    industry: Option<String>,
    owner_id: Option<UserId>,
    #[serde(default)]
    #[schema(value_type = Vec<super::Tag>, max_items = 20)]
    tags: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = crate::schema::custom_fields)]
    custom_fields: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    #[schema(schema_with = crate::schema::line_or_null::<200>)]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(schema_with = crate::schema::domain_or_null)]
    domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(schema_with = crate::schema::line_or_null::<100>)]
    industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch")]
    #[schema(value_type = Option<UserId>)]
    owner_id: Option<Option<UserId>>,
    #[schema(value_type = Option<Vec<super::Tag>>, max_items = 20)]
    tags: Option<Vec<String>>,
    #[schema(schema_with = crate::schema::custom_fields_or_null)]
    custom_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanySort {
    CreatedAt,
    UpdatedAt,
    Name,
}

sort_schema!(CompanySort);

impl SortColumn for CompanySort {
    type Row = CompanyRow;
    const ALL: &'static [CompanySort] =
        &[CompanySort::CreatedAt, CompanySort::UpdatedAt, CompanySort::Name];
    fn name(self) -> &'static str {
        match self {
            CompanySort::CreatedAt => "created_at",
            CompanySort::UpdatedAt => "updated_at",
            CompanySort::Name => "name",
        }
    }
    fn sql(self) -> &'static str {
        self.name()
    }
    fn is_text(self) -> bool {
        self == CompanySort::Name
    }
    fn value(self, row: &CompanyRow) -> SortValue {
        match self {
            CompanySort::CreatedAt => SortValue::Int(row.created_at.millis()),
            CompanySort::UpdatedAt => SortValue::Int(row.updated_at.millis()),
            CompanySort::Name => SortValue::Text(row.name.clone()),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompanyFilter {
    owner_id: Option<UserId>,
    #[param(value_type = Option<super::Tag>)]
    tag: Option<String>,
    /// Exact name.
    name: Option<String>,
}

fn check(c: &CompanyCreate) -> DomainResult<()> {
    let mut check = Check::new();
    check.name("name", &c.name, 200);
    check.domain("domain", c.domain.as_deref());
    check.opt_name("industry", c.industry.as_deref(), 100);
    check.tags("tags", Some(&c.tags));
    check.custom_fields("custom_fields", Some(&c.custom_fields));
    check.finish()
}

impl Resource for Companies {
    type View = CompanyView;
    type Create = CompanyCreate;
    type Patch = CompanyPatch;
    type Sort = CompanySort;

    fn check_filter(filter: &Self::Filter) -> DomainResult<()> {
        super::validate::check_tag_filter(filter.tag.as_deref())
    }

    async fn write(
        _: &AppState,
        _: &TenantScope,
        tx: &mut TenantTx,
        id: CompanyId,
        c: &CompanyCreate,
        insert: bool,
    ) -> DomainResult<Option<Self::Row>> {
        check(c)?;
        check_refs(tx, &[("owner_id", Ref::User, c.owner_id.map(|id| id.as_uuid()))]).await?;
        let columns = CompanyColumns {
            name: c.name.trim(),
            domain: c.domain.as_deref(),
            industry: c.industry.as_deref(),
            owner_id: c.owner_id,
            tags: encode_tags(&c.tags),
            custom_fields: encode_custom(&c.custom_fields),
        };
        Ok(super::store::write::<Companies>(tx, id, &columns, insert, Timestamp::now()).await?)
    }

    async fn body_of(
        _: &AppState,
        _: &mut TenantTx,
        row: CompanyRow,
    ) -> DomainResult<CompanyCreate> {
        Ok(CompanyCreate {
            name: row.name,
            domain: row.domain,
            industry: row.industry,
            owner_id: row.owner_id,
            tags: decode_tags(&row.tags),
            custom_fields: decode_custom(&row.custom_fields),
        })
    }

    fn patch(body: CompanyCreate, patch: CompanyPatch) -> CompanyCreate {
        CompanyCreate {
            name: patch.name.unwrap_or(body.name),
            domain: patch.domain.unwrap_or(body.domain),
            industry: patch.industry.unwrap_or(body.industry),
            owner_id: patch.owner_id.unwrap_or(body.owner_id),
            tags: patch.tags.unwrap_or(body.tags),
            custom_fields: patch.custom_fields.unwrap_or(body.custom_fields),
        }
    }

    fn view(row: CompanyRow, _: Option<&Opened>) -> DomainResult<CompanyView> {
        Ok(row.into())
    }
}
