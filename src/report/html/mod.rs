//! Self-contained HTML pages: inline CSS and inline SVG only, no script, and nothing loaded
//! from anywhere (a Content-Security-Policy of `default-src 'none'` says so to the browser,
//! which then reports any load as a console error).

mod run_page;

pub use run_page::*;

use std::fmt::Write as _;

use serde_json::Value;

/// The page's style sheet.
const CSS: &str = "\
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; \
color: #1a1a1a; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.8em; }
nav { margin: 0.8em 0; } nav a { margin-right: 1em; color: #0645ad; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td { white-space: nowrap; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; font-family: ui-monospace, monospace; white-space: normal; \
word-break: break-all; }
th.text { text-align: left; } summary { cursor: pointer; color: #0645ad; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
svg { max-width: 100%; height: auto; } .note { color: #555; }
";

/// A page under construction: sections of headings, text, tables and figures.
pub(crate) struct Page {
    title: String,
    nav: Vec<(String, String)>,
    body: String,
}

impl Page {
    /// An empty page titled `title`.
    pub(crate) fn new(title: &str) -> Self {
        Self {
            title: title.into(),
            nav: Vec::new(),
            body: String::new(),
        }
    }

    /// Starts section `id` headed `title`, listed in the page's navigation.
    pub(crate) fn section(&mut self, id: &str, title: &str) {
        self.nav.push((id.into(), title.into()));
        let _ = writeln!(self.body, "<h2 id=\"{id}\">{}</h2>", escape(title));
    }

    /// A paragraph of plain text.
    pub(crate) fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
    }

    /// A paragraph of plain text, set as a side note.
    pub(crate) fn note(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A table of plain-text cells under `header`; cells of a column in `text_columns` are
    /// left-aligned in a fixed-width font (values rather than figures).
    pub(crate) fn table(&mut self, header: &[&str], rows: &[Vec<String>], text_columns: &[usize]) {
        self.body.push_str("<table>\n<tr>");
        for (i, h) in header.iter().enumerate() {
            let class = if text_columns.contains(&i) {
                " class=\"text\""
            } else {
                ""
            };
            let _ = write!(self.body, "<th{class}>{}</th>", escape(h));
        }
        self.body.push_str("</tr>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let class = if text_columns.contains(&i) {
                    " class=\"text\""
                } else {
                    ""
                };
                let _ = write!(self.body, "<td{class}>{}</td>", escape(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    /// Starts a collapsed block whose one-line summary is `summary` (the browser opens it on
    /// a click, without a script); [`Page::end_details`] ends it.
    pub(crate) fn details(&mut self, summary: &str) {
        let _ = writeln!(
            self.body,
            "<details>\n<summary>{}</summary>",
            escape(summary)
        );
    }

    /// Ends the block [`Page::details`] started.
    pub(crate) fn end_details(&mut self) {
        self.body.push_str("</details>\n");
    }

    /// A figure: the SVG document `svg` inline, with `caption` under it.
    pub(crate) fn figure(&mut self, svg: &str, caption: &str) {
        let _ = writeln!(
            self.body,
            "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>",
            inline_svg(svg),
            escape(caption)
        );
    }

    /// The whole document.
    pub(crate) fn finish(self) -> String {
        let mut html =
            String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'\">\n",
        );
        html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        let _ = writeln!(html, "<title>{}</title>", escape(&self.title));
        let _ = writeln!(html, "<style>\n{CSS}</style>\n</head>\n<body>");
        let _ = writeln!(html, "<h1>{}</h1>", escape(&self.title));
        if !self.nav.is_empty() {
            html.push_str("<nav>");
            for (id, title) in &self.nav {
                let _ = write!(html, "<a href=\"#{id}\">{}</a>", escape(title));
            }
            html.push_str("</nav>\n");
        }
        html.push_str(&self.body);
        html.push_str("</body>\n</html>\n");
        html
    }
}

/// `text` with the characters that HTML gives a meaning escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG document as an element of an HTML page: without its XML namespace declaration,
/// which the HTML parser implies (and which would be the page's only URL).
pub(crate) fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

/// A fraction as a percentage with two decimals, `-` when absent.
pub(crate) fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}", 100.0 * v))
}

/// The leaves of a JSON document with their dotted paths (`config.loss.contrast_weight`),
/// in document order: arrays of scalars are leaves, other arrays are entered (`milestones.0`).
pub(crate) fn leaves(value: &Value) -> Vec<(String, &Value)> {
    fn walk<'a>(prefix: &str, value: &'a Value, out: &mut Vec<(String, &'a Value)>) {
        let join = |key: &str| {
            if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            }
        };
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, v) in map {
                    walk(&join(key), v, out);
                }
            }
            Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&join(&i.to_string()), v, out);
                }
            }
            _ => out.push((prefix.to_string(), value)),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// A leaf's value as text: strings without their quotes, everything else as compact JSON.
pub(crate) fn leaf_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(leaf_text).collect();
            format!("[{}]", items.join(", "))
        }
        v => v.to_string(),
    }
}

/// Whether `html` stands alone: no script, no URL (`http:`, `https:`, `file:`, `ftp:`) and no
/// link but to the page's own anchors, and nothing loaded (`src=`, `href=` other than `#...`,
/// `url(`, `@import`). Returns what breaks it. (The word `http` itself appears once, in the
/// `http-equiv` of the Content-Security-Policy.)
#[cfg(test)]
pub(crate) fn self_contained(html: &str) -> std::result::Result<(), String> {
    let lower = html.to_lowercase();
    for needle in [
        "http:", "https:", "file:", "ftp:", "<script", "src=", "url(", "@import", "<iframe",
        "<object", "<embed",
    ] {
        if let Some(at) = lower.find(needle) {
            let context: String = html[at.saturating_sub(40)..].chars().take(100).collect();
            return Err(format!("`{needle}` in: {context}"));
        }
    }
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("href=") {
        rest = &rest[at + 5..];
        if !rest.starts_with("\"#") {
            return Err(format!(
                "a link to a file: href={}",
                &rest[..rest.len().min(40)]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_dotted_paths() {
        let v: Value = serde_json::json!({
            "config": {"epochs": 20, "schedule": {"kind": "constant", "milestones": [16, 18]}},
            "list": [{"a": 1}], "empty": {}
        });
        let got: Vec<(String, String)> = leaves(&v)
            .into_iter()
            .map(|(k, v)| (k, leaf_text(v)))
            .collect();
        let want = [
            ("config.epochs", "20"),
            ("config.schedule.kind", "constant"),
            ("config.schedule.milestones", "[16, 18]"),
            ("empty", "{}"),
            ("list.0.a", "1"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_page_escapes_its_text_and_stands_alone() {
        let mut page = Page::new("a <b> & 'c'");
        page.section("one", "One");
        page.table(&["x"], &[vec!["<script>".into()]], &[]);
        page.figure(
            "<svg width=\"1\" xmlns=\"http://www.w3.org/2000/svg\"></svg>",
            "f",
        );
        let html = page.finish();
        assert!(html.contains("<title>a &lt;b&gt; &amp; &#39;c&#39;</title>"));
        assert!(html.contains("<td>&lt;script&gt;</td>") && html.contains("<svg width=\"1\">"));
        assert_eq!(self_contained(&html), Ok(()));
        assert!(self_contained("<img src=\"a.png\">").is_err());
        assert!(self_contained("<a href=\"a.html\">").is_err());
        assert!(self_contained("<a href=\"https://x\">").is_err());
    }
}
