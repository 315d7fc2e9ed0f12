//! The one way a service declares its HTTP routes (docs/api.md "OpenAPI documents").
//!
//! A service's `routes.rs` holds ONE constant table of [`Route`]s, written with [`route!`]:
//! method, path, handler, a one-line summary and, where known, the request and response
//! types (anything deriving `utoipa::ToSchema`). The same table
//!
//! - registers the actix routes ([`register`]): one resource per path, in table order (so a
//!   fixed path listed before a `{id}` path with the same prefix wins), whose other methods
//!   answer the JSON 405 `method_not_allowed`;
//! - builds the service's OpenAPI 3.1 document ([`document`]), served by the route the table
//!   marks with [`Route::openapi`].
//!
//! Because the table is the only registration path, a served route cannot be missing from the
//! document; `zimmer_testkit::openapi` checks that no service registers a route any other way.
//! Internal routes (`/internal/...`, never routed by the gateway) are in the same table and
//! the same document, tagged `internal` and secured by `X-Internal-Token`: one document per
//! service describes everything that service answers.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, http::StatusCode, web};
use utoipa::{
    IntoParams, ToSchema,
    openapi::{
        ArrayBuilder, ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, ObjectBuilder,
        OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required, ResponseBuilder, Schema, Type,
        extensions::Extensions,
        path::{OperationBuilder, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        },
    },
};

use crate::ApiError;

#[doc(hidden)]
pub use actix_web as __actix_web;

/// The methods a table may serve.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GET => "GET",
            Self::POST => "POST",
            Self::PUT => "PUT",
            Self::PATCH => "PATCH",
            Self::DELETE => "DELETE",
        }
    }

    fn http(self) -> HttpMethod {
        match self {
            Self::GET => HttpMethod::Get,
            Self::POST => HttpMethod::Post,
            Self::PUT => HttpMethod::Put,
            Self::PATCH => HttpMethod::Patch,
            Self::DELETE => HttpMethod::Delete,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call a route, for the document (the handler's extractor is what enforces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anyone (login, the catalogue, the Zarinpal callback).
    Anyone,
    /// `Authorization: Bearer <access token>` of a user.
    User,
    /// An automation vendor's `X-Zimmer-Service-Token`.
    Vendor,
    /// Another service's `X-Internal-Token` (`/internal/...`; the gateway never routes these).
    Internal,
}

/// Puts a type's schema (and the schemas it refers to) into `components` and answers a
/// reference to it.
pub type SchemaFn = fn(&mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema>;

fn schema_ref<T: ToSchema>(components: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    let name = component_name::<T>();
    components.push((name.clone(), T::schema()));
    T::schemas(components);
    RefOr::Ref(Ref::from_schema_name(name))
}

/// utoipa names a generic type by its bare name (`WindowPage`), so two lists in one document
/// would overwrite each other's schema: a generic's name gains its arguments' type names
/// (`WindowPage_PaymentView`).
fn component_name<T: ToSchema>() -> String {
    let base = T::name().into_owned();
    let full = std::any::type_name::<T>();
    let Some((_, args)) = full.split_once('<') else {
        return base;
    };
    let args: Vec<&str> = args
        .split(['<', '>', ','])
        .map(|a| a.trim().rsplit("::").next().unwrap_or(a))
        .filter(|a| !a.is_empty())
        .collect();
    format!("{base}_{}", args.join("_"))
}

fn schema_list<T: ToSchema>(components: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    let item = schema_ref::<T>(components);
    RefOr::T(Schema::Array(ArrayBuilder::new().items(item).build()))
}

/// The query-string parameters of a type deriving `utoipa::IntoParams` (`in: query`).
pub type ParamsFn = fn() -> Vec<utoipa::openapi::path::Parameter>;

fn query_params<T: IntoParams>() -> Vec<utoipa::openapi::path::Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

/// How many query structs one route may read (support's lists: filters + `ListPaging`).
pub const MAX_QUERIES: usize = 3;

/// A request or response body of a route.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    pub schema: SchemaFn,
    /// The media types it may come as (one schema for all).
    pub content_types: &'static [&'static str],
    /// A request body the handler also accepts absent (or empty).
    pub optional: bool,
}

impl Body {
    /// `T`'s schema as one of these media types, required.
    const fn of<T: ToSchema>(content_types: &'static [&'static str]) -> Self {
        Self {
            schema: schema_ref::<T>,
            content_types,
            optional: false,
        }
    }
}

/// Extra, service-specific facts about a route (admin: the capability it needs). They add to
/// the route's operation in the document; `()` adds nothing.
pub trait RouteMeta: Copy + Send + Sync + 'static {
    fn document(&self, _extensions: &mut Extensions) {}
}

impl RouteMeta for () {}

/// `None`: nothing to add (admin: a route outside the staff guard).
impl<M: RouteMeta> RouteMeta for Option<M> {
    fn document(&self, extensions: &mut Extensions) {
        if let Some(m) = self {
            m.document(extensions);
        }
    }
}

/// One row of a service's route table. Build it with [`route!`] and the `const` methods below.
#[derive(Debug, Clone, Copy)]
pub struct Route<M = ()> {
    pub method: Method,
    /// The full actix pattern, as `HttpRequest::match_pattern` reports it.
    pub path: &'static str,
    /// One line for the document.
    pub summary: &'static str,
    pub caller: Caller,
    /// The query-string structs its handler reads ([`Route::query`]), in order.
    pub queries: [Option<ParamsFn>; MAX_QUERIES],
    pub request: Option<Body>,
    pub response: Option<Body>,
    /// The success status the response schema goes with.
    pub status: u16,
    /// This route answers the service's own document (its handler is ignored).
    pub openapi: bool,
    pub meta: M,
    /// Makes the actix route (method guard + handler); called once per worker.
    pub make: fn() -> actix_web::Route,
}

/// One table row: `route!(GET "/api/me" => account::me, "The caller's account")`. The
/// method is written once and used both for the actix guard and the document.
#[macro_export]
macro_rules! route {
    ($method:ident $path:literal => $handler:path, $summary:expr) => {
        $crate::routes::Route::new($crate::routes::Method::$method, $path, $summary, || {
            $crate::routes::__actix_web::web::method(
                $crate::routes::__actix_web::http::Method::$method,
            )
            .to($handler)
        })
    };
}

async fn unused_handler() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

impl Route<()> {
    pub const fn new(
        method: Method,
        path: &'static str,
        summary: &'static str,
        make: fn() -> actix_web::Route,
    ) -> Self {
        let caller = if starts_with(path, "/internal/") {
            Caller::Internal
        } else {
            Caller::User
        };
        Self {
            method,
            path,
            summary,
            caller,
            queries: [None; MAX_QUERIES],
            request: None,
            response: None,
            status: 200,
            openapi: false,
            meta: (),
            make,
        }
    }

    /// `GET path`: the service's OpenAPI document, built from `table` itself by [`register`].
    pub const fn openapi_document(path: &'static str) -> Self {
        let mut r = Self::new(
            Method::GET,
            path,
            "This document (OpenAPI 3.1), generated from the route table",
            || web::get().to(unused_handler),
        );
        r.openapi = true;
        r.caller = Caller::Anyone;
        r
    }
}

impl<M: Copy> Route<M> {
    /// The service-specific facts of this route.
    pub const fn meta<N: Copy>(self, meta: N) -> Route<N> {
        Route {
            method: self.method,
            path: self.path,
            summary: self.summary,
            caller: self.caller,
            queries: self.queries,
            request: self.request,
            response: self.response,
            status: self.status,
            openapi: self.openapi,
            meta,
            make: self.make,
        }
    }

    /// Who may call it (default: a user with a Bearer token; `/internal/` paths: a service).
    pub const fn caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// Anyone may call it.
    pub const fn public(self) -> Self {
        self.caller(Caller::Anyone)
    }

    /// A query-string struct its handler reads (`web::Query<T>`); call it once per struct when
    /// the handler reads several (a list's filters and its paging), each adds its parameters.
    pub const fn query<T: IntoParams>(mut self) -> Self {
        let mut i = 0;
        while i < MAX_QUERIES {
            if self.queries[i].is_none() {
                self.queries[i] = Some(query_params::<T>);
                return self;
            }
            i += 1;
        }
        panic!("a route reads at most MAX_QUERIES query structs");
    }

    /// Its JSON request body.
    pub const fn body<T: ToSchema>(mut self) -> Self {
        self.request = Some(Body::of::<T>(&["application/json"]));
        self
    }

    /// Its JSON request body, which may also be absent (or empty).
    pub const fn optional_body<T: ToSchema>(mut self) -> Self {
        self.request = Some(Body {
            optional: true,
            ..Body::of::<T>(&["application/json"])
        });
        self
    }

    /// Its request body, as JSON or as `multipart/form-data` with the same fields (and a file).
    pub const fn json_or_form<T: ToSchema>(mut self) -> Self {
        self.request = Some(Body::of::<T>(&["application/json", "multipart/form-data"]));
        self
    }

    /// Its `multipart/form-data` request body (fields as in `T`).
    pub const fn multipart<T: ToSchema>(mut self) -> Self {
        self.request = Some(Body::of::<T>(&["multipart/form-data"]));
        self
    }

    /// Answers 200 with a `T` as JSON.
    pub const fn ok<T: ToSchema>(self) -> Self {
        self.answers::<T>(200)
    }

    /// Answers 201 with a `T` as JSON.
    pub const fn created<T: ToSchema>(self) -> Self {
        self.answers::<T>(201)
    }

    /// Answers `status` with a `T` as JSON.
    pub const fn answers<T: ToSchema>(mut self, status: u16) -> Self {
        self.response = Some(Body::of::<T>(&["application/json"]));
        self.status = status;
        self
    }

    /// Answers 200 with a bare JSON array of `T`.
    pub const fn list<T: ToSchema>(mut self) -> Self {
        self.response = Some(Body {
            schema: schema_list::<T>,
            content_types: &["application/json"],
            optional: false,
        });
        self.status = 200;
        self
    }

    /// Answers `status` without a body schema (204, 202, a redirect, a stream).
    pub const fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Answers `content_type` (an SSE stream, a file) whose body `T` describes.
    pub const fn answers_as<T: ToSchema>(mut self, content_types: &'static [&'static str]) -> Self {
        self.response = Some(Body::of::<T>(content_types));
        self
    }
}

const fn starts_with(s: &str, prefix: &str) -> bool {
    let (s, p) = (s.as_bytes(), prefix.as_bytes());
    if s.len() < p.len() {
        return false;
    }
    let mut i = 0;
    while i < p.len() {
        if s[i] != p[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The title and description of a service's document.
#[derive(Debug, Clone, Copy)]
pub struct DocInfo {
    /// e.g. "Zimmer auth API".
    pub title: &'static str,
    pub description: &'static str,
}

/// Registers every route of `table` on `cfg` (see the module comment); the route marked
/// [`Route::openapi_document`] answers the document built from the same table.
pub fn register<M: RouteMeta>(cfg: &mut web::ServiceConfig, info: DocInfo, table: &[Route<M>]) {
    register_where(cfg, "", info, table, |_| true);
}

/// The rows of `table` under `prefix`, registered inside a scope mounted at `prefix` (admin's
/// `/api/admin`, behind its guard): the table keeps the full paths, registration strips
/// `prefix`. The document still describes the whole table.
pub fn register_under<M: RouteMeta>(
    cfg: &mut web::ServiceConfig,
    prefix: &str,
    info: DocInfo,
    table: &[Route<M>],
) {
    register_where(cfg, prefix, info, table, |path| path.starts_with(prefix));
}

/// The rows of `table` NOT under `prefix` (admin's internal API, outside its staff scope).
pub fn register_outside<M: RouteMeta>(
    cfg: &mut web::ServiceConfig,
    prefix: &str,
    info: DocInfo,
    table: &[Route<M>],
) {
    register_where(cfg, "", info, table, |path| !path.starts_with(prefix));
}

fn register_where<M: RouteMeta>(
    cfg: &mut web::ServiceConfig,
    prefix: &str,
    info: DocInfo,
    table: &[Route<M>],
    keep: impl Fn(&str) -> bool,
) {
    let mut doc: Option<web::Bytes> = None;
    // Paths in order of first appearance, each with its routes.
    let mut order: Vec<&'static str> = Vec::new();
    let mut by_path: BTreeMap<&'static str, Vec<actix_web::Route>> = BTreeMap::new();
    for r in table.iter().filter(|r| keep(r.path)) {
        let route = if r.openapi {
            let body = doc
                .get_or_insert_with(|| {
                    web::Bytes::from(serde_json::to_vec(&document(info, table)).unwrap_or_default())
                })
                .clone();
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            })
        } else {
            (r.make)()
        };
        if !by_path.contains_key(r.path) {
            order.push(r.path);
        }
        by_path.entry(r.path).or_default().push(route);
    }
    for path in order {
        let local = path.strip_prefix(prefix).unwrap_or(path);
        let mut resource = web::resource(local).default_service(web::to(method_not_allowed));
        for route in by_path.remove(path).unwrap_or_default() {
            resource = resource.route(route);
        }
        cfg.service(resource);
    }
}

/// A known path, another method: the JSON 405 (docs/api.md "Errors").
async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
    ))
}

/// The OpenAPI 3.1 document of `table`.
pub fn document<M: RouteMeta>(info: DocInfo, table: &[Route<M>]) -> OpenApi {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    let mut paths = Paths::new();
    for r in table {
        let mut op = OperationBuilder::new()
            .operation_id(Some(operation_id(r.method, r.path)))
            .summary(Some(r.summary))
            .tag(tag_of(r))
            .parameters(Some(parameters(r)));
        match r.caller {
            Caller::Anyone => {}
            Caller::User => {
                op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            }
            Caller::Vendor => {
                op = op.security(SecurityRequirement::new(
                    "service_token",
                    Vec::<String>::new(),
                ))
            }
            Caller::Internal => {
                op = op.security(SecurityRequirement::new(
                    "internal_token",
                    Vec::<String>::new(),
                ))
            }
        }
        if let Some(body) = r.request {
            let schema = (body.schema)(&mut schemas);
            let required = if body.optional {
                Required::False
            } else {
                Required::True
            };
            let mut rb = RequestBodyBuilder::new().required(Some(required));
            for ct in body.content_types {
                rb = rb.content(
                    *ct,
                    ContentBuilder::new().schema(Some(schema.clone())).build(),
                );
            }
            op = op.request_body(Some(rb.build()));
        }
        let mut ok = ResponseBuilder::new().description(status_text(r.status));
        if let Some(body) = r.response {
            let schema = (body.schema)(&mut schemas);
            for ct in body.content_types {
                ok = ok.content(
                    *ct,
                    ContentBuilder::new().schema(Some(schema.clone())).build(),
                );
            }
        } else if r.openapi {
            ok = ok.content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Object).build()))
                    .build(),
            );
        }
        op = op.response(r.status.to_string(), ok.build()).response(
            "default",
            RefOr::Ref(Ref::new("#/components/responses/Error")),
        );
        let mut ext = Extensions::default();
        r.meta.document(&mut ext);
        if !ext.is_empty() {
            op = op.extensions(Some(ext));
        }
        paths.add_path_operation(r.path, vec![r.method.http()], op.build());
    }
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .schema_from::<ErrorBody>()
        .schema_from::<FieldErrorBody>()
        .response(
            "Error",
            ResponseBuilder::new()
                .description("An error: `{detail, code}`; 422 adds `errors`, 5xx adds `request_id`")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        )
        .security_scheme(
            "service_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Zimmer-Service-Token"))),
        )
        .security_scheme(
            "internal_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Internal-Token"))),
        );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(info.title)
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(info.description))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// Problems of a table that the type system cannot see: a (method, path) twice, one schema
/// name for two different shapes. Each service's tests assert there are none.
pub fn table_problems<M: RouteMeta>(table: &[Route<M>]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    for r in table {
        if !seen.insert((r.method, r.path)) {
            problems.push(format!(
                "{} {} is in the table twice",
                r.method.as_str(),
                r.path
            ));
        }
        for body in [r.request, r.response].into_iter().flatten() {
            (body.schema)(&mut schemas);
        }
    }
    let mut by_name: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (name, schema) in schemas {
        let json = serde_json::to_value(&schema).unwrap_or_default();
        match by_name.get(&name) {
            Some(other) if *other != json => {
                problems.push(format!("schema name {name} is used by two different types"));
            }
            _ => {
                by_name.insert(name, json);
            }
        }
    }
    problems
}

fn tag_of<M>(r: &Route<M>) -> String {
    if r.caller == Caller::Internal {
        return "internal".into();
    }
    // "/api/auth/2fa/status" → "auth"; "/api/user/payments" → "user"; "/.well-known/..."
    let mut segs = r.path.split('/').filter(|s| !s.is_empty());
    match (segs.next(), segs.next()) {
        (Some("api"), Some(s)) => s.to_owned(),
        (Some(s), _) => s.trim_start_matches('.').to_owned(),
        _ => "api".into(),
    }
}

fn operation_id(method: Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            seg.chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

/// The path parameters, then the query parameters of each query struct (a name two structs
/// share is listed once, as the first declares it).
fn parameters<M>(r: &Route<M>) -> Vec<utoipa::openapi::path::Parameter> {
    let mut params = path_parameters(r.path);
    for q in r.queries.iter().flatten() {
        for p in q() {
            if !params
                .iter()
                .any(|o| o.name == p.name && o.parameter_in == p.parameter_in)
            {
                params.push(p);
            }
        }
    }
    params
}

/// `{name}` segments; ids are integers except the few string keys.
fn path_parameters(path: &str) -> Vec<utoipa::openapi::path::Parameter> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let ty = if name == "id" || name.ends_with("_id") {
                Type::Integer
            } else {
                Type::String
            };
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(ty).build()))
                .build()
        })
        .collect()
}

fn status_text(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("OK")
}

/// Every error answer (crates/http/src/error.rs).
#[derive(ToSchema)]
#[schema(as = ErrorBody)]
#[allow(dead_code)]
struct ErrorBody {
    /// A message for a person.
    detail: String,
    /// A stable machine code.
    code: String,
    /// 422 only: what is wrong with which field.
    errors: Option<Vec<FieldErrorBody>>,
    /// 5xx only.
    request_id: Option<String>,
}

#[derive(ToSchema)]
#[schema(as = FieldErrorBody)]
#[allow(dead_code)]
struct FieldErrorBody {
    field: String,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Window, WindowPage};

    #[test]
    fn generic_schemas_are_named_by_their_arguments() {
        assert_eq!(component_name::<Window>(), "Window");
        assert_eq!(component_name::<WindowPage<Window>>(), "WindowPage_Window");
        let mut components = Vec::new();
        let RefOr::Ref(r) = schema_ref::<WindowPage<Window>>(&mut components) else {
            panic!("a reference");
        };
        assert_eq!(r.ref_location, "#/components/schemas/WindowPage_Window");
        assert!(components.iter().any(|(n, _)| n == "Window"));
    }
}
