//! The contract as the source of truth: `docs/upn-api.openapi.yaml` is checked against its own
//! examples, against the client's serialized requests (`upn_core::upn::wire`), and against the
//! simulator's real responses over loopback (`upn_sim`, with its own wire types). A field renamed
//! on either side fails here.
//!
//! The validator below covers the OpenAPI 3.0 schema keywords the spec uses and refuses any
//! other keyword, so a schema rule is never silently skipped.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use upn_core::upn::wire::{ImageQuery, PodSubmission, WireGpsFix};
use upn_e2e::sim;
use upn_sim::{SimConfig, SimHandle};

const SPEC: &str = include_str!("../../docs/upn-api.openapi.yaml");

fn spec() -> Value {
    serde_yaml::from_str(SPEC).expect("the spec is YAML")
}

// ---------------------------------------------------------------------------------------------
// A validator for the schema subset of OpenAPI 3.0 the spec uses.
// ---------------------------------------------------------------------------------------------

/// Keywords that only document; every other keyword must be checked below.
const ANNOTATIONS: [&str; 4] = ["description", "example", "default", "x-extensible-enum"];

/// The problems of `value` against `schema` (resolving `$ref` in `spec`), each with its JSON path.
fn problems(spec: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(spec, schema, value, "$", &mut out);
    out
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            resolve(spec, spec.pointer(pointer).expect("$ref resolves"))
        }
        None => schema,
    }
}

fn check(spec: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    let map = schema.as_object().expect("a schema is an object");
    if value.is_null() && map.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    for (keyword, rule) in map {
        let ok = match keyword.as_str() {
            "type" => type_matches(rule.as_str().expect("type is text"), value),
            "nullable" | "format" | "properties" | "items" => true, // checked below
            "required" => {
                for name in rule.as_array().expect("required is a list") {
                    let name = name.as_str().expect("field name");
                    if value.get(name).is_none() {
                        out.push(format!("{at}: missing required `{name}`"));
                    }
                }
                true
            }
            "additionalProperties" => {
                assert_eq!(rule, &Value::Bool(false), "only `false` is used");
                let known = map.get("properties").and_then(Value::as_object);
                for name in value.as_object().map(|o| o.keys()).into_iter().flatten() {
                    if !known.is_some_and(|k| k.contains_key(name)) {
                        out.push(format!("{at}: unknown field `{name}`"));
                    }
                }
                true
            }
            "enum" => rule.as_array().expect("enum list").contains(value),
            "pattern" => value.as_str().is_none_or(|s| {
                regex::Regex::new(rule.as_str().expect("pattern"))
                    .expect("the pattern compiles")
                    .is_match(s)
            }),
            "minLength" => value
                .as_str()
                .is_none_or(|s| s.chars().count() as u64 >= rule.as_u64().expect("n")),
            "minimum" => value
                .as_f64()
                .is_none_or(|n| n >= rule.as_f64().expect("n")),
            "maximum" => value
                .as_f64()
                .is_none_or(|n| n <= rule.as_f64().expect("n")),
            k if ANNOTATIONS.contains(&k) => true,
            other => panic!("the validator does not know `{other}` (at {at}): add it"),
        };
        if !ok {
            out.push(format!("{at}: fails `{keyword}: {rule}` with {value}"));
        }
    }
    if let Some(format) = map.get("format").and_then(Value::as_str) {
        if !format_matches(format, value) {
            out.push(format!("{at}: not a valid `{format}`: {value}"));
        }
    }
    if let (Some(props), Some(object)) = (map.get("properties"), value.as_object()) {
        for (name, sub) in props.as_object().expect("properties map") {
            if let Some(v) = object.get(name) {
                check(spec, sub, v, &format!("{at}.{name}"), out);
            }
        }
    }
    if let (Some(items), Some(list)) = (map.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            check(spec, items, v, &format!("{at}[{i}]"), out);
        }
    }
}

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        other => panic!("unknown type {other}"),
    }
}

fn format_matches(format: &str, value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        // Numeric formats: the type check covers them (JSON has no int64/double distinction).
        return matches!(format, "int64" | "double");
    };
    match format {
        "date-time" => DateTime::parse_from_rfc3339(text).is_ok(),
        "date" => NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
        "byte" => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).is_ok(),
        "binary" => true,
        other => panic!("unknown format {other}"),
    }
}

fn schema_named(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn assert_valid(spec: &Value, schema: &Value, value: &Value, what: &str) {
    let found = problems(spec, schema, value);
    assert!(
        found.is_empty(),
        "{what} does not match the spec: {found:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// (a) The spec's own examples
// ---------------------------------------------------------------------------------------------

/// Every example in the spec (schema, parameter, header or media-type example) with its schema.
fn examples(spec: &Value) -> Vec<(String, Value, Value)> {
    fn walk(node: &Value, at: String, out: &mut Vec<(String, Value, Value)>) {
        let Some(map) = node.as_object() else {
            if let Some(list) = node.as_array() {
                for (i, v) in list.iter().enumerate() {
                    walk(v, format!("{at}[{i}]"), out);
                }
            }
            return;
        };
        let is_schema = map.contains_key("type") || map.contains_key("$ref");
        if let Some(schema) = map.get("schema") {
            if let Some(example) = map.get("example") {
                out.push((at.clone(), schema.clone(), example.clone()));
            }
            for (name, ex) in map
                .get("examples")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let value = ex.get("value").expect("an examples entry has a value");
                out.push((
                    format!("{at}.examples.{name}"),
                    schema.clone(),
                    value.clone(),
                ));
            }
        } else if is_schema {
            if let Some(example) = map.get("example") {
                out.push((at.clone(), node.clone(), example.clone()));
            }
        }
        for (key, child) in map {
            if key != "example" && key != "examples" {
                walk(child, format!("{at}.{key}"), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(spec, "spec".into(), &mut out);
    out
}

#[test]
fn every_example_in_the_spec_matches_its_schema() {
    let spec = spec();
    let all = examples(&spec);
    assert!(all.len() > 40, "only {} examples found", all.len());
    let mut bad = Vec::new();
    for (at, schema, example) in &all {
        for p in problems(&spec, schema, example) {
            bad.push(format!("{at}: {p}"));
        }
    }
    assert!(bad.is_empty(), "examples that break their schema: {bad:#?}");
}

#[test]
fn the_validator_catches_what_it_should() {
    let spec = spec();
    let receipt = schema_named("PodReceipt");
    let good = json!({
        "server_time": "2025-03-14T10:21:09Z", "barcode": "B1", "pod_reference": "P",
        "received_at": "2025-03-14T10:21:09Z", "duplicate": false,
    });
    assert_valid(&spec, &receipt, &good, "a minimal receipt");
    let mut no_field = good.clone();
    no_field.as_object_mut().unwrap().remove("pod_reference");
    assert!(!problems(&spec, &receipt, &no_field).is_empty());
    let mut bad_time = good.clone();
    bad_time["received_at"] = json!("yesterday");
    assert!(!problems(&spec, &receipt, &bad_time).is_empty());
    let mut bad_hash = good;
    bad_hash["pod_sha256"] = json!("ABC");
    assert!(!problems(&spec, &receipt, &bad_hash).is_empty());
}

// ---------------------------------------------------------------------------------------------
// (b) The client's serialized requests
// ---------------------------------------------------------------------------------------------

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("instant")
}

#[test]
fn the_clients_pod_submission_matches_the_spec() {
    let spec = spec();
    let schema = schema_named("PodSubmission");
    let minimal = PodSubmission {
        signed_by: "J. Whitaker".into(),
        signed_at: at("2025-03-14T10:20:00Z"),
        clock_offset_ms: None,
        gps: None,
        signature_png_base64: "iVBORw0KGgo=".into(),
        image_count: 0,
        pod_sha256: None,
    };
    let full = PodSubmission {
        clock_offset_ms: Some(-1840),
        gps: Some(WireGpsFix {
            lat: 53.67415,
            lon: -1.49108,
            accuracy_m: 8.0,
            fix_at: at("2025-03-14T10:19:58.250Z"),
        }),
        image_count: 2,
        pod_sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        ..minimal.clone()
    };
    for pod in [minimal, full] {
        let value = serde_json::to_value(&pod).expect("serializes");
        assert_valid(&spec, &schema, &value, "the client's PodSubmission");
    }
}

#[test]
fn the_clients_image_query_matches_the_upload_parameters() {
    let spec = spec();
    let query = ImageQuery {
        kind: "leave_safe".into(),
        captured_at: at("2025-03-14T10:03:52Z"),
        lat: Some(53.67412),
        lon: Some(-1.49115),
        accuracy_m: Some(6.5),
    };
    let value = serde_json::to_value(&query).expect("serializes");
    assert_valid(&spec, &schema_named("ImageQuery"), &value, "ImageQuery");
    // Each field is a query parameter of the upload with the same schema.
    let op = &spec["paths"]["/v1/depots/{depot}/consignments/{barcode}/images"]["post"];
    let params: Vec<&Value> = op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| resolve(&spec, p))
        .filter(|p| p["in"] == "query")
        .collect();
    let names: BTreeSet<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
    let fields: BTreeSet<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names, fields,
        "the upload's query parameters are ImageQuery's fields"
    );
    for p in params {
        let name = p["name"].as_str().unwrap();
        assert_valid(&spec, &p["schema"], &value[name], name);
    }
}

// ---------------------------------------------------------------------------------------------
// (c) The simulator's real responses, and (d) what it refuses
// ---------------------------------------------------------------------------------------------

/// One request's outcome: status, server-time header present, JSON body.
struct Answer {
    status: u16,
    server_time: bool,
    body: Value,
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    rt: tokio::runtime::Runtime,
}

impl Api {
    fn new(sim: &SimHandle) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("{}/v1/depots", sim.endpoint()),
            key: sim.api_key(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.rt.block_on(async {
            let response = request.send().await.expect("the simulator answers");
            let status = response.status().as_u16();
            let server_time = response.headers().contains_key("X-UPN-Server-Time");
            let bytes = response.bytes().await.expect("body");
            let body = serde_json::from_slice(&bytes).expect("a JSON body");
            Answer {
                status,
                server_time,
                body,
            }
        })
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.base);
        self.send(
            self.http
                .get(url)
                .query(query)
                .header("X-UPN-Api-Key", &self.key),
        )
    }

    fn pod(&self, barcode: &str, key: &str, body: &Value) -> Answer {
        let url = format!("{}/042/consignments/{barcode}/pod", self.base);
        let request = self.http.post(url).header("X-UPN-Api-Key", &self.key);
        self.send(request.header("Idempotency-Key", key).json(body))
    }

    fn image(&self, barcode: &str, key: &str, query: &[(&str, &str)], jpeg: &[u8]) -> Answer {
        let url = format!("{}/042/consignments/{barcode}/images", self.base);
        let request = self
            .http
            .post(url)
            .query(query)
            .header("X-UPN-Api-Key", &self.key);
        let request = request
            .header("Idempotency-Key", key)
            .header("X-Content-SHA256", upn_core::digest::sha256_hex(jpeg))
            .header("Content-Type", "image/jpeg");
        self.send(request.body(jpeg.to_vec()))
    }
}

/// Checks an answer against the spec's response for `template` / `method` / its status.
fn conforms(spec: &Value, template: &str, method: &str, answer: &Answer, what: &str) {
    let op = &spec["paths"][template][method];
    let response = &op["responses"][answer.status.to_string()];
    assert!(
        !response.is_null(),
        "{what}: status {} is not listed for {method} {template}: {}",
        answer.status,
        answer.body
    );
    let response = resolve(spec, response);
    assert!(answer.server_time, "{what}: no X-UPN-Server-Time");
    let schema = &response["content"]["application/json"]["schema"];
    assert_valid(spec, schema, &answer.body, what);
}

const FEED: &str = "/v1/depots/{depot}/consignments";
const EVENTS: &str = "/v1/depots/{depot}/tracking-events";
const POD: &str = "/v1/depots/{depot}/consignments/{barcode}/pod";
const IMAGES: &str = "/v1/depots/{depot}/consignments/{barcode}/images";

fn pod_body() -> Value {
    json!({
        "signed_by": "J. Whitaker",
        "signed_at": "2025-03-14T10:20:00Z",
        "gps": {"lat": 53.6, "lon": -1.4, "accuracy_m": 8.0, "fix_at": "2025-03-14T10:19:58Z"},
        "signature_png_base64": "iVBORw0KGgo=",
        "image_count": 1,
        "pod_sha256": "ab".repeat(32),
    })
}

#[test]
fn the_simulators_answers_match_the_spec() {
    let spec = spec();
    let sim = sim(SimConfig {
        consignments: 4,
        ..SimConfig::default()
    });
    let api = Api::new(&sim);
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    sim.cancel(&barcodes[3], Some("Cancelled by sender"));

    let feed = api.get("/042/consignments", &[]);
    conforms(&spec, FEED, "get", &feed, "the full feed");
    assert_eq!(feed.status, 200);
    let delta = api.get("/042/consignments", &[("since", "v1")]);
    conforms(
        &spec,
        FEED,
        "get",
        &delta,
        "a delta feed with a cancellation",
    );
    assert_eq!(
        delta.body["cancellations"].as_array().map(Vec::len),
        Some(1)
    );
    conforms(
        &spec,
        FEED,
        "get",
        &api.get("/042/consignments", &[("since", "x")]),
        "bad since",
    );
    conforms(
        &spec,
        FEED,
        "get",
        &api.get("/999/consignments", &[]),
        "another depot",
    );

    let batch = api.get("/042/tracking-events", &[("max", "2")]);
    conforms(&spec, EVENTS, "get", &batch, "a tracking batch");
    assert_eq!(batch.body["events"].as_array().map(Vec::len), Some(2));
    let rest = api.get("/042/tracking-events", &[]);
    conforms(&spec, EVENTS, "get", &rest, "the rest");
    let empty = api.get("/042/tracking-events", &[]);
    conforms(&spec, EVENTS, "get", &empty, "an empty batch");
    assert_eq!(empty.body["batch_id"], Value::Null);
    for max in ["0", "5001", "lots"] {
        let refused = api.get("/042/tracking-events", &[("max", max)]);
        assert_eq!(refused.status, 400, "max={max}");
        conforms(&spec, EVENTS, "get", &refused, "a bad max");
    }

    let jpeg = upn_sim::samples::photo_jpeg(1, 64, 48);
    let query = [("kind", "goods"), ("captured_at", "2025-03-14T10:03:52Z")];
    let early = api.image(&barcodes[0], "i1", &query, &jpeg);
    assert_eq!(early.status, 409);
    conforms(&spec, IMAGES, "post", &early, "an image before its POD");

    let stored = api.pod(&barcodes[0], "p1", &pod_body());
    assert_eq!(stored.status, 201, "{}", stored.body);
    conforms(&spec, POD, "post", &stored, "a POD receipt");
    assert_eq!(
        stored.body["pod_sha256"],
        pod_body()["pod_sha256"],
        "echoed"
    );
    let replay = api.pod(&barcodes[0], "p1", &pod_body());
    assert_eq!(
        (replay.status, &replay.body["duplicate"]),
        (200, &json!(true))
    );
    conforms(&spec, POD, "post", &replay, "a POD replay");
    let other = api.pod(&barcodes[0], "p2", &pod_body());
    assert_eq!(other.status, 409);
    conforms(&spec, POD, "post", &other, "already delivered");
    conforms(
        &spec,
        POD,
        "post",
        &api.pod("UPN0429999999", "p3", &pod_body()),
        "unknown",
    );
    conforms(
        &spec,
        POD,
        "post",
        &api.pod(&barcodes[3], "p4", &pod_body()),
        "cancelled",
    );

    let image = api.image(&barcodes[0], "i1", &query, &jpeg);
    assert_eq!(image.status, 201, "{}", image.body);
    conforms(&spec, IMAGES, "post", &image, "an image receipt");
    let again = api.image(&barcodes[0], "i1", &query, &jpeg);
    assert_eq!(again.status, 200);
    conforms(&spec, IMAGES, "post", &again, "an image replay");
    let big = vec![0u8; (upn_sim::wire::MAX_IMAGE_BYTES + 1) as usize];
    let too_large = api.image(&barcodes[0], "i2", &query, &big);
    assert_eq!(too_large.status, 413);
    conforms(&spec, IMAGES, "post", &too_large, "a too large image");

    sim.set_access(true, false, false);
    let no_tracking = api.get("/042/tracking-events", &[]);
    assert_eq!(no_tracking.status, 403);
    conforms(&spec, EVENTS, "get", &no_tracking, "tracking disabled");
    let no_images = api.image(&barcodes[0], "i3", &query, &jpeg);
    assert_eq!(no_images.status, 403);
    conforms(&spec, IMAGES, "post", &no_images, "images disabled");

    let wrong_key = Api {
        key: "wrong".into(),
        ..Api::new(&sim)
    };
    let unauthorized = wrong_key.get("/042/consignments", &[]);
    assert_eq!(unauthorized.status, 401);
    conforms(&spec, FEED, "get", &unauthorized, "a wrong key");
}

/// (d) A field renamed or added on the client's side is refused, never silently dropped.
#[test]
fn the_simulator_refuses_what_the_spec_does_not_define() {
    let spec = spec();
    let sim = sim(SimConfig {
        consignments: 2,
        ..SimConfig::default()
    });
    let api = Api::new(&sim);
    let barcode = sim.consignments()[0].barcode.clone();

    let mut renamed = pod_body();
    let name = renamed
        .as_object_mut()
        .unwrap()
        .remove("signed_by")
        .unwrap();
    renamed["signer"] = name;
    let extra = {
        let mut body = pod_body();
        body["signature_sha256"] = json!("ab".repeat(32));
        body
    };
    let gps_extra = {
        let mut body = pod_body();
        body["gps"]["altitude_m"] = json!(12.0);
        body
    };
    let bad_hash = {
        let mut body = pod_body();
        body["pod_sha256"] = json!("AB".repeat(32));
        body
    };
    for (what, body, field) in [
        ("a renamed field", renamed, "signer"),
        ("an extra field", extra, "signature_sha256"),
        ("an extra gps field", gps_extra, "altitude_m"),
        ("an upper-case pod_sha256", bad_hash, "pod_sha256"),
    ] {
        let answer = api.pod(&barcode, "k", &body);
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        conforms(&spec, POD, "post", &answer, what);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "{what}: the message names it: {message}"
        );
    }
    assert!(sim.received().pods.is_empty(), "nothing was stored");

    let jpeg = upn_sim::samples::photo_jpeg(1, 32, 32);
    let query = [
        ("kind", "goods"),
        ("captured_at", "2025-03-14T10:03:52Z"),
        ("accuracy", "6.5"),
    ];
    let answer = api.image(&barcode, "i", &query, &jpeg);
    assert_eq!(answer.status, 400, "{}", answer.body);
    conforms(&spec, IMAGES, "post", &answer, "an unknown query parameter");
    let answer = api.get("/042/consignments", &[("sinse", "v1")]);
    assert_eq!(answer.status, 400, "{}", answer.body);
}

/// The POD's `pod_sha256` is stored with the POD (what the simulator received), and absent from
/// the receipt when the submission had none.
#[test]
fn pod_sha256_is_stored_with_the_pod() {
    let sim = sim(SimConfig {
        consignments: 2,
        ..SimConfig::default()
    });
    let api = Api::new(&sim);
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    let mut without = pod_body();
    without.as_object_mut().unwrap().remove("pod_sha256");
    let answer = api.pod(&barcodes[0], "k0", &without);
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(
        answer.body.get("pod_sha256").is_none(),
        "absent when not sent"
    );
    let answer = api.pod(&barcodes[1], "k1", &pod_body());
    assert_eq!(answer.status, 201, "{}", answer.body);
    let pods = sim.received().pods;
    assert_eq!(pods[0].pod_sha256, None);
    assert_eq!(pods[1].pod_sha256, Some("ab".repeat(32)));
}
