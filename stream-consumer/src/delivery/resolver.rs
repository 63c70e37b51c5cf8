//! Host-name resolution for webhooks, checked: the connector connects only to addresses this
//! module has looked up and let through, so a name cannot resolve to a public address when checked
//! and to a private one when connected (DNS rebinding).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use hyper_util::client::legacy::connect::dns::Name;
use triggers_schemas::address::is_forbidden_ip;

/// Turns a host name into addresses: the port through which webhooks find their endpoints (the
/// system's resolver in production, one the test controls in tests).
#[async_trait]
pub trait Resolve: Send + Sync + 'static {
    /// Every address `host` resolves to.
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|address| address.ip()).collect())
    }
}

/// Why a webhook's host was refused.
#[derive(Debug, thiserror::Error)]
pub enum AddressRefused {
    /// The host resolved to an address webhooks may not reach.
    #[error("webhook host {host} resolves to {address}, a loopback, private, link-local or metadata address; refused")]
    Private {
        /// The host name.
        host: String,
        /// The first refused address it resolved to.
        address: IpAddr,
    },
    /// The host resolved to nothing.
    #[error("webhook host {0} resolves to no address")]
    NoAddress(String),
}

/// The resolver hyper's connector is given: looks the name up once, refuses the whole answer when
/// any address in it is off limits (unless private webhooks are allowed), and hands the connector
/// exactly the addresses it checked.
#[derive(Clone)]
pub(crate) struct CheckedResolver {
    resolver: Arc<dyn Resolve>,
    allow_private: bool,
}

impl CheckedResolver {
    pub(crate) fn new(resolver: Arc<dyn Resolve>, allow_private: bool) -> Self {
        Self { resolver, allow_private }
    }
}

/// Checks a resolver's answer for `host`: the addresses to connect to, or why not.
pub(crate) fn check_addresses(
    host: &str,
    addresses: Vec<IpAddr>,
    allow_private: bool,
) -> Result<Vec<IpAddr>, AddressRefused> {
    if addresses.is_empty() {
        return Err(AddressRefused::NoAddress(host.to_owned()));
    }
    if !allow_private && let Some(address) = addresses.iter().copied().find(|ip| is_forbidden_ip(*ip)) {
        return Err(AddressRefused::Private { host: host.to_owned(), address });
    }
    Ok(addresses)
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let (resolver, allow_private) = (Arc::clone(&self.resolver), self.allow_private);
        Box::pin(async move {
            let host = name.as_str();
            let addresses = resolver.resolve(host).await?;
            let checked = check_addresses(host, addresses, allow_private)
                .map_err(|refused| io::Error::new(io::ErrorKind::PermissionDenied, refused))?;
            // The connector puts the URL's port on each address.
            Ok(checked.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect::<Vec<_>>().into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    #[test]
    fn one_private_address_in_the_answer_refuses_the_host() {
        let mixed = ips(&["93.184.216.34", "127.0.0.1"]);
        let refused = check_addresses("rebind.example", mixed.clone(), false).unwrap_err();
        assert!(refused.to_string().contains("rebind.example resolves to 127.0.0.1"), "{refused}");
        assert_eq!(check_addresses("rebind.example", mixed.clone(), true).unwrap(), mixed);
        let public = ips(&["93.184.216.34", "2606:2800:220:1::"]);
        assert_eq!(check_addresses("example.com", public.clone(), false).unwrap(), public);
        assert!(matches!(check_addresses("void.example", vec![], true), Err(AddressRefused::NoAddress(_))));
    }
}
