//! Addresses and header values as the mail side accepts them: parsed by lettre's RFC 5322
//! parser, never with a CR or LF (header injection), domains as DNS names.

use lettre::message::Mailbox;

/// The longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS: usize = 254;

/// A mailbox, `a@b.example` or `Name <a@b.example>`.
pub fn parse(text: &str) -> Result<Mailbox, String> {
    let text = text.trim();
    if text.contains(['\r', '\n']) {
        return Err("must be one line".into());
    }
    let mailbox: Mailbox = text.parse().map_err(|_| "is not an email address".to_owned())?;
    if AsRef::<str>::as_ref(&mailbox.email).len() > MAX_ADDRESS {
        return Err(format!("is longer than {MAX_ADDRESS} characters"));
    }
    // Domains compare without case: `Ada@Example.COM` is a fine address.
    if !is_domain(&mailbox.email.domain().to_ascii_lowercase()) {
        return Err("does not end in a domain name".into());
    }
    Ok(mailbox)
}

/// A DNS name a tenant can send from: lower-case ASCII labels (IDNs in their `xn--` form),
/// at least two, each 1 to 63 letters, digits or inner hyphens, 253 characters at most.
pub fn is_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && labels.last().is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_lowercase()))
}

/// A header value a tenant supplies (subject, custom headers): one line.
pub fn check_header_value(value: &str) -> Result<(), String> {
    if value.contains(['\r', '\n', '\0']) {
        Err("must not contain line breaks".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_injections_do_not() {
        assert_eq!(
            parse(" ada@example.com ").expect("parses").email.to_string(),
            "ada@example.com"
        );
        assert!(parse("Ada@Example.COM").is_ok(), "a domain in capitals");
        let named = parse("Ada Lovelace <ada@example.com>").expect("parses");
        assert_eq!(named.name.as_deref(), Some("Ada Lovelace"));
        for bad in [
            "",
            "ada",
            "ada@",
            "ada@localhost",
            "ada@example.com\r\nBcc: victim@example.com",
            "Ada <ada@example.com>\nX: y",
            "ada@exa mple.com",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains_are_dns_names() {
        for good in ["example.com", "mail.example.co.uk", "xn--bcher-kva.example", "a-b.example"] {
            assert!(is_domain(good), "{good}");
        }
        for bad in [
            "example",
            "-a.example",
            "a-.example",
            "Example.com",
            "a..example",
            "a.123",
            "a_b.example",
            "",
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
        assert!(check_header_value("Hello").is_ok());
        assert!(check_header_value("Hello\r\nBcc: x@example.com").is_err());
    }
}
