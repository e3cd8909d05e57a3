//! HTML escaping. Everything on the status page that came from the network (agent names,
//! addresses, task ids, alert rules and messages) goes through [`Escaped`], in element text and
//! in attribute values alike.

use std::fmt;

/// Text written with `&`, `<`, `>`, `"` and `'` replaced by character references.
///
/// ```
/// use nms::server::page::escape::Escaped;
/// assert_eq!(Escaped("<b>\"r1\" & 'r2'</b>").to_string(),
///            "&lt;b&gt;&quot;r1&quot; &amp; &#39;r2&#39;&lt;/b&gt;");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_replaced_and_other_text_kept() {
        assert_eq!(
            Escaped("<script>alert('x')</script>").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(
            Escaped("a=\"1\" & b").to_string(),
            "a=&quot;1&quot; &amp; b"
        );
        assert_eq!(
            Escaped("héllo → 127.0.0.1").to_string(),
            "héllo → 127.0.0.1"
        );
        assert_eq!(Escaped("").to_string(), "");
        assert_eq!(Escaped("&amp;").to_string(), "&amp;amp;");
    }
}
