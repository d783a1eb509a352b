//! Who is asking: HTTP basic auth and Gitea-style access tokens.
//!
//! Gitea accepts a token in several places and clients use all of them: `Authorization:
//! token X` (Gitea's documented form), `Authorization: Bearer X`, basic auth with the token
//! as password (git credential helpers) or as user name with an empty or `x-oauth-basic`
//! password, and the deprecated `?token=` / `?access_token=` query parameters. Credentials
//! that are present but wrong are an error (401), never a silent fall back to anonymous.

use base64::Engine as _;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::store::Store;

/// The result of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Authenticated {
    /// No credentials were sent.
    Anonymous,
    /// Valid credentials of the server's user (its configured name).
    User(String),
    /// Credentials were sent and are wrong.
    Invalid(&'static str),
}

/// How the user authenticated, for endpoints that care (token creation needs a password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    None,
    Password,
    Token,
}

/// Checks the `Authorization` header and the token query parameters.
pub(crate) fn authenticate(
    store: &Store,
    headers: &HeaderMap,
    query: Option<&str>,
) -> (Authenticated, Method) {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let Ok(value) = value.to_str() else {
            return (
                Authenticated::Invalid("malformed Authorization header"),
                Method::None,
            );
        };
        return from_header(store, value.trim());
    }
    if let Some(token) = query.and_then(query_token) {
        return token_result(store, &token);
    }
    (Authenticated::Anonymous, Method::None)
}

fn from_header(store: &Store, value: &str) -> (Authenticated, Method) {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
        return token_result(store, rest);
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return (
            Authenticated::Invalid("unsupported authorization scheme"),
            Method::None,
        );
    }
    let Some((user, password)) = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(u, p)| (u.to_owned(), p.to_owned()))
        })
    else {
        return (
            Authenticated::Invalid("malformed basic credentials"),
            Method::None,
        );
    };
    if store.check_password(&user, &password) {
        return (
            Authenticated::User(store.user_name().to_owned()),
            Method::Password,
        );
    }
    if store.check_token(&password) {
        return (
            Authenticated::User(store.user_name().to_owned()),
            Method::Token,
        );
    }
    if (password.is_empty() || password == "x-oauth-basic") && store.check_token(&user) {
        return (
            Authenticated::User(store.user_name().to_owned()),
            Method::Token,
        );
    }
    (
        Authenticated::Invalid("user's password is invalid"),
        Method::None,
    )
}

fn token_result(store: &Store, token: &str) -> (Authenticated, Method) {
    if store.check_token(token) {
        (
            Authenticated::User(store.user_name().to_owned()),
            Method::Token,
        )
    } else {
        (Authenticated::Invalid("invalid token"), Method::None)
    }
}

fn query_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "token" || key == "access_token")
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn store() -> (tempfile::TempDir, Store, String) {
        let dir = tempfile::tempdir().unwrap();
        let (store, token) = Store::open(dir.path(), "alice", "pw", None).unwrap();
        (dir, store, token)
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn every_gitea_credential_form_is_accepted() {
        let (_dir, store, token) = store();
        let user = Authenticated::User("alice".into());
        for header in [
            format!("token {token}"),
            format!("Bearer {token}"),
            basic("alice", "pw"),
            basic("Alice", "pw"),
            basic("alice", &token),
            basic(&token, "x-oauth-basic"),
            basic(&token, ""),
        ] {
            assert_eq!(
                authenticate(&store, &with_auth(&header), None).0,
                user,
                "{header}"
            );
        }
        let query = format!("limit=1&token={token}");
        assert_eq!(
            authenticate(&store, &HeaderMap::new(), Some(&query)).0,
            user
        );
        assert_eq!(
            authenticate(&store, &with_auth(&basic("alice", "pw")), None).1,
            Method::Password
        );
    }

    #[test]
    fn wrong_credentials_are_invalid_not_anonymous() {
        let (_dir, store, _token) = store();
        for header in [
            "token nope".to_owned(),
            basic("alice", "wrong"),
            basic("bob", "pw"),
            "Basic !!!".to_owned(),
            "Digest x".to_owned(),
        ] {
            assert!(
                matches!(
                    authenticate(&store, &with_auth(&header), None).0,
                    Authenticated::Invalid(_)
                ),
                "{header}"
            );
        }
        assert_eq!(
            authenticate(&store, &HeaderMap::new(), None).0,
            Authenticated::Anonymous
        );
    }
}
