//! The OpenAPI document as a client author reads it: what a validator requires (a description on every
//! response, unique operation ids, declared tags, path parameters that are in the path) and what renkei
//! promises on top (every authenticated operation documents 401 and 403 with the error body, every body
//! its 400/413/415/422, every operation 500 and 503). `.ci/run` also runs openapi-spec-validator on it.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

fn document() -> Value {
    serde_json::to_value(renkei_server::http::openapi_document()).expect("the document serialises")
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), op));
        }
    }
    out
}

#[test]
fn every_response_is_described_and_every_operation_named_once() {
    let doc = document();
    let ops = operations(&doc);
    assert!(ops.len() > 60, "{} operations", ops.len());
    let mut ids: HashMap<&str, String> = HashMap::new();
    for (method, path, op) in &ops {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        if let Some(other) = ids.insert(id, format!("{method} {path}")) {
            panic!("operationId {id} used by {other} and {method} {path}");
        }
        for (status, response) in op["responses"].as_object().expect("responses") {
            let described = response["description"].as_str().is_some_and(|d| !d.trim().is_empty());
            assert!(described, "{method} {path} {status}: no description");
        }
    }
}

#[test]
fn parameters_are_where_they_are_sent_and_tags_are_declared() {
    let doc = document();
    let declared: BTreeSet<&str> =
        doc["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().expect("name");
            match p["in"].as_str() {
                Some("path") => {
                    assert!(path.contains(&format!("{{{name}}}")), "{method} {path}: {name} is not in the path")
                }
                Some("query") => assert!(!path.contains(&format!("{{{name}}}")), "{method} {path}: {name}"),
                other => panic!("{method} {path}: {name} in {other:?}"),
            }
        }
        for tag in op["tags"].as_array().into_iter().flatten() {
            assert!(declared.contains(tag.as_str().expect("tag")), "{method} {path}: tag {tag} undeclared");
        }
    }
}

#[test]
fn every_failure_a_client_can_meet_is_documented_with_the_error_body() {
    let doc = document();
    let error_body = |op: &Value, status: &str| {
        op["responses"][status]["content"]["application/json"]["schema"]["$ref"].as_str()
            == Some("#/components/schemas/ErrorBody")
    };
    for (method, path, op) in operations(&doc) {
        let mut needed = vec!["500", "503"];
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            needed.extend(["401", "403"]);
            let schemes = op["security"].to_string();
            assert!(schemes.contains("\"bearer\"") && schemes.contains("\"cookie\""), "{method} {path}: {schemes}");
        }
        if op.get("requestBody").is_some() {
            needed.extend(["400", "413", "415", "422"]);
        }
        for status in needed {
            assert!(error_body(op, status), "{method} {path}: {status} is not documented with ErrorBody");
        }
    }
}
