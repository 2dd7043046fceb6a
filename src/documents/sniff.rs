//! What a document is, decided from its first bytes (magic numbers, RustCrypto's neighbour
//! `infer`), never from the name or the `Content-Type` the client sent; and a file name made
//! safe to keep and to send back.

use crate::config::DocumentType;

/// What the content looked like: an allowed type, or what it was instead (for the 415).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    Allowed(DocumentType),
    Refused(String),
}

/// Decides from `head` (the first chunk, or all of a smaller file). Text is UTF-8 without
/// control characters; text that opens like markup (HTML, SVG, XML) is markup, whatever
/// else it claims. CSV is text whose first lines agree on a comma count; other text is plain.
pub fn sniff(head: &[u8], allowed: &[DocumentType]) -> Sniffed {
    let found = match infer::get(head) {
        Some(kind) => match kind.mime_type() {
            "application/pdf" => Ok(DocumentType::Pdf),
            "image/png" => Ok(DocumentType::Png),
            "image/jpeg" => Ok(DocumentType::Jpeg),
            "image/gif" => Ok(DocumentType::Gif),
            "image/webp" => Ok(DocumentType::Webp),
            m if m == DocumentType::Docx.mime() => Ok(DocumentType::Docx),
            m if m == DocumentType::Xlsx.mime() => Ok(DocumentType::Xlsx),
            m if m == DocumentType::Pptx.mime() => Ok(DocumentType::Pptx),
            m if m == DocumentType::Odt.mime() => Ok(DocumentType::Odt),
            m if m == DocumentType::Ods.mime() => Ok(DocumentType::Ods),
            other => Err(other.to_owned()),
        },
        None => text_kind(head),
    };
    match found {
        Ok(kind) if allowed.contains(&kind) => Sniffed::Allowed(kind),
        // A CSV file where only text is allowed (or the reverse) is still text.
        Ok(DocumentType::Csv) if allowed.contains(&DocumentType::Text) => {
            Sniffed::Allowed(DocumentType::Text)
        }
        Ok(kind) => Sniffed::Refused(kind.mime().to_owned()),
        Err(other) => Sniffed::Refused(other),
    }
}

fn text_kind(head: &[u8]) -> Result<DocumentType, String> {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // The head may end inside a multi-byte character.
        Err(err) if err.error_len().is_none() && head.len() - err.valid_up_to() < 4 => {
            std::str::from_utf8(&head[..err.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return Err("application/octet-stream".into()),
    };
    if text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')) {
        return Err("application/octet-stream".into());
    }
    let start: String =
        text.trim_start_matches('\u{feff}').trim_start().chars().take(1024).collect();
    let start = start.to_ascii_lowercase();
    for (marker, kind) in [
        ("<!doctype html", "text/html"),
        ("<html", "text/html"),
        ("<script", "text/html"),
        ("<svg", "image/svg+xml"),
        ("<?xml", "application/xml"),
    ] {
        if start.starts_with(marker) || (kind == "text/html" && start.contains(marker)) {
            return Err(kind.into());
        }
    }
    if start.contains("<svg") {
        return Err("image/svg+xml".into());
    }
    Ok(if looks_like_csv(text) { DocumentType::Csv } else { DocumentType::Text })
}

fn looks_like_csv(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().take(5).filter(|l| !l.is_empty()).collect();
    let Some(first) = lines.first() else { return false };
    let commas = first.matches(',').count();
    commas > 0 && lines.len() > 1 && lines.iter().all(|l| l.matches(',').count() == commas)
}

/// Bidirectional overrides and isolates (`report\u{202e}fdp.exe` shows as `reportexe.pdf`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The name kept beside the document: its last path component, without control characters,
/// bidirectional overrides, or leading dots and spaces, at most 200 bytes (cut at a
/// character boundary); `document` when nothing is left.
pub fn safe_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String =
        last.chars().filter(|c| !c.is_control() && !is_bidi_control(*c)).collect();
    let trimmed = cleaned.trim().trim_start_matches(['.', ' ']);
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() { "document".into() } else { out }
}

/// `Content-Disposition: attachment` with an ASCII fallback and the exact name in RFC 6266's
/// `filename*` (RFC 8187 percent-encoding), so no name can add a parameter or a header.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';' | '%') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[DocumentType] = &[
        DocumentType::Pdf,
        DocumentType::Png,
        DocumentType::Text,
        DocumentType::Csv,
        DocumentType::Docx,
    ];

    #[test]
    fn the_content_decides_never_the_name() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
        assert_eq!(sniff(png, ALL), Sniffed::Allowed(DocumentType::Png));
        assert_eq!(sniff(b"%PDF-1.7\n", ALL), Sniffed::Allowed(DocumentType::Pdf));
        assert_eq!(sniff(b"hello\nworld\n", ALL), Sniffed::Allowed(DocumentType::Text));
        assert_eq!(sniff(b"a,b\n1,2\n3,4\n", ALL), Sniffed::Allowed(DocumentType::Csv));
        assert_eq!(sniff(b"<!DOCTYPE html><p>x", ALL), Sniffed::Refused("text/html".into()));
        assert_eq!(
            sniff(b"  <svg onload=alert(1)>", ALL),
            Sniffed::Refused("image/svg+xml".into())
        );
        assert_eq!(
            sniff(b"hi <script>alert(1)</script>", ALL),
            Sniffed::Refused("text/html".into())
        );
        assert!(matches!(sniff(b"\x7fELF\x02\x01\x01\0", ALL), Sniffed::Refused(_)));
        assert!(matches!(sniff(b"\0\x01\x02binary", ALL), Sniffed::Refused(_)));
        assert!(matches!(sniff(png, &[DocumentType::Pdf]), Sniffed::Refused(_)));
    }

    #[test]
    fn names_are_made_safe_for_storage_and_headers() {
        assert_eq!(safe_filename("../../etc/passwd"), "passwd");
        assert_eq!(safe_filename("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(safe_filename("a\r\nSet-Cookie: x.pdf"), "aSet-Cookie: x.pdf");
        assert_eq!(safe_filename("...hidden"), "hidden");
        assert_eq!(safe_filename("../"), "document");
        let long = "é".repeat(10_000);
        assert!(safe_filename(&long).len() <= 200);
        let header = content_disposition("naïve \"quote\"; x=1.pdf");
        assert!(!header.contains('\r') && !header.contains('\n'));
        assert!(header.starts_with("attachment; filename=\"na_ve _quote__ x=1.pdf\"; filename*=UTF-8''na%C3%AFve%20%22quote%22%3B%20x%3D1.pdf"), "{header}");
    }
}
