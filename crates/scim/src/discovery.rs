//! Discovery documents (RFC 7644 §4, RFC 7643 §5–§8): ServiceProviderConfig,
//! ResourceTypes and Schemas, for a service provider whose SCIM base URL
//! (e.g. `https://host/scim/v2`) is passed in to build `meta.location`.

use serde_json::{Value, json};

use crate::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA, USER_SCHEMA,
};

/// `filter.maxResults` advertised, and the page size cap of the bundled target.
pub const MAX_RESULTS: usize = 1000;

/// Most operations one Bulk request may carry.
pub const BULK_MAX_OPERATIONS: usize = 1000;

/// Largest Bulk request body, in bytes.
pub const BULK_MAX_PAYLOAD_SIZE: usize = 1_048_576;

fn base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// ServiceProviderConfig (RFC 7643 §5). `bearer_token_auth` adds the
/// `oauthbearertoken` authentication scheme.
pub fn service_provider_config(base_url: &str, bearer_token_auth: bool, basic_auth: bool) -> Value {
    let mut schemes: Vec<Value> = Vec::new();
    if bearer_token_auth {
        schemes.push(json!({
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication scheme using the OAuth Bearer Token Standard",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true
        }));
    }
    if basic_auth {
        schemes.push(json!({
            "type": "httpbasic",
            "name": "HTTP Basic",
            "description": "Authentication scheme using the HTTP Basic Standard",
            "specUri": "https://www.rfc-editor.org/info/rfc7617",
            "primary": !bearer_token_auth
        }));
    }
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": BULK_MAX_OPERATIONS, "maxPayloadSize": BULK_MAX_PAYLOAD_SIZE},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": schemes,
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(base_url))
        }
    })
}

/// ResourceType for User (with the optional enterprise extension).
pub fn user_resource_type(base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": false}],
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/User", base(base_url))
        }
    })
}

/// ResourceType for Group.
pub fn group_resource_type(base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "Group",
        "schema": GROUP_SCHEMA,
        "schemaExtensions": [],
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/Group", base(base_url))
        }
    })
}

/// All resource types (User, Group).
pub fn resource_types(base_url: &str) -> Vec<Value> {
    vec![user_resource_type(base_url), group_resource_type(base_url)]
}

/// One resource type by name (case-insensitive), as served at
/// `/ResourceTypes/{name}`.
pub fn resource_type(base_url: &str, name: &str) -> Option<Value> {
    if name.eq_ignore_ascii_case("User") {
        Some(user_resource_type(base_url))
    } else if name.eq_ignore_ascii_case("Group") {
        Some(group_resource_type(base_url))
    } else {
        None
    }
}

/// All schemas: core User, core Group, enterprise User.
pub fn schemas(base_url: &str) -> Vec<Value> {
    vec![
        user_schema(base_url),
        group_schema(base_url),
        enterprise_user_schema(base_url),
    ]
}

/// One schema by URN (case-insensitive), as served at `/Schemas/{urn}`.
pub fn schema(base_url: &str, urn: &str) -> Option<Value> {
    schemas(base_url).into_iter().find(|s| {
        s.get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| id.eq_ignore_ascii_case(urn))
    })
}

fn schema_doc(
    base_url: &str,
    id: &str,
    name: &str,
    description: &str,
    attributes: Vec<Value>,
) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{id}", base(base_url))
        }
    })
}

/// Attribute definition builder; defaults follow RFC 7643 §2.2.
struct Attr {
    value: serde_json::Map<String, Value>,
}

fn attr(name: &str, ty: &str, description: &str) -> Attr {
    let mut value = serde_json::Map::new();
    value.insert("name".into(), name.into());
    value.insert("type".into(), ty.into());
    value.insert("multiValued".into(), false.into());
    value.insert("description".into(), description.into());
    value.insert("required".into(), false.into());
    if ty == "string" || ty == "reference" || ty == "binary" {
        value.insert("caseExact".into(), (ty != "string").into());
    }
    value.insert("mutability".into(), "readWrite".into());
    value.insert("returned".into(), "default".into());
    if ty != "complex" && ty != "boolean" {
        value.insert("uniqueness".into(), "none".into());
    }
    Attr { value }
}

fn string(name: &str, description: &str) -> Attr {
    attr(name, "string", description)
}

impl Attr {
    fn set(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.value.insert(key.into(), v.into());
        self
    }
    fn multi(self) -> Self {
        self.set("multiValued", true)
    }
    fn required(self) -> Self {
        self.set("required", true)
    }
    fn case_exact(self) -> Self {
        self.set("caseExact", true)
    }
    fn mutability(self, m: &str) -> Self {
        self.set("mutability", m)
    }
    fn returned(self, r: &str) -> Self {
        self.set("returned", r)
    }
    fn uniqueness(self, u: &str) -> Self {
        self.set("uniqueness", u)
    }
    fn canonical(self, values: &[&str]) -> Self {
        self.set("canonicalValues", values.to_vec())
    }
    fn refs(self, types: &[&str]) -> Self {
        self.set("referenceTypes", types.to_vec())
    }
    fn sub(self, attrs: Vec<Value>) -> Self {
        self.set("subAttributes", attrs)
    }
    fn build(self) -> Value {
        Value::Object(self.value)
    }
}

/// The `value`/`display`/`type`/`primary` sub-attributes shared by the
/// multi-valued User attributes.
fn multi_value_subs(what: &str, value_type: &str, types: &[&str]) -> Vec<Value> {
    let value = attr("value", value_type, &format!("The {what} value."));
    let value = if value_type == "reference" {
        value.refs(&["external"])
    } else {
        value
    };
    vec![
        value.build(),
        string(
            "display",
            &format!("A human-readable name for the {what}, primarily used for display purposes."),
        )
        .build(),
        string(
            "type",
            &format!("A label indicating the {what}'s function."),
        )
        .canonical(types)
        .build(),
        attr(
            "primary",
            "boolean",
            &format!(
                "Indicates the 'primary' or preferred {what} value; true on at most one value."
            ),
        )
        .build(),
    ]
}

/// Core User schema (RFC 7643 §4.1, §8.7.1).
pub fn user_schema(base_url: &str) -> Value {
    let name_subs = vec![
        string("formatted", "The full name, formatted for display.").build(),
        string("familyName", "The family name of the User.").build(),
        string("givenName", "The given name of the User.").build(),
        string("middleName", "The middle name(s) of the User.").build(),
        string("honorificPrefix", "The honorific prefix(es) of the User.").build(),
        string("honorificSuffix", "The honorific suffix(es) of the User.").build(),
    ];
    let address_subs = vec![
        string(
            "formatted",
            "The full mailing address, formatted for display.",
        )
        .build(),
        string("streetAddress", "The full street address component.").build(),
        string("locality", "The city or locality component.").build(),
        string("region", "The state or region component.").build(),
        string("postalCode", "The zip code or postal code component.").build(),
        string(
            "country",
            "The country name component (ISO 3166-1 alpha-2).",
        )
        .build(),
        string("type", "A label indicating the address's function.")
            .canonical(&["work", "home", "other"])
            .build(),
        attr(
            "primary",
            "boolean",
            "Indicates the primary mailing address.",
        )
        .build(),
    ];
    let group_subs = vec![
        string("value", "The identifier of the User's group.")
            .mutability("readOnly")
            .build(),
        attr(
            "$ref",
            "reference",
            "The URI of the corresponding 'Group' resource.",
        )
        .refs(&["User", "Group"])
        .mutability("readOnly")
        .build(),
        string("display", "A human-readable name of the group.")
            .mutability("readOnly")
            .build(),
        string("type", "How the group membership was derived.")
            .canonical(&["direct", "indirect"])
            .mutability("readOnly")
            .build(),
    ];
    let attributes = vec![
        string(
            "userName",
            "Unique identifier for the User, used to authenticate.",
        )
        .required()
        .uniqueness("server")
        .build(),
        attr("name", "complex", "The components of the user's real name.")
            .sub(name_subs)
            .build(),
        string(
            "displayName",
            "The name of the User, suitable for display to end-users.",
        )
        .build(),
        string("nickName", "The casual way to address the user.").build(),
        attr(
            "profileUrl",
            "reference",
            "A fully qualified URL pointing to the User's online profile.",
        )
        .refs(&["external"])
        .build(),
        string("title", "The user's title, such as \"Vice President\".").build(),
        string(
            "userType",
            "The relationship between the organization and the user.",
        )
        .build(),
        string(
            "preferredLanguage",
            "The User's preferred written or spoken language (RFC 7231 Accept-Language).",
        )
        .build(),
        string(
            "locale",
            "The User's default location for localization (e.g. en-US).",
        )
        .build(),
        string(
            "timezone",
            "The User's time zone in IANA format (e.g. America/Los_Angeles).",
        )
        .build(),
        attr("active", "boolean", "The User's administrative status.").build(),
        string("password", "The User's cleartext password.")
            .mutability("writeOnly")
            .returned("never")
            .build(),
        attr("emails", "complex", "Email addresses for the user.")
            .multi()
            .sub(multi_value_subs(
                "email address",
                "string",
                &["work", "home", "other"],
            ))
            .build(),
        attr("phoneNumbers", "complex", "Phone numbers for the User.")
            .multi()
            .sub(multi_value_subs(
                "phone number",
                "string",
                &["work", "home", "mobile", "fax", "pager", "other"],
            ))
            .build(),
        attr(
            "ims",
            "complex",
            "Instant messaging addresses for the User.",
        )
        .multi()
        .sub(multi_value_subs(
            "instant messaging address",
            "string",
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        ))
        .build(),
        attr("photos", "complex", "URLs of photos of the User.")
            .multi()
            .sub(multi_value_subs(
                "photo",
                "reference",
                &["photo", "thumbnail"],
            ))
            .build(),
        attr(
            "addresses",
            "complex",
            "A physical mailing address for this User.",
        )
        .multi()
        .sub(address_subs)
        .build(),
        attr(
            "groups",
            "complex",
            "A list of groups to which the user belongs.",
        )
        .multi()
        .mutability("readOnly")
        .sub(group_subs)
        .build(),
        attr(
            "entitlements",
            "complex",
            "A list of entitlements for the User.",
        )
        .multi()
        .sub(multi_value_subs("entitlement", "string", &[]))
        .build(),
        attr("roles", "complex", "A list of roles for the User.")
            .multi()
            .sub(multi_value_subs("role", "string", &[]))
            .build(),
        attr(
            "x509Certificates",
            "complex",
            "A list of certificates issued to the User.",
        )
        .multi()
        .sub(multi_value_subs("certificate", "binary", &[]))
        .build(),
        string(
            "externalId",
            "An identifier for the resource as defined by the provisioning client.",
        )
        .case_exact()
        .build(),
    ];
    schema_doc(base_url, USER_SCHEMA, "User", "User Account", attributes)
}

/// Core Group schema (RFC 7643 §4.2, §8.7.1).
pub fn group_schema(base_url: &str) -> Value {
    let member_subs = vec![
        string("value", "Identifier of the member of this Group.")
            .case_exact()
            .mutability("immutable")
            .build(),
        attr("$ref", "reference", "The URI of the member resource.")
            .refs(&["User", "Group"])
            .mutability("immutable")
            .build(),
        string("display", "A human-readable name of the member.")
            .mutability("readOnly")
            .build(),
        string("type", "The type of the member.")
            .canonical(&["User", "Group"])
            .mutability("immutable")
            .build(),
    ];
    let attributes = vec![
        string("displayName", "A human-readable name for the Group.")
            .required()
            .build(),
        attr("members", "complex", "A list of members of the Group.")
            .multi()
            .sub(member_subs)
            .build(),
        string(
            "externalId",
            "An identifier for the resource as defined by the provisioning client.",
        )
        .case_exact()
        .build(),
    ];
    schema_doc(base_url, GROUP_SCHEMA, "Group", "Group", attributes)
}

/// Enterprise User extension schema (RFC 7643 §4.3, §8.7.1).
pub fn enterprise_user_schema(base_url: &str) -> Value {
    let manager_subs = vec![
        string(
            "value",
            "The id of the SCIM resource representing the User's manager.",
        )
        .build(),
        attr(
            "$ref",
            "reference",
            "The URI of the SCIM resource representing the User's manager.",
        )
        .refs(&["User"])
        .build(),
        string("displayName", "The displayName of the User's manager.")
            .mutability("readOnly")
            .build(),
    ];
    let attributes = vec![
        string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person.",
        )
        .build(),
        string("costCenter", "Identifies the name of a cost center.").build(),
        string("organization", "Identifies the name of an organization.").build(),
        string("division", "Identifies the name of a division.").build(),
        string("department", "Identifies the name of a department.").build(),
        attr("manager", "complex", "The User's manager.")
            .sub(manager_subs)
            .build(),
    ];
    schema_doc(
        base_url,
        ENTERPRISE_USER_SCHEMA,
        "EnterpriseUser",
        "Enterprise User",
        attributes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://scim.example.com/scim/v2/";

    fn attr_names(schema: &Value) -> Vec<String> {
        schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn service_provider_config_flags() {
        let spc = service_provider_config(BASE, true, false);
        assert_eq!(spc["schemas"][0], SERVICE_PROVIDER_CONFIG_SCHEMA);
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(
            spc["bulk"],
            json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576})
        );
        assert_eq!(
            spc["filter"],
            json!({"supported": true, "maxResults": 1000})
        );
        assert_eq!(spc["changePassword"]["supported"], false);
        assert_eq!(spc["sort"]["supported"], true);
        assert_eq!(spc["etag"]["supported"], true);
        assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert_eq!(
            spc["meta"]["location"],
            "https://scim.example.com/scim/v2/ServiceProviderConfig"
        );
        let open = service_provider_config(BASE, false, false);
        assert_eq!(open["authenticationSchemes"], json!([]));
        let basic = service_provider_config(BASE, false, true);
        assert_eq!(basic["authenticationSchemes"][0]["type"], "httpbasic");
    }

    #[test]
    fn resource_types_documents() {
        let rts = resource_types(BASE);
        assert_eq!(rts.len(), 2);
        let user = resource_type(BASE, "user").unwrap();
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schema"], USER_SCHEMA);
        assert_eq!(
            user["schemaExtensions"][0]["schema"],
            ENTERPRISE_USER_SCHEMA
        );
        assert_eq!(
            user["meta"]["location"],
            "https://scim.example.com/scim/v2/ResourceTypes/User"
        );
        assert_eq!(
            resource_type(BASE, "Group").unwrap()["schema"],
            GROUP_SCHEMA
        );
        assert!(resource_type(BASE, "Device").is_none());
    }

    #[test]
    fn schema_documents() {
        let user = schema(BASE, USER_SCHEMA).unwrap();
        let names = attr_names(&user);
        for n in [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "addresses",
            "groups",
            "externalId",
        ] {
            assert!(names.iter().any(|x| x == n), "missing {n}");
        }
        let name = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "name")
            .unwrap();
        assert_eq!(name["subAttributes"].as_array().unwrap().len(), 6);
        let user_name = &user["attributes"][0];
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["caseExact"], false);
        let password = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "password")
            .unwrap();
        assert_eq!(password["returned"], "never");
        assert_eq!(
            user["meta"]["location"],
            format!("https://scim.example.com/scim/v2/Schemas/{USER_SCHEMA}")
        );
        assert_eq!(
            attr_names(&schema(BASE, GROUP_SCHEMA).unwrap())[..2],
            ["displayName", "members"]
        );
        let ent = schema(BASE, &ENTERPRISE_USER_SCHEMA.to_uppercase()).unwrap();
        assert!(attr_names(&ent).contains(&"employeeNumber".to_owned()));
        assert!(schema(BASE, "urn:nope").is_none());
        assert_eq!(schemas(BASE).len(), 3);
    }
}
