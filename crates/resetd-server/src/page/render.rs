//! The hosted page's templates, strings and static assets: [`Pages`].
//!
//! Pages are minijinja templates with no words in them; every sentence comes from a per-language
//! string table (`strings/{lang}.json`), so English and German (built in) and any language an
//! operator adds work the same way. An operator can override any of it with files in the
//! `page.templates_dir` directory:
//!
//! ```text
//! {dir}/{tenant}/{lang}/{page}.html     {dir}/{tenant}/strings/{lang}.json
//! {dir}/{tenant}/{page}.html            {dir}/strings/{lang}.json
//! {dir}/{lang}/{page}.html              {dir}/assets/page.css, {dir}/assets/page.js
//! {dir}/{page}.html                   {dir}/assets/favicon.svg
//! ```
//!
//! `page` is `layout`, `reset_form`, `reset_gone`, `reset_done`, `forgot_form`, `forgot_sent` or
//! `error`. Templates are looked up most specific first, then the built-in one. String tables are
//! merged key by key: English (built-in, then global, then the tenant's), then the chosen
//! language the same way, so a partial table falls back to English. A string file for a language
//! resetd does not ship (`fr.json`) makes that language available. Everything is read, compiled
//! and rendered once with sample values when the pages are built, so a broken file stops
//! start-up instead of a page.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, Value};
use resetd_mail::render::html_formatter;

/// The page templates; `layout` is the frame the others extend.
pub const PAGES: [&str; 7] = [
    "layout",
    "reset_form",
    "reset_gone",
    "reset_done",
    "forgot_form",
    "forgot_sent",
    "error",
];

const BUILTIN_TEMPLATES: [(&str, &str); 7] = [
    ("layout", include_str!("../../page/templates/layout.html")),
    (
        "reset_form",
        include_str!("../../page/templates/reset_form.html"),
    ),
    (
        "reset_gone",
        include_str!("../../page/templates/reset_gone.html"),
    ),
    (
        "reset_done",
        include_str!("../../page/templates/reset_done.html"),
    ),
    (
        "forgot_form",
        include_str!("../../page/templates/forgot_form.html"),
    ),
    (
        "forgot_sent",
        include_str!("../../page/templates/forgot_sent.html"),
    ),
    ("error", include_str!("../../page/templates/error.html")),
];

/// Built-in string tables; the first is the fallback for missing keys and languages.
const BUILTIN_STRINGS: [(&str, &str); 2] = [
    ("en", include_str!("../../page/strings/en.json")),
    ("de", include_str!("../../page/strings/de.json")),
];

/// The fallback language.
pub const FALLBACK_LANGUAGE: &str = "en";

const BUILTIN_CSS: &str = include_str!("../../page/assets/page.css");
const BUILTIN_JS: &str = include_str!("../../page/assets/page.js");
const BUILTIN_ICON: &str = include_str!("../../page/assets/favicon.svg");

/// Largest override file accepted.
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// How to build the pages.
#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    /// Directory of overrides (see the module documentation).
    pub templates_dir: Option<PathBuf>,
    /// Product name shown in the page header and titles.
    pub product_name: String,
    /// A support contact shown in the footer, when set.
    pub support_contact: Option<String>,
}

/// Why the pages could not be built: which file, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    /// The offending file (for built-ins, `builtin/...`).
    pub path: PathBuf,
    /// What is wrong, for the operator.
    pub reason: String,
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page template {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for PageError {}

/// A static file the pages link to.
#[derive(Debug, Clone)]
pub struct Asset {
    /// The content.
    pub body: Arc<str>,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// A short fingerprint of the content, appended to links so long caching is safe.
    pub version: String,
}

/// One language's strings, merged from every layer.
pub type Strings = Arc<BTreeMap<String, String>>;

/// The compiled pages, string tables and assets.
pub struct Pages {
    env: Environment<'static>,
    /// Relative paths of the override templates loaded (`tenant/lang/page.html`, ...).
    overrides: HashSet<String>,
    /// Merged strings by scope (`""` for every tenant, else a tenant with its own tables) and language.
    strings: HashMap<String, BTreeMap<String, Strings>>,
    css: Asset,
    js: Asset,
    icon: Asset,
    product_name: String,
    support_contact: Option<String>,
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("overrides", &self.overrides.len())
            .field("scopes", &self.strings.len())
            .finish()
    }
}

/// Raw string tables as read: scope -> language -> table.
type RawStrings = HashMap<String, HashMap<String, BTreeMap<String, String>>>;

impl Pages {
    /// The built-in pages with the product name `resetd`.
    #[allow(
        clippy::expect_used,
        reason = "the built-in templates are compiled in and checked by this crate's tests"
    )]
    pub fn builtin() -> Self {
        Self::load(PageOptions {
            templates_dir: None,
            product_name: "resetd".into(),
            support_contact: None,
        })
        .expect("the built-in page templates are valid")
    }

    /// Builds the pages, reading and checking every override under `options.templates_dir`.
    pub fn load(options: PageOptions) -> Result<Self, PageError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_filter("fill", fill);
        env.set_formatter(html_formatter);
        for (page, source) in BUILTIN_TEMPLATES {
            env.add_template_owned(builtin_name(page), source)
                .map_err(|e| PageError {
                    path: PathBuf::from("builtin").join(format!("{page}.html")),
                    reason: e.to_string(),
                })?;
        }
        let mut raw: RawStrings = HashMap::new();
        for (lang, json) in BUILTIN_STRINGS {
            let table = parse_strings(json, Path::new("builtin/strings"))?;
            raw.entry(String::new())
                .or_default()
                .insert(lang.to_owned(), table);
        }
        let mut overrides = HashSet::new();
        let mut override_strings: RawStrings = HashMap::new();
        let mut css = asset(BUILTIN_CSS.into(), "text/css; charset=utf-8");
        let mut js = asset(BUILTIN_JS.into(), "text/javascript; charset=utf-8");
        let mut icon = asset(BUILTIN_ICON.into(), "image/svg+xml");
        if let Some(dir) = &options.templates_dir {
            for (rel, path) in collect_files(dir)? {
                let text = read_file(&path)?;
                let parts: Vec<&str> = rel.split('/').collect();
                match parts.as_slice() {
                    ["assets", "page.css"] => css = asset(text.into(), css.content_type),
                    ["assets", "page.js"] => js = asset(text.into(), js.content_type),
                    ["assets", "favicon.svg"] => icon = asset(text.into(), icon.content_type),
                    [scope @ .., "strings", file] if scope.len() <= 1 => {
                        let lang = file.strip_suffix(".json").filter(|l| is_language(l));
                        let Some(lang) = lang else {
                            return Err(PageError {
                                path,
                                reason: "string files are named after a language, e.g. fr.json"
                                    .into(),
                            });
                        };
                        let table = parse_strings(&text, &path)?;
                        override_strings
                            .entry(scope.first().map(|s| s.to_string()).unwrap_or_default())
                            .or_default()
                            .insert(lang.to_owned(), table);
                    }
                    [.., file] if page_of(file).is_some() && parts.len() <= 3 => {
                        env.add_template_owned(override_name(&rel), text)
                            .map_err(|e| PageError {
                                path: path.clone(),
                                reason: e.to_string(),
                            })?;
                        overrides.insert(rel);
                    }
                    _ => tracing::warn!(
                        path = %path.display(),
                        "ignoring a file in the page template directory: expected PAGE.html, \
                         strings/LANG.json or assets/page.css|page.js|favicon.svg"
                    ),
                }
            }
        }
        let strings = merge_strings(&raw[""], &override_strings);
        let pages = Self {
            env,
            overrides,
            strings,
            css,
            js,
            icon,
            product_name: options.product_name,
            support_contact: options.support_contact,
        };
        pages.check_all(options.templates_dir.as_deref())?;
        Ok(pages)
    }

    /// The languages a tenant's pages can be shown in.
    pub fn languages(&self, tenant: &str) -> impl Iterator<Item = &str> + Clone {
        self.scope(tenant).keys().map(String::as_str)
    }

    #[allow(
        clippy::expect_used,
        reason = "load always inserts the global scope \"\""
    )]
    fn scope(&self, tenant: &str) -> &BTreeMap<String, Strings> {
        self.strings
            .get(tenant)
            .or_else(|| self.strings.get(""))
            .expect("the global strings scope always exists")
    }

    /// The strings of `lang` for `tenant` (the fallback language when `lang` is unknown).
    pub fn strings(&self, tenant: &str, lang: &str) -> Strings {
        let scope = self.scope(tenant);
        scope
            .get(lang)
            .or_else(|| scope.get(FALLBACK_LANGUAGE))
            .cloned()
            .unwrap_or_default()
    }

    /// The stylesheet, script or icon by file name.
    pub fn asset(&self, file: &str) -> Option<&Asset> {
        match file {
            "page.css" => Some(&self.css),
            "page.js" => Some(&self.js),
            "favicon.svg" => Some(&self.icon),
            _ => None,
        }
    }

    /// The template name for `page`, most specific override first.
    fn resolve(&self, tenant: &str, lang: &str, page: &str) -> String {
        let file = format!("{page}.html");
        let candidates = [
            format!("{tenant}/{lang}/{file}"),
            format!("{tenant}/{file}"),
            format!("{lang}/{file}"),
            file.clone(),
        ];
        let skip = if tenant.is_empty() { 2 } else { 0 };
        match candidates
            .into_iter()
            .skip(skip)
            .find(|c| self.overrides.contains(c))
        {
            Some(found) => override_name(&found),
            None => builtin_name(page),
        }
    }

    /// Renders `page` for `tenant` (`""` when unknown) in `lang`, with `extra` merged into the
    /// common context (strings as `t`, `lang`, `tenant`, `product_name`, `support_contact`,
    /// `css_href`, `js_href`, `icon_href`, `layout`). `base` is the path of the public URL (`""` at the root),
    /// which every link starts with.
    pub fn render(
        &self,
        base: &str,
        tenant: &str,
        lang: &str,
        page: &str,
        extra: Value,
    ) -> Result<String, String> {
        let strings = self.strings(tenant, lang);
        let common = minijinja::context! {
            t => Value::from_serialize(&*strings),
            lang => lang,
            tenant => tenant,
            product_name => self.product_name.as_str(),
            support_contact => self.support_contact.as_deref(),
            css_href => format!("{base}/assets/page.css?v={}", self.css.version),
            js_href => format!("{base}/assets/page.js?v={}", self.js.version),
            icon_href => format!("{base}/assets/favicon.svg?v={}", self.icon.version),
            layout => self.resolve(tenant, lang, "layout"),
        };
        let name = self.resolve(tenant, lang, page);
        self.env
            .get_template(&name)
            .and_then(|t| t.render(minijinja::context! { ..extra, ..common }))
            .map_err(|e| format!("template {name}: {e:#}"))
    }

    /// Renders every page once for every tenant and language that has overrides, with sample
    /// values, so errors that only show when rendering (an unknown filter, a missing layout) stop
    /// start-up. Errors name the override file when one is involved.
    fn check_all(&self, dir: Option<&Path>) -> Result<(), PageError> {
        let mut combos: BTreeSet<(String, String)> = BTreeSet::new();
        for (scope, tables) in &self.strings {
            for lang in tables.keys() {
                combos.insert((scope.clone(), lang.clone()));
            }
        }
        for rel in &self.overrides {
            match rel.split('/').collect::<Vec<_>>().as_slice() {
                [t, l, _] => {
                    combos.insert((t.to_string(), l.to_string()));
                }
                [x, _] => {
                    combos.insert((x.to_string(), FALLBACK_LANGUAGE.to_owned()));
                    combos.insert((String::new(), x.to_string()));
                }
                _ => {}
            }
        }
        for (tenant, lang) in combos {
            for page in PAGES.iter().filter(|p| **p != "layout") {
                self.render("", &tenant, &lang, page, sample_context())
                    .map_err(|reason| {
                        let name = self.resolve(&tenant, &lang, page);
                        let layout = self.resolve(&tenant, &lang, "layout");
                        // Blame the page's own override, else the layout's, else the built-in.
                        let blamed = [name, layout]
                            .into_iter()
                            .find_map(|n| n.strip_prefix("override/").map(str::to_owned));
                        let path = match (blamed, dir) {
                            (Some(rel), Some(d)) => d.join(rel),
                            _ => PathBuf::from("builtin").join(format!("{page}.html")),
                        };
                        PageError { path, reason }
                    })?;
            }
        }
        Ok(())
    }
}

/// Values for every variable any page uses, for the start-up check.
fn sample_context() -> Value {
    minijinja::context! {
        login => "sample",
        min_length => 8,
        expires_in_minutes => 30,
        cooldown_secs => 60,
        csrf => "0123456789abcdef",
        action => "/reset/default",
        check_url => "/v1/default/password/check",
        forgot_url => "/forgot/default",
        errors => vec![minijinja::context! { field => "password", message => "Sample error." }],
        password_errors => vec!["Sample error."],
        confirm_errors => vec!["Sample error."],
        login_errors => vec!["Sample error."],
        reason => "gone",
        heading => "Sample heading",
        message => "Sample message.",
        back_url => "/forgot/default",
        back_label => "Back",
    }
}

/// `{{ t.key|fill(name=value) }}` replaces `{name}` in a string with `value`.
fn fill(text: String, args: Kwargs) -> Result<String, minijinja::Error> {
    let mut out = text;
    for key in args.args() {
        let value: Value = args.get(key)?;
        out = out.replace(&format!("{{{key}}}"), &value.to_string());
    }
    args.assert_all_used()?;
    Ok(out)
}

fn asset(body: Arc<str>, content_type: &'static str) -> Asset {
    // FNV-1a: only needs to change when the content does.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Asset {
        body,
        content_type,
        version: format!("{h:016x}")[..12].to_owned(),
    }
}

/// Merges string tables into one complete table per scope and language (see the module docs).
fn merge_strings(
    builtin: &HashMap<String, BTreeMap<String, String>>,
    overrides: &RawStrings,
) -> HashMap<String, BTreeMap<String, Strings>> {
    let global = overrides.get("").cloned().unwrap_or_default();
    let mut scopes: BTreeSet<String> = overrides.keys().cloned().collect();
    scopes.insert(String::new());
    let mut out = HashMap::new();
    for scope in scopes {
        let tenant = overrides.get(&scope).filter(|_| !scope.is_empty());
        let layers = |lang: &str| -> Vec<Option<&BTreeMap<String, String>>> {
            vec![
                builtin.get(lang),
                global.get(lang),
                tenant.and_then(|t| t.get(lang)),
            ]
        };
        let mut langs: BTreeSet<String> = builtin.keys().cloned().collect();
        langs.extend(global.keys().cloned());
        if let Some(t) = tenant {
            langs.extend(t.keys().cloned());
        }
        let mut tables = BTreeMap::new();
        for lang in langs {
            let mut merged = BTreeMap::new();
            for layer in layers(FALLBACK_LANGUAGE)
                .into_iter()
                .chain(layers(&lang))
                .flatten()
            {
                merged.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            tables.insert(lang, Arc::new(merged));
        }
        out.insert(scope, tables);
    }
    out
}

fn parse_strings(json: &str, path: &Path) -> Result<BTreeMap<String, String>, PageError> {
    serde_json::from_str(json).map_err(|e| PageError {
        path: path.to_owned(),
        reason: format!("a string table is a JSON object of strings: {e}"),
    })
}

/// Whether `s` looks like a language subtag (`en`, `de`, `fil`).
pub fn is_language(s: &str) -> bool {
    (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
}

fn page_of(file: &str) -> Option<&'static str> {
    let stem = file.strip_suffix(".html")?;
    PAGES.iter().copied().find(|p| *p == stem)
}

fn builtin_name(page: &str) -> String {
    format!("builtin/{page}.html")
}

fn override_name(rel: &str) -> String {
    format!("override/{rel}")
}

fn read_file(path: &Path) -> Result<String, PageError> {
    let err = |reason: String| PageError {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    std::fs::read_to_string(path).map_err(|e| err(e.to_string()))
}

/// Every file below `root` (three levels at most), as `(relative path with '/', full path)`.
fn collect_files(root: &Path) -> Result<Vec<(String, PathBuf)>, PageError> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_owned(), 1usize)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| PageError {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let meta = std::fs::metadata(&path).map_err(|e| PageError {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if meta.is_dir() {
                if depth < 3 {
                    stack.push((path, depth + 1));
                } else {
                    tracing::warn!(path = %path.display(), "ignoring a directory nested too deep for page overrides");
                }
            } else if let Ok(rel) = path.strip_prefix(root) {
                let rel: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
                out.push((rel.join("/"), path.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(p: &Pages, tenant: &str, lang: &str, page: &str) -> String {
        p.render("", tenant, lang, page, sample_context()).unwrap()
    }

    #[test]
    fn builtin_pages_render_in_english_and_german() {
        let p = Pages::builtin();
        let en = render(&p, "default", "en", "reset_form");
        assert!(en.contains("<html lang=\"en\">"), "{en}");
        assert!(en.contains("Choose a new password"));
        let de = render(&p, "default", "de", "reset_form");
        assert!(de.contains("<html lang=\"de\">"));
        assert!(de.contains("Neues Passwort wählen"));
        assert_eq!(p.languages("default").collect::<Vec<_>>(), ["de", "en"]);
        // An unknown language falls back to English strings.
        assert!(
            render(&p, "default", "xx", "reset_done").contains("Your password has been changed")
        );
    }

    /// Issue 15 item 7: the confirmation says that a second email can take up to the tenant's
    /// cool-down (the same text for every account), and nothing when there is none.
    #[test]
    fn the_sent_page_names_the_cool_down() {
        let p = Pages::builtin();
        let sent = |lang: &str, cooldown_secs: i64| {
            p.render(
                "",
                "default",
                lang,
                "forgot_sent",
                minijinja::context! { cooldown_secs => cooldown_secs, ..sample_context() },
            )
            .unwrap()
        };
        let en = sent("en", 60);
        assert!(
            en.contains("at most one email per account every 60 seconds, so a second email can take up to 60 seconds"),
            "{en}"
        );
        assert!(sent("en", 300).contains("can take up to 5 minutes"));
        assert!(sent("en", 121).contains("can take up to 3 minutes"));
        assert!(!sent("en", 0).contains("at most one email"));
        let de = sent("de", 90);
        assert!(
            de.contains("höchstens eine E-Mail pro Konto alle 90 Sekunden"),
            "{de}"
        );
        assert!(sent("de", 600).contains("bis zu 10 Minuten"));
    }

    #[test]
    fn both_languages_have_every_key() {
        let en: BTreeMap<String, String> = serde_json::from_str(BUILTIN_STRINGS[0].1).unwrap();
        let de: BTreeMap<String, String> = serde_json::from_str(BUILTIN_STRINGS[1].1).unwrap();
        assert_eq!(en.keys().collect::<Vec<_>>(), de.keys().collect::<Vec<_>>());
    }

    #[test]
    fn values_are_escaped() {
        let p = Pages::builtin();
        let html = p
            .render(
                "/base",
                "default",
                "en",
                "reset_form",
                minijinja::context! { login => "<script>x</script>\"", ..sample_context() },
            )
            .unwrap();
        assert!(!html.contains("<script>x"));
        assert!(html.contains("href=\"/base/assets/page.css?v="));
        assert!(html.contains("&lt;script&gt;x"));
    }

    #[test]
    fn overrides_by_tenant_and_language_and_new_languages() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("acme/de")).unwrap();
        std::fs::create_dir_all(d.join("strings")).unwrap();
        std::fs::create_dir_all(d.join("acme/strings")).unwrap();
        std::fs::create_dir_all(d.join("assets")).unwrap();
        std::fs::write(
            d.join("acme/de/reset_done.html"),
            "{% extends layout %}{% block main %}ACME-DE {{ t.done_heading }}{% endblock %}",
        )
        .unwrap();
        std::fs::write(
            d.join("strings/fr.json"),
            r#"{"done_heading": "Mot de passe changé"}"#,
        )
        .unwrap();
        std::fs::write(
            d.join("acme/strings/en.json"),
            r#"{"done_heading": "All set, ACME"}"#,
        )
        .unwrap();
        std::fs::write(d.join("assets/page.css"), "body{color:red}").unwrap();
        let p = Pages::load(PageOptions {
            templates_dir: Some(d.to_owned()),
            product_name: "ACME".into(),
            support_contact: Some("help@acme.test".into()),
        })
        .unwrap();
        assert!(
            render(&p, "acme", "de", "reset_done").contains("ACME-DE Ihr Passwort wurde geändert")
        );
        assert!(!render(&p, "other", "de", "reset_done").contains("ACME-DE"));
        assert!(render(&p, "acme", "en", "reset_done").contains("All set, ACME"));
        assert!(render(&p, "other", "en", "reset_done").contains("Your password has been changed"));
        let fr = render(&p, "other", "fr", "reset_done");
        assert!(fr.contains("Mot de passe changé"), "{fr}");
        // Missing French keys fall back to English.
        assert!(fr.contains("You can close this page."));
        assert!(fr.contains("help@acme.test"));
        assert!(p.languages("other").any(|l| l == "fr"));
        assert_eq!(&*p.asset("page.css").unwrap().body, "body{color:red}");
    }

    #[test]
    fn a_broken_override_stops_loading_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reset_form.html"), "{% if %}").unwrap();
        let e = Pages::load(PageOptions {
            templates_dir: Some(dir.path().to_owned()),
            ..PageOptions::default()
        })
        .unwrap_err();
        assert!(e.path.ends_with("reset_form.html"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("strings")).unwrap();
        std::fs::write(dir.path().join("strings/de.json"), "[1]").unwrap();
        assert!(Pages::load(PageOptions {
            templates_dir: Some(dir.path().to_owned()),
            ..PageOptions::default()
        })
        .is_err());
        // An unknown filter only fails when rendering: still an error at start-up.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("acme")).unwrap();
        std::fs::write(
            dir.path().join("acme/layout.html"),
            "{{ product_name|nosuchfilter }}",
        )
        .unwrap();
        let e = Pages::load(PageOptions {
            templates_dir: Some(dir.path().to_owned()),
            ..PageOptions::default()
        })
        .unwrap_err();
        assert!(e.path.ends_with("acme/layout.html"), "{e}");
    }
}
