//! The XML the AWS query protocol answers with, written in one place: every
//! piece of text goes through [`escape`], so a topic attribute or filter
//! policy that holds `<`, `&` or quotes cannot break the document. Knows
//! elements and text, nothing about SNS.

/// An XML fragment under construction.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    pub fn new() -> Xml {
        Xml::default()
    }

    /// `<tag>`; tags are our own constants, never client data.
    pub fn open(&mut self, tag: &str) -> &mut Xml {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Xml {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag>text</tag>` with the text escaped.
    pub fn element(&mut self, tag: &str, text: &str) -> &mut Xml {
        self.open(tag);
        escape(text, &mut self.out);
        self.close(tag)
    }

    /// A string map as the query protocol writes one:
    /// `<tag><entry><key>…</key><value>…</value></entry>…</tag>`.
    pub fn map<'a>(&mut self, tag: &str, entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> &mut Xml {
        self.open(tag);
        for (key, value) in entries {
            self.open("entry").element("key", key).element("value", value).close("entry");
        }
        self.close(tag)
    }

    /// Markup of our own (an element with attributes), never client data.
    pub fn raw(&mut self, markup: &str) -> &mut Xml {
        self.out.push_str(markup);
        self
    }

    /// Appends another fragment.
    pub fn append(&mut self, fragment: &Xml) -> &mut Xml {
        self.out.push_str(&fragment.out);
        self
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

/// Escapes text for element content or a double-quoted attribute. Characters
/// XML 1.0 cannot carry at all (most C0 controls) become U+FFFD, so the
/// document always parses.
pub fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Carriage returns would be normalized away by the parser.
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{fffd}'),
        }
    }
}

/// Whether XML 1.0 allows `c` in a document.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_unrepresentable_characters_replaced() {
        let mut xml = Xml::new();
        xml.element("Message", "a<b>&\"c'\r\u{1}");
        assert_eq!(xml.into_string(), "<Message>a&lt;b&gt;&amp;&quot;c&apos;&#13;\u{fffd}</Message>");
    }

    #[test]
    fn maps_are_entries_of_key_and_value() {
        let mut xml = Xml::new();
        xml.map("Attributes", [("A", "1")]);
        assert_eq!(
            xml.into_string(),
            "<Attributes><entry><key>A</key><value>1</value></entry></Attributes>"
        );
    }
}
