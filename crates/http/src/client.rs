//! What a request says about its client.

use actix_web::HttpRequest;

/// The client's address as the gateway saw it (it sets `X-Real-IP`; services are reachable
/// only through it), else the peer's: trimmed, at most 64 characters.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().chars().take(64).collect::<String>())
        .filter(|s| !s.is_empty())
        .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_gateways_header_else_the_peer() {
        let req = TestRequest::default()
            .insert_header(("X-Real-IP", " 203.0.113.9 "))
            .to_http_request();
        assert_eq!(client_ip(&req).as_deref(), Some("203.0.113.9"));
        let peer = "198.51.100.1:4000".parse().unwrap();
        let req = TestRequest::default()
            .insert_header(("X-Real-IP", " "))
            .peer_addr(peer)
            .to_http_request();
        assert_eq!(client_ip(&req).as_deref(), Some("198.51.100.1"));
    }
}
