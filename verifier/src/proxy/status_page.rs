//! The status page an operator reads (`/status`, `/`): plain HTML with its style inline
//! and nothing from another origin, readable on a phone. It is made from the
//! `/status.json` value, so the two never disagree. First what to act on: whether the
//! proxy serves and why not, the last refusals with their reasons and fixes; then the
//! trusted metadata and its refreshes, upstream's health, the caches against their
//! budgets, and every counter.

use std::fmt::Write as _;

use serde_json::Value;

/// The page's style: one column on a phone, no external fonts or images.
const STYLE: &str = "\
:root{color-scheme:light}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;\
max-width:64rem;padding:.75rem;line-height:1.45;color:#1f2328;background:#fff}\
h1{font-size:1.35rem;margin:.2rem 0 .6rem}\
h2{font-size:1.1rem;margin:1.4rem 0 .5rem;padding-bottom:.2rem;border-bottom:1px solid #d0d7de}\
.state{padding:.7rem .9rem;border-radius:.4rem;font-weight:600;overflow-wrap:anywhere}\
.ok{background:#dafbe1;border-left:.45rem solid #1a7f37}\
.bad{background:#ffebe9;border-left:.45rem solid #cf222e}\
.warn{background:#fff8c5;border-left:.45rem solid #9a6700}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;width:100%;font-size:.92rem}\
th,td{text-align:left;padding:.25rem .45rem;border-bottom:1px solid #eaeef2;vertical-align:top;\
overflow-wrap:break-word}\
th{font-weight:600;color:#424a53}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.refusal{border-left:.45rem solid #b3261e;background:#fff5f4;margin:.55rem 0;\
padding:.45rem .7rem;border-radius:.3rem}\
.refusal .head{font-size:.88rem;color:#424a53;overflow-wrap:anywhere}\
.refusal .head a,.refusal .head b{font-size:1rem;color:#0a3069}\
.tag{display:inline-block;padding:0 .4rem;border-radius:1rem;background:#eaeef2;font-size:.8rem}\
.reason{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,SFMono-Regular,\
Menlo,monospace;font-size:.82rem;margin:.3rem 0 0}\
.fix{margin:.35rem 0 0;font-size:.88rem}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.82rem;\
background:#eff2f5;padding:.05rem .25rem;border-radius:.2rem;overflow-wrap:anywhere}\
.bar{background:#eaeef2;height:.5rem;border-radius:.25rem;min-width:6rem}\
.bar span{display:block;height:100%;border-radius:.25rem;background:#0969da}\
.muted{color:#59636e;font-size:.88rem}\
details{margin-top:1rem}summary{cursor:pointer;font-weight:600}";

/// HTML-escapes `text`.
fn escape(text: &str) -> String {
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

/// The string at `pointer`, escaped; `-` when absent or null.
fn field(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => escape(s),
        Some(other) => escape(&other.to_string()),
    }
}

fn number(value: &Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer).and_then(Value::as_i64)
}

fn unsigned(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// `seconds` as "4 min 3 s", "2 d 3 h".
fn span(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec} s"),
        (0, 0, _) => format!("{m} min {sec} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// "in 4 min 3 s", or "3 s ago" for a time past.
fn relative(seconds: i64) -> String {
    if seconds >= 0 {
        format!("in {}", span(seconds))
    } else {
        format!("{} ago", span(seconds))
    }
}

/// `bytes` as "1.5 MiB".
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut amount = bytes as f64;
    let mut unit = 0;
    while amount >= 1024.0 && unit + 1 < UNITS.len() {
        amount /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{amount:.1} {}", UNITS.get(unit).copied().unwrap_or("B"))
    }
}

/// Whether `text` may go into an `/explain/` link as it is (a crate name or a version:
/// letters, digits and `-_.+` only).
fn linkable(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
}

fn state(out: &mut String, status: &Value) {
    let serving = status
        .pointer("/trust/serving")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if serving {
        let warning = match status.pointer("/trust/last_error") {
            Some(Value::String(error)) => format!(
                "<br><span class=\"muted\">The last refresh failed; the trusted metadata is \
                 served until it expires: {}</span>",
                escape(error)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "<div class=\"state ok\" id=\"state\">Serving: cargo gets what the TUF repository \
             signed{}.{warning}</div>",
            if status.pointer("/policy").is_some_and(|p| !p.is_null()) {
                " and the trust policy trusts"
            } else {
                ""
            }
        );
    } else {
        let next = match number(status, "/trust/refresh/next_attempt_in_seconds") {
            Some(seconds) => format!(
                " Next refresh attempt {} ({}).",
                relative(seconds),
                field(status, "/trust/refresh/next_attempt")
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "<div class=\"state bad\" id=\"state\">Not serving: every request is refused. {}.{next}</div>",
            field(status, "/trust/refusal").trim_end_matches('.')
        );
    }
}

fn refusals(out: &mut String, status: &Value) {
    let recent = status
        .pointer("/refusals/recent")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let total = unsigned(status, "/refusals/total");
    let _ = writeln!(
        out,
        "<h2 id=\"refusals\">Refusals</h2>\n<p class=\"muted\">{total} since start{}.</p>",
        if total > recent.len() as u64 {
            format!(", the last {} here, newest first", recent.len())
        } else if total > 0 {
            ", newest first".to_owned()
        } else {
            String::new()
        }
    );
    for refused in recent {
        let text = |key: &str| refused.get(key).and_then(Value::as_str).unwrap_or("");
        let (name, version) = (
            text("crate"),
            refused.get("version").and_then(Value::as_str),
        );
        let title = match version {
            Some(version) => format!("{} {}", escape(name), escape(version)),
            None => escape(name),
        };
        let target = match version {
            Some(version) if linkable(name) && linkable(version) => {
                Some(format!("/explain/{name}/{version}"))
            }
            None if linkable(name) => Some(format!("/explain/{name}")),
            _ => None,
        };
        let title = match target {
            Some(href) => format!("<a href=\"{}\">{title}</a>", escape(&href)),
            None => format!("<b>{title}</b>"),
        };
        let fix = match refused.get("fix").and_then(Value::as_str) {
            Some(fix) => format!("<div class=\"fix\">Fix: <code>{}</code></div>", escape(fix)),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "<div class=\"refusal\"><div class=\"head\">{title} <span class=\"tag\">{} {}</span> \
             <span class=\"tag\">{}</span> <time>{}</time></div>\
             <pre class=\"reason\">{}</pre>{fix}</div>",
            escape(text("asked")),
            refused.get("status").and_then(Value::as_u64).unwrap_or(0),
            escape(&text("by").replace('_', " ")),
            escape(text("time")),
            escape(text("reason")),
        );
    }
}

fn trust(out: &mut String, status: &Value) {
    out.push_str("<h2 id=\"trust\">Trusted metadata</h2>\n<div class=\"scroll\"><table>\n");
    out.push_str("<tr><th>role</th><th>version</th><th>expires</th><th></th></tr>\n");
    let roles = status
        .pointer("/trust/roles")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if roles.is_empty() {
        out.push_str("<tr><td colspan=\"4\">none trusted yet</td></tr>\n");
    }
    for role in roles {
        let expires_in = role
            .get("expires_in_seconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            field(role, "/role"),
            field(role, "/version"),
            field(role, "/expires"),
            if expires_in > 0 {
                relative(expires_in)
            } else {
                format!("<b>expired</b> {}", relative(expires_in))
            }
        );
    }
    out.push_str("</table></div>\n<div class=\"scroll\"><table>\n");
    let next = match number(status, "/trust/refresh/next_attempt_in_seconds") {
        Some(seconds) => format!(
            "{} ({})",
            field(status, "/trust/refresh/next_attempt"),
            relative(seconds)
        ),
        None => "-".into(),
    };
    let rows = [
        ("last refresh", field(status, "/trust/last_refresh")),
        ("next refresh attempt", next),
        (
            "failed attempts in a row",
            field(status, "/trust/refresh/failures_in_a_row"),
        ),
        ("last refresh error", field(status, "/trust/last_error")),
        (
            "lookups cached",
            format!(
                "{} of {} (reused {})",
                field(status, "/trust/lookups_cached"),
                field(status, "/trust/lookups_budget"),
                field(status, "/trust/lookups_reused")
            ),
        ),
    ];
    for (label, shown) in rows {
        let _ = writeln!(out, "<tr><th>{label}</th><td>{shown}</td></tr>");
    }
    if let Some(refused) = status
        .pointer("/trust/roles_refused")
        .and_then(Value::as_array)
    {
        for role in refused.iter().filter_map(Value::as_str) {
            let _ = writeln!(
                out,
                "<tr><th>delegated role refused</th><td>{}</td></tr>",
                escape(role)
            );
        }
    }
    out.push_str("</table></div>\n");
}

fn upstream(out: &mut String, status: &Value) {
    out.push_str(
        "<h2 id=\"upstream\">Upstream</h2>\n<div class=\"scroll\"><table>\n\
         <tr><th>window</th><th>requests</th><th>failed</th><th>error rate</th></tr>\n",
    );
    for (label, key) in [
        ("last minute", "last_minute"),
        ("last 5 minutes", "last_5_minutes"),
        ("last hour", "last_hour"),
    ] {
        let rate = status
            .pointer(&format!("/upstream/{key}/error_rate"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let _ = writeln!(
            out,
            "<tr><td>{label}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1} %</td></tr>",
            unsigned(status, &format!("/upstream/{key}/requests")),
            unsigned(status, &format!("/upstream/{key}/failed")),
            rate * 100.0
        );
    }
    out.push_str("</table></div>\n");
    match status.pointer("/upstream/last_failure") {
        Some(failure) if !failure.is_null() => {
            let _ = writeln!(
                out,
                "<p>Last failure, {} ({}): <code>{}</code></p>",
                field(failure, "/time"),
                field(failure, "/request"),
                field(failure, "/error")
            );
        }
        _ => out.push_str("<p class=\"muted\">No upstream failure since start.</p>\n"),
    }
}

fn caches(out: &mut String, status: &Value) {
    out.push_str(
        "<h2 id=\"caches\">Caches</h2>\n<div class=\"scroll\"><table>\n\
         <tr><th>cache</th><th>use</th><th>of budget</th><th></th></tr>\n",
    );
    let rows = [
        (
            "verified tarballs (disk)",
            "/cache",
            format!(
                "{} tarballs, {} evicted",
                unsigned(status, "/cache/tarballs"),
                unsigned(status, "/cache/evicted")
            ),
        ),
        (
            "verified tarballs (memory)",
            "/tarball_memory",
            format!("{} tarballs", unsigned(status, "/tarball_memory/tarballs")),
        ),
        (
            "filtered index files (memory)",
            "/index_cache",
            format!("{} files", unsigned(status, "/index_cache/files")),
        ),
        (
            "signed index files (memory)",
            "/signed_index_files",
            format!("{} files", unsigned(status, "/signed_index_files/files")),
        ),
    ];
    for (label, at, count) in rows {
        let (bytes, budget) = (
            unsigned(status, &format!("{at}/bytes")),
            unsigned(status, &format!("{at}/budget_bytes")),
        );
        let percent = if budget == 0 {
            0.0
        } else {
            (bytes as f64 / budget as f64 * 100.0).min(100.0)
        };
        let _ = writeln!(
            out,
            "<tr><td>{label}<br><span class=\"muted\">{count}</span></td><td>{}</td><td>{} \
             ({percent:.1} %)</td><td><div class=\"bar\"><span style=\"width:{percent:.1}%\"></span></div></td></tr>",
            size(bytes),
            size(budget),
        );
    }
    out.push_str("</table></div>\n");
    let _ = writeln!(
        out,
        "<p class=\"muted\">Requests in flight: {} (this one included).</p>",
        unsigned(status, "/requests_in_flight")
    );
}

fn policy(out: &mut String, status: &Value) {
    out.push_str("<h2 id=\"policy\">Trust policy</h2>\n");
    let Some(policy) = status.pointer("/policy").filter(|p| !p.is_null()) else {
        out.push_str(
            "<p class=\"muted\">None: everything the registry's TUF repository signed is \
             served.</p>\n",
        );
        return;
    };
    if let Some(Value::String(error)) = policy.get("reload_error") {
        let _ = writeln!(
            out,
            "<div class=\"state warn\">The policy files cannot be loaded as they are now; the \
             policy loaded before stays in force: {}</div>",
            escape(error)
        );
    }
    let _ = writeln!(
        out,
        "<div class=\"scroll\"><table><tr><th>file</th><td>{}</td></tr>\
         <tr><th>generation</th><td>{} (loaded {})</td></tr>\
         <tr><th>developers trusted</th><td>{}</td></tr>\
         <tr><th>exceptions</th><td>{}</td></tr></table></div>",
        field(policy, "/path"),
        field(policy, "/generation"),
        field(policy, "/loaded_at"),
        field(policy, "/developers"),
        field(policy, "/exceptions"),
    );
}

fn counters(out: &mut String, status: &Value) {
    out.push_str("<details><summary>Every counter</summary><div class=\"scroll\"><table>\n");
    for section in ["index", "downloads"] {
        if let Some(fields) = status.get(section).and_then(Value::as_object) {
            for (key, value) in fields {
                let _ = writeln!(
                    out,
                    "<tr><th>{section}.{}</th><td class=\"n\">{}</td></tr>",
                    escape(key),
                    escape(&value.to_string())
                );
            }
        }
    }
    out.push_str("</table></div></details>\n");
}

/// The page for the `/status.json` value `status`.
pub(super) fn render(status: &Value) -> String {
    let serving = status
        .pointer("/trust/serving")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>tuf-verifier: {}</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>tuf-verifier</h1>\n",
        if serving { "serving" } else { "NOT SERVING" }
    );
    state(&mut out, status);
    refusals(&mut out, status);
    trust(&mut out, status);
    upstream(&mut out, status);
    caches(&mut out, status);
    policy(&mut out, status);
    counters(&mut out, status);
    out.push_str(
        "<p class=\"muted\">A cargo source proxy passing on only what the TUF repository \
         signed. The same as JSON: <a href=\"/status.json\">/status.json</a>. Health: \
         <a href=\"/healthz\">/healthz</a>.</p>\n</body></html>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn status(serving: bool) -> Value {
        serde_json::json!({
            "trust": {
                "serving": serving,
                "refusal": if serving { Value::Null } else { "no trusted TUF metadata yet: cannot fetch".into() },
                "roles": [
                    {"role": "root", "version": 2, "expires": "2027-12-01T00:00:00Z", "expires_in_seconds": 31_000_000},
                    {"role": "timestamp", "version": 9, "expires": "2026-12-03T10:00:00Z", "expires_in_seconds": -5},
                ],
                "refresh": {"next_attempt": "2026-12-03T10:00:02.000Z", "next_attempt_in_seconds": 2, "failures_in_a_row": 3, "attempts": []},
                "roles_refused": ["ns-evil: <b>bad signature</b>"],
            },
            "refusals": {"total": 2, "recent": [
                {"time": "2026-12-03T10:00:01.000Z", "asked": "download", "crate": "unclaimed-util",
                 "version": "1.0.0", "status": 403, "by": "policy",
                 "reason": "tuf-verifier refused unclaimed-util 1.0.0: <script>x</script>",
                 "fix": "tuf-verifier policy trust carol --key 7c24"},
                {"time": "2026-12-03T10:00:00.000Z", "asked": "download",
                 "crate": format!("{}… (5000 characters)", "a".repeat(64)), "version": "1.0.0",
                 "status": 403, "by": "tuf", "reason": "invalid crate name", "fix": null},
            ]},
            "upstream": {"last_minute": {"requests": 4, "failed": 1, "error_rate": 0.25},
                         "last_failure": {"time": "t", "request": "index", "error": "timed out"}},
            "cache": {"tarballs": 3, "bytes": 1_572_864, "budget_bytes": 8_589_934_592_u64, "evicted": 0},
            "policy": null,
            "index": {"served": 7},
        })
    }

    #[test]
    fn the_page_leads_with_the_state_and_lists_refusals_escaped_with_their_fixes() {
        let page = render(&status(false));
        let state = page.find("id=\"state\"").unwrap();
        assert!(page[state..].starts_with("id=\"state\">Not serving: every request is refused. no trusted TUF metadata yet: cannot fetch. Next refresh attempt in 2 s"), "{page}");
        assert!(page.contains("<title>tuf-verifier: NOT SERVING</title>"));
        // Refusals come before the details, newest first, the crate linking to explain.
        let refusals = page.find("id=\"refusals\"").unwrap();
        assert!(refusals < page.find("id=\"trust\"").unwrap());
        assert!(page.contains("<p class=\"muted\">2 since start, newest first.</p>"));
        assert!(page.contains(
            "<a href=\"/explain/unclaimed-util/1.0.0\">unclaimed-util 1.0.0</a> <span class=\"tag\">download 403</span> <span class=\"tag\">policy</span>"
        ));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("Fix: <code>tuf-verifier policy trust carol --key 7c24</code>"));
        // A name that is not a crate name is not a link.
        assert!(page.contains(&format!(
            "<b>{}… (5000 characters) 1.0.0</b>",
            "a".repeat(64)
        )));
        assert!(page.contains("ns-evil: &lt;b&gt;bad signature&lt;/b&gt;"));
        assert!(page.contains("<b>expired</b> 5 s ago"));
        assert!(page.contains("in 358 d 19 h"));
        assert!(page.contains("<td class=\"n\">25.0 %</td>"));
        assert!(page.contains("<code>timed out</code>"));
        assert!(page.contains("1.5 MiB</td><td>8.0 GiB (0.0 %)"));
        assert!(page.contains("<tr><th>index.served</th><td class=\"n\">7</td></tr>"));
        // Nothing from elsewhere.
        for external in ["http://", "https://", "<script", "<link", "<img", "@import"] {
            assert!(!page.contains(external), "{external}");
        }
    }

    #[test]
    fn a_serving_proxy_says_so_and_names_a_failing_refresh() {
        let mut value = status(true);
        assert!(render(&value).contains("<div class=\"state ok\" id=\"state\">Serving: cargo gets what the TUF repository signed.</div>"));
        value["trust"]["last_error"] = "connection refused".into();
        value["policy"] = serde_json::json!({"path": "/etc/p.toml", "generation": 2, "reload_error": "line 3: bad"});
        let page = render(&value);
        assert!(page.contains("signed and the trust policy trusts.<br><span class=\"muted\">The last refresh failed; the trusted metadata is served until it expires: connection refused</span>"), "{page}");
        assert!(page.contains("policy loaded before stays in force: line 3: bad"));
    }

    #[test]
    fn spans_sizes_and_links_read_as_people_write_them() {
        assert_eq!(relative(0), "in 0 s");
        assert_eq!(relative(59), "in 59 s");
        assert_eq!(relative(61), "in 1 min 1 s");
        assert_eq!(relative(-7_200), "2 h 0 min ago");
        assert_eq!(relative(90_000), "in 1 d 1 h");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert!(linkable("serde_json") && linkable("1.0.0-rc.1+build"));
        assert!(!linkable("a/b") && !linkable("") && !linkable(&"a".repeat(65)));
    }
}
