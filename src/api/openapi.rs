//! `GET /v1/openapi.json`: an OpenAPI 3 description generated from [`super::ROUTES`], so
//! the description and the router cannot drift apart unnoticed (a test checks both ways).

use serde_json::{Map, Value, json};

fn error_schema() -> Value {
    json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}}}}})
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, auth) in super::ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "operationId": format!("{}{}", method.to_lowercase(), path.replace(['/', '{', '}', '.'], "_")),
            "responses": {
                "200": {"description": "OK"},
                "400": {"description": "invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "no valid token"},
                "404": {"description": "not found or not yours"},
                "429": {"description": "rate limited (see Retry-After)"}
            }
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if *method == "POST" || *method == "PATCH" {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        if *auth {
            op["security"] = json!([{"bearer": []}]);
        } else {
            op["security"] = json!([]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Nazorg", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Aftercare after domestic violence. TLS is terminated by a reverse proxy in front of the daemon."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": error_schema()}
        }
    })
}
