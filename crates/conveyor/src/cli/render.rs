//! How the client commands print: tables for people (comfy-table, fitted to
//! the terminal), the API's JSON for scripts, and the cell text of a JSON
//! value.

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

/// `println!` that ignores a closed stdout (`| head`): nobody reads the rest.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
pub(crate) use out;

/// Pretty JSON on stdout; nothing for an answer without a body.
pub fn json(value: &Value) {
    if value.is_null() {
        return;
    }
    match serde_json::to_string_pretty(value) {
        Ok(text) => out!("{text}"),
        Err(error) => eprintln!("conveyor: could not render JSON: {error}"),
    }
}

/// A table with `headers` and `rows` on stdout.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).set_header(headers.iter().copied());
    // Fitted to a terminal; as wide as its content when piped.
    if let Some((terminal_size::Width(width), _)) = terminal_size::terminal_size_of(std::io::stdout()) {
        table.set_content_arrangement(ContentArrangement::Dynamic).set_width(width);
    }
    for row in rows {
        table.add_row(row);
    }
    out!("{table}");
}

/// One row per item of `items` (a JSON array), one column per `(header, field)`.
pub fn items(items: &Value, columns: &[(&str, &str)]) {
    let rows = array(items)
        .iter()
        .map(|item| columns.iter().map(|(_, field)| cell(&item[*field])).collect())
        .collect();
    let headers: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
    table(&headers, rows);
}

/// Two columns, a name and its value, for one resource.
pub fn fields(rows: Vec<(&str, String)>) {
    table(
        &["FIELD", "VALUE"],
        rows.into_iter().map(|(name, value)| vec![name.to_owned(), value]).collect(),
    );
}

/// The items of a JSON array (none for anything else).
pub fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// A JSON value as a table cell: strings unquoted, null as `-`, arrays joined.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(values) if values.is_empty() => "-".to_owned(),
        Value::Array(values) => values.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// An exchange's name, `(default)` for the default exchange's empty one.
pub fn exchange(name: &Value) -> String {
    match cell(name) {
        name if name.is_empty() => "(default)".to_owned(),
        name => name,
    }
}

/// A size in bytes, as people read it (`1.50 MiB`).
pub fn bytes(value: &Value) -> String {
    value
        .as_u64()
        .map_or_else(|| cell(value), |bytes| indicatif::HumanBytes(bytes).to_string())
}

/// `text` cut to `chars_max` characters, with an ellipsis when cut.
pub fn shorten(text: &str, chars_max: usize) -> String {
    if text.chars().count() <= chars_max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(chars_max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// `1 message`, `2 messages`: a count of `noun`s from a JSON number (or
/// its text when it is not one).
pub fn count(value: &Value, noun: &str) -> String {
    match value.as_u64() {
        Some(1) => format!("1 {noun}"),
        Some(n) => format!("{n} {noun}s"),
        None => format!("{} {noun}s", cell(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_read_as_text() {
        assert_eq!(cell(&json!("orders")), "orders");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(42)), "42");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(bytes(&json!(2048)), "2.00 KiB");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
        assert_eq!(count(&json!(1), "message"), "1 message");
        assert_eq!(count(&json!(0), "message"), "0 messages");
        assert_eq!(count(&json!(3), "message"), "3 messages");
    }
}
