//! JSON Schemas of the text rules the validators enforce, for the OpenAPI document: a field
//! says `#[schema(schema_with = schema::line::<200>)]` where its validator calls
//! `Check::name(field, value, 200)` (or `identity::account::check_name`), so the document
//! states what the server accepts and generated clients and fuzzers agree with it.
//!
//! Patterns use the subset of ECMA-262 that every JSON Schema tool reads (no `\p{…}`), so
//! where a rule accepts more than ASCII the pattern says only what it refuses.

use utoipa::openapi::schema::{AnyOfBuilder, Object, ObjectBuilder, Schema, SchemaType, Type};

/// One line of printable characters, at least one of them not a space
/// (`Check::name`, `check_name`).
pub const LINE: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";
/// Printable text over several lines: tabs and line feeds allowed (`Check::text`).
pub const TEXT: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$";
/// A domain name: two or more labels of ASCII letters, digits and hyphens.
pub const DOMAIN: &str = r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$";
/// A tag (`Check::tags`).
pub const TAG: &str = r"^[A-Za-z0-9 .:/-]{1,50}$";
/// A custom field's key (`Check::custom_fields`).
pub const CUSTOM_KEY: &str = r"^[a-z0-9_]{1,64}$";

fn string(min: usize, max: usize, pattern: &str, nullable: bool) -> Object {
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .build()
}

/// A required one-line text of 1 to `MAX` characters.
pub fn line<const MAX: usize>() -> Object {
    string(1, MAX, LINE, false)
}

/// An optional (or, in a PATCH, clearable) one-line text.
pub fn line_or_null<const MAX: usize>() -> Object {
    string(1, MAX, LINE, true)
}

/// A required multi-line text of 1 to `MAX` characters.
pub fn text<const MAX: usize>() -> Object {
    string(1, MAX, TEXT, false)
}

pub fn text_or_null<const MAX: usize>() -> Object {
    string(1, MAX, TEXT, true)
}

/// A new password: 12 to 128 characters, none of them control characters. The strength check
/// (common and personal passwords refused) is beyond any schema.
pub fn new_password() -> Object {
    let mut schema = string(12, 128, r"^[^\x00-\x1F\x7F-\x9F]*$", false);
    schema.format =
        Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Password));
    schema
}

pub fn domain_or_null() -> Object {
    string(3, 253, DOMAIN, true)
}

/// Custom fields: at most 50 keys of `CUSTOM_KEY`; values text (1000), numbers, booleans or
/// null.
pub fn custom_fields() -> Object {
    custom_fields_of(SchemaType::new(Type::Object))
}

pub fn custom_fields_or_null() -> Object {
    custom_fields_of(SchemaType::from_iter([Type::Object, Type::Null]))
}

fn custom_fields_of(kind: SchemaType) -> Object {
    let value: Schema = AnyOfBuilder::new()
        .item(string(0, 1000, TEXT, false))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into();
    ObjectBuilder::new()
        .schema_type(kind)
        .max_properties(Some(50))
        .property_names(Some(string(1, 64, CUSTOM_KEY, false)))
        .additional_properties(Some(value))
        .build()
}

/// A body that is exactly one of several field sets (`oneOf` of closed objects): each
/// variant lists its fields, all required.
pub fn one_of_objects(variants: &[&[(&str, Schema)]]) -> Schema {
    let mut one_of = utoipa::openapi::schema::OneOfBuilder::new();
    for fields in variants {
        let mut object = ObjectBuilder::new().schema_type(Type::Object).additional_properties(
            Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)),
        );
        for (name, schema) in fields.iter() {
            object = object.property(*name, schema.clone()).required(*name);
        }
        one_of = one_of.item(object);
    }
    one_of.build().into()
}

/// A short secret the client types in: a TOTP or backup code, a ticket.
pub fn token() -> Schema {
    string(1, 256, r"^[^\x00-\x1F\x7F-\x9F]*$", false).into()
}

/// A password being presented (not chosen): any length the policy ever allowed.
pub fn password() -> Schema {
    let mut schema = string(1, 1024, r"^[^\x00-\x1F\x7F-\x9F]*$", false);
    schema.format =
        Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Password));
    schema.into()
}

pub fn uuid() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Uuid,
        )))
        .into()
}

/// A WebAuthn `PublicKeyCredential` as the browser serialises it (base64url fields); the
/// server then checks its signature over the challenge, which no schema can state.
pub fn webauthn_credential() -> Schema {
    let b64 = || -> Schema { string(1, 4096, r"^[A-Za-z0-9_-]+$", false).into() };
    let response = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("clientDataJSON", b64())
        .required("clientDataJSON");
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("id", b64())
        .required("id")
        .property("rawId", b64())
        .required("rawId")
        .property(
            "type",
            ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["public-key"])),
        )
        .required("type")
        .property("response", response)
        .required("response")
        .into()
}
