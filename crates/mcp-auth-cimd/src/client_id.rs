//! Which `client_id` values are metadata-document URLs this server will fetch
//! (draft-ietf-oauth-client-id-metadata-document §3).

use url::Url;

/// Checks that `client_id` is an acceptable Client ID Metadata Document URL and parses it.
///
/// The rules: the `https` scheme; a host; a path other than `/`; no fragment, no userinfo and
/// no `.` or `..` path segments (also percent-encoded). The URL must also be in the canonical
/// form the URL standard serialises it to, because the document's `client_id` is compared with
/// it as a string and two spellings of one URL must not name two clients.
pub fn parse_client_id_url(client_id: &str) -> Result<Url, &'static str> {
    if !client_id.starts_with("https://") {
        return Err("the scheme must be https");
    }
    if client_id.contains('#') {
        return Err("a fragment is not allowed");
    }
    let authority_end = client_id[8..]
        .find(['/', '?'])
        .map_or(client_id.len(), |i| i + 8);
    if client_id[8..authority_end].contains('@') {
        return Err("userinfo is not allowed");
    }
    let path_end = client_id.find('?').unwrap_or(client_id.len());
    let path = client_id.get(authority_end..path_end).unwrap_or("");
    if path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        matches!(
            lower.as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    }) {
        return Err("dot segments are not allowed in the path");
    }
    let url = Url::parse(client_id).map_err(|_| "not a valid URL")?;
    if url.host().is_none() {
        return Err("a host is required");
    }
    if url.path().is_empty() || url.path() == "/" {
        return Err("a path is required");
    }
    if url.as_str() != client_id {
        return Err("the URL is not in canonical form");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_rules() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("https://app.example/client.json", Ok(())),
            ("https://app.example/a/b/client?x=1", Ok(())),
            ("https://app.example:8443/c", Ok(())),
            ("https://[2606:4700::1]/c", Ok(())),
            (
                "http://app.example/client.json",
                Err("the scheme must be https"),
            ),
            (
                "HTTPS://app.example/client.json",
                Err("the scheme must be https"),
            ),
            ("app.example/client.json", Err("the scheme must be https")),
            ("https://app.example", Err("a path is required")),
            ("https://app.example/", Err("a path is required")),
            ("https://app.example?x", Err("a path is required")),
            (
                "https://app.example/c#frag",
                Err("a fragment is not allowed"),
            ),
            ("https://app.example/c#", Err("a fragment is not allowed")),
            ("https://user@app.example/c", Err("userinfo is not allowed")),
            (
                "https://user:pw@app.example/c",
                Err("userinfo is not allowed"),
            ),
            (
                "https://evil.example@app.example/c",
                Err("userinfo is not allowed"),
            ),
            (
                "https://app.example/a/../c",
                Err("dot segments are not allowed in the path"),
            ),
            (
                "https://app.example/./c",
                Err("dot segments are not allowed in the path"),
            ),
            (
                "https://app.example/a/%2e%2E/c",
                Err("dot segments are not allowed in the path"),
            ),
            (
                "https://app.example/a/.%2e",
                Err("dot segments are not allowed in the path"),
            ),
            (
                "https://APP.example/c",
                Err("the URL is not in canonical form"),
            ),
            (
                "https://app.example:443/c",
                Err("the URL is not in canonical form"),
            ),
            (
                "https://app.example/a b",
                Err("the URL is not in canonical form"),
            ),
            ("https:///c", Err("a path is required")),
            ("https://", Err("not a valid URL")),
        ];
        for (client_id, expected) in cases {
            let got = parse_client_id_url(client_id).map(|_| ());
            assert_eq!(&got, expected, "{client_id}");
        }
    }
}
