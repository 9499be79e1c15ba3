//! `GET /v1/openapi.json` is generated from the handlers (utoipa): the real router serves
//! exactly the documented operations, the answers of real requests have documented status
//! codes and match the documented schemas, and the document is well-formed OpenAPI 3.1.

use crate::api::{start, token};
use crate::support::env::*;
use crate::support::http::{self, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Method and path of every operation the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// Method and path of every route an axum router serves, read from its `Debug` form (axum
/// has no other way to list them): `RouteId(n): "/path"` in its node, and for each route id
/// the methods whose endpoint is not `None`.
fn served(router: &axum::Router<impl Clone>) -> BTreeSet<(String, String)> {
    let text = format!("{router:?}");
    // Only the path router: the fallback router holds the fallback's catch-all.
    let main = &text[..text.find("fallback_router:").unwrap()];
    let (routes, node) = main.split_at(main.find("node: Node").unwrap());
    // Each `RouteId(n)` with the text up to the next one.
    let by_id = |part: &str| -> Vec<(u64, String)> {
        part.split("RouteId(")
            .skip(1)
            .map(|chunk| {
                let (id, rest) = chunk.split_once(')').unwrap();
                (id.parse().unwrap(), rest.to_string())
            })
            .collect()
    };
    let paths: BTreeMap<u64, String> = by_id(node)
        .into_iter()
        .map(|(id, rest)| (id, rest.split('"').nth(1).unwrap().to_string()))
        .collect();
    assert!(!paths.is_empty(), "no routes read from:\n{text}");
    let mut out = BTreeSet::new();
    for (id, rest) in by_id(routes) {
        for m in METHODS {
            for lead in [format!("{{ {m}: "), format!(", {m}: ")] {
                if let Some(i) = rest.find(&lead)
                    && !rest[i + lead.len()..].starts_with("None")
                {
                    out.insert((m.to_uppercase(), paths[&id].clone()));
                }
            }
        }
    }
    assert!(!out.is_empty(), "no methods read from:\n{text}");
    out
}

/// The real router (as `serve` builds it) serves every documented operation and nothing
/// undocumented beside the workspace's pages; with `/metrics` open and behind the token.
#[tokio::test]
async fn the_router_serves_exactly_the_documented_operations() {
    for admin_only in [false, true] {
        let env = if admin_only {
            TestEnv::with_changes(&[("burst = 100\n", "burst = 100\nmetrics_admin_only = true\n")])
        } else {
            TestEnv::new()
        };
        let clock = nazorg::clock::FixedClock("2026-12-20T09:00:00Z".parse().unwrap());
        let app = env.app(std::sync::Arc::new(clock)).await;
        assert_eq!(app.config.api.metrics_admin_only, admin_only);
        let state = nazorg::api::ApiState::new(app);
        let all = served(&nazorg::api::router(state.clone()));
        let pages = served(&nazorg::web::router(state.clone()));
        let api: BTreeSet<_> = all.difference(&pages).cloned().collect();
        let doc = nazorg::api::openapi::document(admin_only);
        assert_eq!(api, documented(&doc), "metrics_admin_only = {admin_only}");
        // Not a vacuous comparison: the routes of every group are there.
        for (m, p) in [
            ("GET", "/v1/families"),
            ("PATCH", "/v1/families/{ref}"),
            ("POST", "/v1/families/{ref}/moves"),
            ("POST", "/v1/handovers/{id}/ack"),
            ("POST", "/v1/flags/{id}/resolve"),
            ("GET", "/v1/exports/{id}/{file}"),
            ("POST", "/v1/members/{id}/remove"),
            ("GET", "/metrics"),
            ("GET", "/v1/openapi.json"),
        ] {
            assert!(api.contains(&(m.into(), p.into())), "{m} {p}");
        }
        let metrics_secured = doc["paths"]["/metrics"]["get"]["security"].is_array();
        assert_eq!(metrics_secured, admin_only);
    }
}

/// The operation object the document gives for `method path`.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    op
}

/// Resolves `#/components/schemas/X`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            let s = &doc["components"]["schemas"][name];
            assert!(s.is_object(), "dangling {r}");
            resolve(doc, s)
        }
        None => schema,
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// A small structural check of `value` against an OpenAPI 3.1 (JSON Schema) `schema`:
/// types, required and unknown properties, items, enums, allOf/oneOf/anyOf. Problems are
/// collected with the place they were found at.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check(doc, s, value, at, problems);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array() {
            let fits = alts.iter().any(|s| {
                let mut p = Vec::new();
                check(doc, s, value, at, &mut p);
                p.is_empty()
            });
            if !fits {
                problems.push(format!("{at}: {value} fits none of {key}"));
            }
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
        problems.push(format!("{at}: {value} is not {types:?}"));
        return;
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {values:?}"));
    }
    if let (Some(obj), true) = (value.as_object(), types.contains(&"object")) {
        let props = schema["properties"].as_object();
        for req in schema["required"].as_array().into_iter().flatten() {
            let req = req.as_str().unwrap();
            if !obj.contains_key(req) {
                problems.push(format!("{at}: required property {req} is missing"));
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, v, &format!("{at}.{k}"), problems),
                None => match &schema["additionalProperties"] {
                    Value::Object(_) => check(
                        doc,
                        &schema["additionalProperties"],
                        v,
                        &format!("{at}.{k}"),
                        problems,
                    ),
                    // A composed (flattened) object's parts each name only their own.
                    _ if schema["allOf"].is_array() || props.is_none() => {}
                    Value::Bool(true) => {}
                    _ => problems.push(format!("{at}: property {k} is not documented")),
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"), problems);
        }
    }
}

/// Asserts that `r` answers with a status the document lists for the operation, and that a
/// JSON body matches the schema documented for that status.
fn conforms(doc: &Value, method: &str, path: &str, r: &Response) {
    let op = operation(doc, method, path);
    let status = r.status.to_string();
    let documented = &op["responses"][&status];
    assert!(
        documented.is_object(),
        "{method} {path} answered {status}, which is not documented (documented: {:?}): {}",
        op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        r.text()
    );
    let ctype = r.header("content-type").unwrap_or("");
    if ctype.starts_with("application/json") {
        let schema = &documented["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {path} {status}: a JSON body, no JSON schema documented"
        );
        let mut problems = Vec::new();
        check(doc, schema, &r.json(), "body", &mut problems);
        assert!(
            problems.is_empty(),
            "{method} {path} {status}: {problems:#?}\n{}",
            r.text()
        );
    } else if !r.body.is_empty() {
        let content = documented["content"].as_object();
        let base = ctype.split(';').next().unwrap_or("").trim();
        assert!(
            content.is_some_and(|c| c.keys().any(|k| k.starts_with(base))),
            "{method} {path} {status}: {ctype} is not documented"
        );
    }
}

fn send(
    api: std::net::SocketAddr,
    method: &str,
    path: &str,
    tok: &str,
    body: Option<&Value>,
) -> Response {
    match body {
        Some(b) => http::request(
            api,
            method,
            path,
            Some(tok),
            Some(("application/json", b.to_string().as_bytes())),
        ),
        None => http::request(api, method, path, Some(tok), None),
    }
}

/// Real requests, good and bad, over the running daemon: every answer's status is one the
/// document lists for its operation, and every JSON answer matches the documented schema.
#[test]
fn answers_have_documented_status_codes_and_schemas() {
    let env = TestEnv::new();
    let (_, admin) = token(&env, &["--admin"]);
    let (_, ams) = token(&env, &["--municipality", AMSTERDAM]);
    let (_, res) = token(&env, &["--researcher", "cohort2027"]);
    let api = start(&env);
    let a = api.addr;
    let doc = http::get(a, "/v1/openapi.json", None).json();
    let call = |method: &str, template: &str, path: &str, tok: &str, body: Option<&Value>| {
        let r = send(a, method, path, tok, body);
        conforms(&doc, method, template, &r);
        r
    };

    // Open routes.
    for p in ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"] {
        conforms(&doc, "GET", p, &http::get(a, p, None));
    }

    // Families.
    let r = call(
        "POST",
        "/v1/families",
        "/v1/families",
        &ams,
        Some(&family_body(AMSTERDAM, "standard", "2026-12-01", "OAPI")),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let fam = r.json();
    let f = fam["family"].as_str().unwrap().to_string();
    let c1 = fam["checkins"][1]["id"].as_str().unwrap().to_string();
    let mut bad = family_body(AMSTERDAM, "standard", "2026-12-01", "OAPI2");
    bad["plan"] = json!("no-such-plan");
    assert_eq!(
        call("POST", "/v1/families", "/v1/families", &ams, Some(&bad)).status,
        400
    );
    assert_eq!(
        call(
            "POST",
            "/v1/families",
            "/v1/families",
            &ams,
            Some(&family_body(ROTTERDAM, "standard", "2026-12-01", "OAPI3"))
        )
        .status,
        403
    );
    assert_eq!(
        call(
            "POST",
            "/v1/families",
            "/v1/families",
            &res,
            Some(&json!({}))
        )
        .status,
        404
    );
    let r = http::request(
        a,
        "POST",
        "/v1/families",
        Some(&ams),
        Some(("text/plain", b"{}")),
    );
    assert_eq!(r.status, 415);
    conforms(&doc, "POST", "/v1/families", &r);
    let big = vec![b' '; 300 * 1024];
    let r = http::request(
        a,
        "POST",
        "/v1/families",
        Some(&ams),
        Some(("application/json", &big)),
    );
    assert_eq!(r.status, 413);
    conforms(&doc, "POST", "/v1/families", &r);

    assert_eq!(
        call("GET", "/v1/families", "/v1/families", &ams, None).status,
        200
    );
    assert_eq!(
        call("GET", "/v1/families", "/v1/families?limit=many", &ams, None).status,
        400
    );
    let fr = "/v1/families/{ref}";
    assert_eq!(
        call("GET", fr, &format!("/v1/families/{f}"), &ams, None).status,
        200
    );
    assert_eq!(
        call("GET", fr, &format!("/v1/families/{f}"), &admin, None).status,
        200
    );
    assert_eq!(
        call("GET", fr, "/v1/families/F-23456789", &ams, None).status,
        404
    );
    assert_eq!(
        call(
            "PATCH",
            fr,
            &format!("/v1/families/{f}"),
            &ams,
            Some(&json!({"nonsense": 1}))
        )
        .status,
        400
    );
    let r = call(
        "PATCH",
        fr,
        &format!("/v1/families/{f}"),
        &ams,
        Some(&json!({"case_number": "ZAAK-1"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Check-ins.
    let due = "/v1/checkins/due";
    assert_eq!(
        call(
            "GET",
            due,
            "/v1/checkins/due?before=2027-01-31T00:00:00%2B01:00",
            &ams,
            None
        )
        .status,
        200
    );
    assert_eq!(
        call("GET", due, "/v1/checkins/due?before=tomorrow", &ams, None).status,
        400
    );
    let rec_path = format!("/v1/checkins/{c1}/record");
    let rt = "/v1/checkins/{id}/record";
    assert_eq!(
        call(
            "POST",
            rt,
            &rec_path,
            &ams,
            Some(&json!({"outcome": "reached"}))
        )
        .status,
        400
    );
    let rec = json!({"at": "2026-12-19T10:00:00+01:00", "outcome": "reached", "mode": "phone"});
    let r = call("POST", rt, &rec_path, &ams, Some(&rec));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(call("POST", rt, &rec_path, &ams, Some(&rec)).status, 409);
    assert_eq!(
        call(
            "POST",
            rt,
            "/v1/checkins/C-2345678923/record",
            &ams,
            Some(&rec)
        )
        .status,
        404
    );

    // Flags, handovers, moves.
    assert_eq!(
        call("GET", "/v1/flags", "/v1/flags", &ams, None).status,
        200
    );
    assert_eq!(
        call("GET", "/v1/flags", "/v1/flags?status=maybe", &ams, None).status,
        400
    );
    assert_eq!(
        call(
            "POST",
            "/v1/flags/{id}/ack",
            "/v1/flags/999999/ack",
            &ams,
            Some(&json!({"note": "n"}))
        )
        .status,
        404
    );
    let mv = "/v1/families/{ref}/moves";
    assert_eq!(
        call(
            "POST",
            mv,
            &format!("/v1/families/{f}/moves"),
            &ams,
            Some(&json!({"to": ROTTERDAM}))
        )
        .status,
        400
    );
    let r = call(
        "POST",
        mv,
        &format!("/v1/families/{f}/moves"),
        &ams,
        Some(&json!({"to": ROTTERDAM, "date": "2026-12-20"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let h = r.json()["handover"].as_str().unwrap().to_string();
    assert_eq!(
        call("GET", "/v1/handovers", "/v1/handovers", &ams, None).status,
        200
    );
    assert_eq!(
        call(
            "GET",
            "/v1/handovers",
            "/v1/handovers?status=pending",
            &admin,
            None
        )
        .status,
        200
    );
    let ack = "/v1/handovers/{id}/ack";
    assert_eq!(
        call(
            "POST",
            ack,
            &format!("/v1/handovers/{h}/ack"),
            &ams,
            Some(&json!({}))
        )
        .status,
        403
    );
    assert_eq!(
        call(
            "POST",
            ack,
            &format!("/v1/handovers/{h}/ack"),
            &admin,
            Some(&json!({}))
        )
        .status,
        400
    );
    let r = call(
        "POST",
        ack,
        &format!("/v1/handovers/{h}/ack"),
        &admin,
        Some(&json!({"municipality": ROTTERDAM, "by": "OAPI-ack"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // After the move the record names the handover: the whole record still matches.
    assert_eq!(
        call("GET", fr, &format!("/v1/families/{f}"), &admin, None).status,
        200
    );

    // Members.
    let r = call(
        "POST",
        "/v1/members",
        "/v1/members",
        &admin,
        Some(
            &json!({"municipality": AMSTERDAM, "email": "oapi@example.org", "name": "OAPI member"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let m = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            "POST",
            "/v1/members",
            "/v1/members",
            &admin,
            Some(&json!({"municipality": AMSTERDAM}))
        )
        .status,
        400
    );
    assert_eq!(
        call("GET", "/v1/members", "/v1/members", &admin, None).status,
        200
    );
    assert_eq!(
        call("GET", "/v1/members", "/v1/members", &ams, None).status,
        404
    );
    let rm = "/v1/members/{id}/remove";
    assert_eq!(
        call("POST", rm, &format!("/v1/members/{m}/remove"), &admin, None).status,
        200
    );

    // Closing and evaluating.
    let r = call(
        "POST",
        "/v1/families",
        "/v1/families",
        &ams,
        Some(&family_body(AMSTERDAM, "standard", "2026-12-01", "OAPI4")),
    );
    let g = r.json()["family"].as_str().unwrap().to_string();
    let close = "/v1/families/{ref}/close";
    assert_eq!(
        call(
            "POST",
            close,
            &format!("/v1/families/{g}/close"),
            &ams,
            Some(&json!({"reason": "no-such-reason"}))
        )
        .status,
        400
    );
    let r = call(
        "POST",
        close,
        &format!("/v1/families/{g}/close"),
        &ams,
        Some(
            &json!({"reason": "family_moved_abroad", "safety_improved": "yes", "professionals": 2}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let ev = "/v1/families/{ref}/evaluation";
    assert!(
        [200, 409].contains(
            &call(
                "POST",
                ev,
                &format!("/v1/families/{g}/evaluation"),
                &ams,
                Some(&json!({"safety_improved": "yes", "professionals": 2}))
            )
            .status
        )
    );

    // Exports: a team reaches none; a researcher's bad request is refused.
    assert_eq!(
        call("POST", "/v1/exports", "/v1/exports", &ams, Some(&json!({}))).status,
        404
    );
    assert_eq!(
        call(
            "POST",
            "/v1/exports",
            "/v1/exports",
            &res,
            Some(&json!({"k": "three"}))
        )
        .status,
        400
    );
    assert_eq!(
        call(
            "GET",
            "/v1/exports/{id}/{file}",
            "/v1/exports/X-2345678923/manifest.json",
            &res,
            None
        )
        .status,
        404
    );

    assert_eq!(
        http::get(a, "/v1/nothing", Some(&admin)).json()["error"]["code"],
        "no_route"
    );

    // Every operation behind the token says so, and answers 401 without one; the open ones
    // answer without.
    for (method, path) in documented(&doc) {
        let op = operation(&doc, &method, &path);
        let concrete = path
            .replace("{file}", "manifest.json")
            .replace("{ref}", &f)
            .replace("{id}", "C-2345678923");
        let body = (method != "GET").then(|| json!({}));
        let r = match &body {
            Some(b) => http::request(
                a,
                &method,
                &concrete,
                None,
                Some(("application/json", b.to_string().as_bytes())),
            ),
            None => http::get(a, &concrete, None),
        };
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(
            r.status == 401,
            secured,
            "{method} {path} without a token: {}",
            r.status
        );
        conforms(&doc, &method, &path, &r);
    }
}

/// The document is OpenAPI 3.1 that utoipa's own model reads back unchanged; every `$ref`
/// resolves, every path parameter is declared, operation ids are unique, every operation
/// documents a success and its error bodies.
#[test]
fn the_document_is_well_formed_openapi() {
    for admin_only in [false, true] {
        let doc = nazorg::api::openapi::document(admin_only);
        assert_eq!(doc["openapi"], "3.1.0");
        // A typed OpenAPI 3.1 model reads it, and resolves every parameter, body and
        // response with its schema.
        let spec = oas3::from_json(doc.to_string()).unwrap();
        let version = spec.validate_version().unwrap();
        assert_eq!((version.major, version.minor), (3, 1));
        let mut operations = 0;
        for (path, method, op) in spec.operations() {
            operations += 1;
            for p in &op.parameters {
                p.resolve(&spec)
                    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            }
            if let Some(body) = &op.request_body {
                let body = body.resolve(&spec).unwrap();
                for media in body.content.values() {
                    assert!(media.schema(&spec).unwrap().is_some(), "{method} {path}");
                }
            }
            for (status, r) in op.responses.iter().flatten() {
                let r = r
                    .resolve(&spec)
                    .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
                for media in r.content.values() {
                    media.schema(&spec).unwrap();
                }
            }
        }
        assert_eq!(operations, documented(&doc).len());
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");

        // Every $ref points at a component that exists.
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 20, "{all:?}");
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r}"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling {r}"
            );
        }

        let mut ids = BTreeSet::new();
        for (method, path) in documented(&doc) {
            let op = operation(&doc, &method, &path);
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
            assert!(
                op["summary"].as_str().is_some_and(|t| !t.is_empty()),
                "{method} {path}: no summary"
            );
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "{method} {path}");
                    p["name"].as_str().unwrap()
                })
                .collect();
            let templated: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(declared, templated, "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}: no success"
            );
            assert!(responses.contains_key("503"), "{method} {path}");
            for (status, resp) in responses {
                assert!(
                    resp["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}"
                );
                if status.starts_with('4') || status == "500" {
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path} {status}"
                    );
                }
            }
            if op["requestBody"].is_object() {
                assert!(
                    op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                    "{method} {path}"
                );
                assert!(
                    responses.contains_key("400")
                        && responses.contains_key("413")
                        && responses.contains_key("415"),
                    "{method} {path}"
                );
            }
            if op["security"].is_array() {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
                assert!(
                    responses.contains_key("401") && responses.contains_key("429"),
                    "{method} {path}"
                );
            }
        }
        assert_eq!(ids.len(), 23, "{ids:?}");
    }
}

/// A researcher's export over HTTP: the summary (whose schema is written out for
/// `crate::export`, which stays free of the HTTP layer) and the fetched files match the
/// document, and a refused export answers a documented 422.
#[tokio::test]
async fn exports_answer_as_documented() {
    let env = crate::export::export_env();
    crate::export::cohort(&env).await;
    let (_, res) = token(&env, &["--researcher", "cohort2027"]);
    let api = start(&env);
    let a = api.addr;
    let doc = http::get(a, "/v1/openapi.json", None).json();
    let r = http::post_json(a, "/v1/exports", Some(&res), &json!({"k": 3}));
    assert_eq!(r.status, 201, "{}", r.text());
    conforms(&doc, "POST", "/v1/exports", &r);
    let id = r.json()["export"].as_str().unwrap().to_string();
    for file in ["manifest.json", "followup.csv", "codebook.md"] {
        let r = http::get(a, &format!("/v1/exports/{id}/{file}"), Some(&res));
        assert_eq!(r.status, 200, "{file}");
        conforms(&doc, "GET", "/v1/exports/{id}/{file}", &r);
    }
    let r = http::post_json(a, "/v1/exports", Some(&res), &json!({"k": 500}));
    assert_eq!(r.status, 422, "{}", r.text());
    conforms(&doc, "POST", "/v1/exports", &r);
}
