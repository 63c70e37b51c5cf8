//! The route table: which handler answers which request, on which listener.
//!
//! Every route is one entry of [`table`]: its listener, method and path template, its handler and
//! the type that `#[utoipa::path]` generates on that handler. The same entries build the two
//! routers (so a known path with another method is a `405` whose `Allow` lists exactly the
//! methods of the table) and the paths of `GET /openapi.json` (so the document cannot leave a
//! route out). Adding a route is one entry here, its handler, and the handler's `#[utoipa::path]`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use http::header::ALLOW;
use http::{HeaderValue, Method};
use triggers_schemas::Problem;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::{RefOr, Schema};

use crate::http_util::{Body, RequestBody, discard_body, problem};
use crate::{AppState, admin, events, ops, subscriptions};

/// The two listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Listener {
    Public,
    Admin,
}

/// What a handler returns: its response, once the request is answered.
pub(crate) type Responding = Pin<Box<dyn Future<Output = http::Response<Body>> + Send>>;

/// A route's handler: the shared state, the request, and the values of the path's `{parameters}`.
pub(crate) type Handler = fn(Arc<AppState>, http::Request<RequestBody>, PathParams) -> Responding;

/// One route.
pub(crate) struct Route {
    pub(crate) listener: Listener,
    pub(crate) method: Method,
    /// The path template, in the syntax the router and OpenAPI share: `/v1/events/{event_id}`.
    pub(crate) path: &'static str,
    pub(crate) handler: Handler,
    /// The route's OpenAPI description, as its `#[utoipa::path]` says.
    pub(crate) doc: fn() -> RouteDoc,
}

/// The values of a matched path's `{parameters}`, as sent (still percent-encoded).
#[derive(Debug, Default, Clone)]
pub(crate) struct PathParams(Vec<(String, String)>);

impl PathParams {
    /// The value of the parameter `name` (empty when the template has none of that name).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
    }
}

/// A route's OpenAPI description.
pub(crate) struct RouteDoc {
    pub(crate) path: String,
    pub(crate) methods: Vec<HttpMethod>,
    pub(crate) operation: Operation,
    /// The named shapes its bodies refer to, for the document's components.
    pub(crate) schemas: Vec<(String, RefOr<Schema>)>,
}

/// The description `P` that `#[utoipa::path]` generated for a handler. The tags and the schemas
/// it refers to come through utoipa's `__dev` traits: they are what its own `OpenApi` derive
/// reads, and the route table stands in for that derive here.
fn documented<P>() -> RouteDoc
where
    P: utoipa::Path + for<'t> utoipa::__dev::Tags<'t> + utoipa::__dev::SchemaReferences,
{
    let mut operation = P::operation();
    operation.tags.get_or_insert_with(Vec::new).extend(P::tags().into_iter().map(str::to_owned));
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    RouteDoc { path: P::path(), methods: P::methods(), operation, schemas }
}

/// One entry of the table: `route!(Listener, METHOD, "/path/{param}", module::handler)`. The
/// handler carries `#[utoipa::path]`, which generates the type `module::__path_handler` that
/// documents it; the macro names it (`doc` names it again only because macros cannot join names).
macro_rules! route {
    ($listener:ident, $method:ident, $path:literal, $module:ident :: $handler:ident, $doc:ty) => {
        Route {
            listener: Listener::$listener,
            method: Method::$method,
            path: $path,
            handler: |state, request, params| Box::pin($module::$handler(state, request, params)),
            doc: documented::<$doc>,
        }
    };
}

/// Every route of both listeners.
pub(crate) fn table() -> Vec<Route> {
    vec![
        route!(Public, GET, "/healthz", ops::healthz, ops::__path_healthz),
        route!(Public, GET, "/readyz", ops::readyz, ops::__path_readyz),
        route!(Public, GET, "/metrics", ops::metrics, ops::__path_metrics),
        route!(Public, GET, "/openapi.json", ops::openapi, ops::__path_openapi),
        route!(Public, POST, "/v1/events", events::ingest, events::__path_ingest),
        route!(Public, GET, "/v1/events/{event_id}", events::get, events::__path_get),
        route!(Public, POST, "/v1/subscriptions", subscriptions::create, subscriptions::__path_create),
        route!(Public, GET, "/v1/subscriptions", subscriptions::list, subscriptions::__path_list),
        route!(Public, GET, "/v1/subscriptions/{workflow_id}", subscriptions::get, subscriptions::__path_get),
        route!(Admin, POST, "/admin/v1/customers", admin::create_customer, admin::__path_create_customer),
        route!(
            Admin,
            POST,
            "/admin/v1/customers/{customer_id}/api-keys",
            admin::create_api_key,
            admin::__path_create_api_key
        ),
    ]
}

/// The handlers of one path template, by method.
struct Endpoint {
    template: &'static str,
    methods: Vec<(Method, Handler)>,
}

impl Endpoint {
    /// The `Allow` header's value: the path's methods in a fixed order.
    fn allow(&self) -> String {
        let mut methods: Vec<&str> = self.methods.iter().map(|(method, _)| method.as_str()).collect();
        methods.sort_by_key(|method| METHOD_ORDER.iter().position(|known| known == method).unwrap_or(usize::MAX));
        methods.join(", ")
    }
}

/// The order methods are listed in an `Allow` header.
const METHOD_ORDER: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The routers of both listeners, built once from the table.
struct Routers {
    public: matchit::Router<Endpoint>,
    admin: matchit::Router<Endpoint>,
}

static ROUTERS: LazyLock<Routers> = LazyLock::new(|| build(table()));

fn build(table: Vec<Route>) -> Routers {
    let mut endpoints: BTreeMap<(Listener, &'static str), Endpoint> = BTreeMap::new();
    for route in table {
        let endpoint = endpoints
            .entry((route.listener, route.path))
            .or_insert_with(|| Endpoint { template: route.path, methods: Vec::new() });
        assert!(
            endpoint.methods.iter().all(|(method, _)| *method != route.method),
            "the route table has {} {} twice",
            route.method,
            route.path
        );
        endpoint.methods.push((route.method, route.handler));
    }
    let mut routers = Routers { public: matchit::Router::new(), admin: matchit::Router::new() };
    for ((listener, path), endpoint) in endpoints {
        let router = match listener {
            Listener::Public => &mut routers.public,
            Listener::Admin => &mut routers.admin,
        };
        if let Err(error) = router.insert(path, endpoint) {
            panic!("the route table's {path} does not fit the router: {error}");
        }
    }
    routers
}

/// What answered a request: the route's template (for the audit line), or none when no route did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Matched(pub(crate) Option<&'static str>);

/// Answers `request` through the route the table gives for it: a `404` problem when no path
/// matches, a `405` with `Allow` when the path is known but not with this method.
pub(crate) async fn route(
    state: &Arc<AppState>,
    which: Listener,
    request: http::Request<RequestBody>,
) -> (http::Response<Body>, Matched) {
    let router = match which {
        Listener::Public => &ROUTERS.public,
        Listener::Admin => &ROUTERS.admin,
    };
    // A trailing slash names the same resource; the root alone is no route.
    let path = request.uri().path();
    let trimmed = path.trim_end_matches('/');
    let Ok(found) = router.at(if trimmed.is_empty() { path } else { trimmed }) else {
        let detail = format!("no route {}", truncated(path));
        // Unwanted, but read, so that the refusal reaches a client still sending it.
        discard_body(request.into_body()).await;
        return (problem(&Problem::not_found(detail)), Matched(None));
    };
    let endpoint = found.value;
    let params = PathParams(found.params.iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect());
    let handler = endpoint.methods.iter().find(|(method, _)| method == request.method()).map(|(_, handler)| *handler);
    let Some(handler) = handler else {
        let allowed = endpoint.allow();
        let detail = format!("{} is not allowed on {}; use {allowed}", request.method(), truncated(path));
        discard_body(request.into_body()).await;
        let mut response = problem(&Problem::method_not_allowed(detail));
        if let Ok(value) = HeaderValue::from_str(&allowed) {
            response.headers_mut().insert(ALLOW, value);
        }
        return (response, Matched(Some(endpoint.template)));
    };
    (handler(Arc::clone(state), request, params).await, Matched(Some(endpoint.template)))
}

/// A path as shown in a problem: at most 200 characters of it.
fn truncated(path: &str) -> String {
    const SHOWN: usize = 200;
    match path.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &path[..end]),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every (listener-independent) method and path of the table.
    fn table_operations() -> BTreeSet<(String, String)> {
        table().iter().map(|route| (route.method.as_str().to_lowercase(), route.path.to_owned())).collect()
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_nothing_else_is() {
        let document = serde_json::to_value(crate::openapi::document()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in item.as_object().unwrap().keys() {
                if METHOD_ORDER.iter().any(|known| known.eq_ignore_ascii_case(method)) {
                    documented.insert((method.clone(), path.clone()));
                }
            }
        }
        let routed = table_operations();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(undocumented.is_empty(), "routes missing from /openapi.json: {undocumented:?}");
        assert!(unrouted.is_empty(), "documented operations no route serves: {unrouted:?}");
    }

    #[test]
    fn each_handler_documents_its_own_route() {
        for route in table() {
            let RouteDoc { path, methods, operation, .. } = (route.doc)();
            assert_eq!(path, route.path, "the #[utoipa::path] of {} {} names another path", route.method, route.path);
            let method = route.method.as_str().to_lowercase();
            let documented: Vec<String> =
                methods.iter().map(|m| serde_json::to_value(m).unwrap().as_str().unwrap().to_owned()).collect();
            assert_eq!(documented, [method], "the #[utoipa::path] of {} {} names other methods", route.method, path);
            assert!(operation.summary.is_some(), "{} {} has no summary", route.method, route.path);
            let responses = serde_json::to_value(&operation.responses).unwrap();
            assert!(
                responses.as_object().is_some_and(|r| !r.is_empty()),
                "{} {} documents no response",
                route.method,
                route.path
            );
            for name in route.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
                let parameters = serde_json::to_value(&operation.parameters).unwrap();
                let listed =
                    parameters.as_array().into_iter().flatten().any(|p| p["name"] == name && p["in"] == "path");
                assert!(listed, "{} {} does not document its path parameter {name}", route.method, route.path);
            }
        }
    }

    #[test]
    fn admin_routes_are_marked_admin_and_public_ones_are_not() {
        for route in table() {
            let operation = (route.doc)().operation;
            let admin = operation.tags.iter().flatten().any(|tag| tag == "admin");
            assert_eq!(admin, route.listener == Listener::Admin, "{} {}", route.method, route.path);
        }
    }

    #[test]
    fn allow_lists_the_table_methods_in_order() {
        let routers = build(table());
        let found = routers.public.at("/v1/subscriptions").unwrap();
        assert_eq!(found.value.allow(), "GET, POST");
        let found = routers.public.at("/v1/events/evt_1").unwrap();
        assert_eq!((found.value.template, found.params.get("event_id")), ("/v1/events/{event_id}", Some("evt_1")));
        assert!(routers.public.at("/admin/v1/customers").is_err(), "admin routes stay off the public listener");
        assert!(routers.admin.at("/v1/events").is_err(), "public routes stay off the admin listener");
    }

    #[test]
    fn long_paths_are_cut_in_problems() {
        assert_eq!(truncated("/short"), "/short");
        let long = "é".repeat(300);
        assert_eq!(truncated(&long).chars().count(), 201);
    }
}
