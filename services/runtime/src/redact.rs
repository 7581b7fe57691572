//! Credentials out of anything printed: the one place that strips the
//! password from a URL (`REDIS_URL`, `DATABASE_URL`, …) before it reaches an
//! error message or a log line.
//!
//! Settings carry secrets inside URLs (`redis://:pass@host`,
//! `postgres://user:pass@db/chirp`), and start-up errors want to name the
//! URL they failed on: a log shipped to a shared system must not leak the
//! password with it. The user name stays (it helps find the wrong setting);
//! the password becomes `***`. Works on any text, so a comma-separated list
//! of URLs or a message quoting one is redacted whole.

/// `text` with the password of every `scheme://user:password@host` in it
/// replaced by `***`.
pub fn url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        // The authority ends where the path, query, fragment or the next
        // list entry begins; a password may hold none of those unescaped.
        let authority_end = rest
            .find(|c: char| matches!(c, '/' | '?' | '#' | ',') || c.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let user_info = &authority[..at];
                match user_info.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(user_info),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::url_credentials;

    #[test]
    fn passwords_never_reach_what_is_printed() {
        let cases = [
            (
                "postgres://u:secret@db:5432/chirp",
                "postgres://u:***@db:5432/chirp",
            ),
            ("redis://:secret@cache:6379", "redis://:***@cache:6379"),
            (
                "redis://a:s1@n1:6391,redis://b:s2@n2:6392",
                "redis://a:***@n1:6391,redis://b:***@n2:6392",
            ),
            (
                "connect to Redis at rediss://default:p%40ss@host/0: refused",
                "connect to Redis at rediss://default:***@host/0: refused",
            ),
            ("postgres://u@db/chirp", "postgres://u@db/chirp"),
            ("postgres://db/chirp", "postgres://db/chirp"),
            ("no url here", "no url here"),
        ];
        for (raw, shown) in cases {
            assert_eq!(url_credentials(raw), shown, "{raw}");
        }
    }
}
