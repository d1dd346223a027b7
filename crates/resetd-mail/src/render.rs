//! Email templates: [`TemplateRenderer`] implements the core's [`Renderer`] port with minijinja.
//!
//! Built-in templates exist for English (`en`, the fallback) and German (`de`). An operator can
//! override any part of any message with files in an override directory:
//!
//! ```text
//! {dir}/{tenant}/{client}/{locale}/{kind}.{part}
//! {dir}/{tenant}/{locale}/{kind}.{part}
//! {dir}/{tenant}/{kind}.{part}
//! {dir}/{locale}/{kind}.{part}
//! {dir}/{kind}.{part}
//! ```
//!
//! where `kind` is `reset_link` or `password_changed` and `part` is `subject.txt`, `text.txt` or
//! `html`. Each part is looked up on its own in that order (most specific first; the last line
//! applies to every tenant and locale), then the built-in template in the locale's language, then
//! the English built-in. For a message that speaks for a vendor product ([`Branding`]: an email
//! asked for through a dialect) the built-ins are that product's (`brands/{brand}/{lang}/`), and
//! `product_name` is the product's, so every operator file still wins over them. A tenant named
//! like a locale (`de`) shares its directory with that locale. `{locale}` may be the full tag as
//! the message's locale spells it (`de-CH`) or its language (`de`); the full tag wins. All files
//! are read and compiled when the renderer is built, so a broken template stops start-up rather
//! than an email.
//!
//! Templates see `name`, `login`, `link` (reset emails only), `expires_in_minutes`,
//! `support_contact` (may be none), `product_name`, `tenant`, `client` and `locale`. HTML templates
//! are auto-escaped; subjects are flattened to one line.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::{context, AutoEscape, Environment};
use resetd_core::model::MessageKind;
use resetd_core::render::{MessageContext, Rendered, Renderer};

use crate::brand::{Brand, Branding};

/// The template parts of one message.
const PARTS: [&str; 3] = ["subject.txt", "text.txt", "html"];

/// Languages with built-in templates; the first is the fallback.
const BUILTIN_LANGUAGES: [&str; 2] = ["en", "de"];

/// Largest override file accepted.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

/// How deep override files may sit below the directory (`tenant/client/locale/file`).
const MAX_DEPTH: usize = 4;

/// The six parts of both messages in the template directory `$dir` (relative to `templates/`).
macro_rules! message_parts {
    ($dir:literal) => {
        [
            (
                concat!($dir, "reset_link.subject.txt"),
                include_str!(concat!("../templates/", $dir, "reset_link.subject.txt")),
            ),
            (
                concat!($dir, "reset_link.text.txt"),
                include_str!(concat!("../templates/", $dir, "reset_link.text.txt")),
            ),
            (
                concat!($dir, "reset_link.html"),
                include_str!(concat!("../templates/", $dir, "reset_link.html")),
            ),
            (
                concat!($dir, "password_changed.subject.txt"),
                include_str!(concat!(
                    "../templates/",
                    $dir,
                    "password_changed.subject.txt"
                )),
            ),
            (
                concat!($dir, "password_changed.text.txt"),
                include_str!(concat!("../templates/", $dir, "password_changed.text.txt")),
            ),
            (
                concat!($dir, "password_changed.html"),
                include_str!(concat!("../templates/", $dir, "password_changed.html")),
            ),
        ]
    };
}

/// The built-in templates, `(path below templates/, source)`: resetd's own per language, then
/// each product's ([`Brand`]) per language, at `brands/{brand}/{lang}/`.
const BUILTIN: [[(&str, &str); 6]; 12] = [
    message_parts!("en/"),
    message_parts!("de/"),
    message_parts!("brands/alfresco/en/"),
    message_parts!("brands/alfresco/de/"),
    message_parts!("brands/crafter/en/"),
    message_parts!("brands/crafter/de/"),
    message_parts!("brands/empowerid/en/"),
    message_parts!("brands/empowerid/de/"),
    message_parts!("brands/payabli/en/"),
    message_parts!("brands/payabli/de/"),
    message_parts!("brands/unleash/en/"),
    message_parts!("brands/unleash/de/"),
];

/// Every built-in template, `(path below templates/, source)`.
fn builtins() -> impl Iterator<Item = (&'static str, &'static str)> {
    BUILTIN.iter().flatten().copied()
}

/// Why the templates could not be loaded: which file, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The offending file or directory (for built-ins, `builtin/{lang}/{file}`).
    pub path: PathBuf,
    /// What is wrong, for the operator.
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "email template {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for TemplateError {}

/// Renders emails from built-in templates and optional per-tenant, per-client, per-locale overrides.
pub struct TemplateRenderer {
    env: Environment<'static>,
    /// Relative paths (with `/`) of the override files that were loaded.
    overrides: HashSet<String>,
    support_contact: Option<String>,
    product_name: String,
    branding: Branding,
}

impl fmt::Debug for TemplateRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateRenderer")
            .field("overrides", &self.overrides.len())
            .field("support_contact", &self.support_contact)
            .field("product_name", &self.product_name)
            .field("branding", &self.branding)
            .finish()
    }
}

impl TemplateRenderer {
    /// Builds the renderer, reading and compiling every override under `override_dir` (if given).
    ///
    /// `support_contact` (an address or URL) is shown in both emails when set; `product_name` names
    /// the service in subjects and bodies. Fails with the file and reason when an override cannot be
    /// read, does not compile, or fails to render with sample values.
    pub fn new(
        override_dir: Option<PathBuf>,
        support_contact: Option<String>,
        product_name: String,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(html_formatter);
        for (file, source) in builtins() {
            env.add_template_owned(builtin_name(file), source)
                .map_err(|e| TemplateError {
                    path: PathBuf::from("builtin").join(file),
                    reason: e.to_string(),
                })?;
        }
        let mut overrides = HashSet::new();
        if let Some(dir) = &override_dir {
            let mut files = Vec::new();
            collect_files(dir, dir, 1, &mut files)?;
            for (rel, path) in files {
                let source = read_template(&path)?;
                env.add_template_owned(override_name(&rel), source)
                    .map_err(|e| TemplateError {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                overrides.insert(rel);
            }
        }
        let renderer = Self {
            env,
            overrides,
            support_contact,
            product_name,
            branding: Branding::new(),
        };
        renderer.check_all(override_dir.as_deref())?;
        Ok(renderer)
    }

    /// The renderer with `branding`: the messages it assigns to a product get that product's
    /// built-in templates, name and sender, wherever the operator has no template of their own.
    pub fn with_branding(mut self, branding: Branding) -> Self {
        self.branding = branding;
        self
    }

    /// Renders every template once with sample values, so runtime errors (an unknown filter
    /// argument, a bad call) surface at start-up.
    fn check_all(&self, dir: Option<&Path>) -> Result<(), TemplateError> {
        let mut names: Vec<(String, PathBuf)> = builtins()
            .map(|(f, _)| (builtin_name(f), PathBuf::from("builtin").join(f)))
            .collect();
        if let Some(dir) = dir {
            names.extend(
                self.overrides
                    .iter()
                    .map(|rel| (override_name(rel), dir.join(rel))),
            );
        }
        for (name, path) in names {
            let kind = if file_name_of(&name).starts_with("reset_link.") {
                MessageKind::ResetLink
            } else {
                MessageKind::PasswordChanged
            };
            let link = (kind == MessageKind::ResetLink)
                .then_some("https://example.com/reset?token=sample");
            let ctx = self.context_value(
                &self.product_name,
                "default",
                None,
                "en",
                "Sample Name",
                "sample",
                link,
                30,
            );
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| TemplateError {
                    path,
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn context_value(
        &self,
        product_name: &str,
        tenant: &str,
        client: Option<&str>,
        locale: &str,
        name: &str,
        login: &str,
        link: Option<&str>,
        expires_in_minutes: i64,
    ) -> minijinja::Value {
        context! {
            name => name,
            login => login,
            link => link,
            expires_in_minutes => expires_in_minutes,
            support_contact => self.support_contact.as_deref(),
            product_name => product_name,
            tenant => tenant,
            client => client,
            locale => locale,
        }
    }

    /// The template name to use for one part of one message, most specific first: the operator's
    /// files, then the built-in one of the product the message speaks for, then resetd's own.
    fn resolve(&self, ctx: &MessageContext<'_>, brand: Option<Brand>, part: &str) -> String {
        let file = format!("{}.{part}", ctx.kind.as_str());
        let lang = ctx.locale.language();
        let mut locales = vec![ctx.locale.as_str().to_owned()];
        if lang != ctx.locale.as_str() {
            locales.push(lang.clone());
        }
        let tenant = ctx.tenant.as_str();
        let mut candidates = Vec::with_capacity(8);
        if let Some(client) = ctx.client {
            for l in &locales {
                candidates.push(format!("{tenant}/{}/{l}/{file}", client.as_str()));
            }
        }
        for l in &locales {
            candidates.push(format!("{tenant}/{l}/{file}"));
        }
        candidates.push(format!("{tenant}/{file}"));
        for l in &locales {
            candidates.push(format!("{l}/{file}"));
        }
        candidates.push(file);
        if let Some(found) = candidates.into_iter().find(|c| self.overrides.contains(c)) {
            return override_name(&found);
        }
        let builtin_lang = if BUILTIN_LANGUAGES.contains(&lang.as_str()) {
            lang.as_str()
        } else {
            BUILTIN_LANGUAGES[0]
        };
        let dir = match brand {
            Some(b) => format!("brands/{}/{builtin_lang}", b.key()),
            None => builtin_lang.to_owned(),
        };
        builtin_name(&format!("{dir}/{}.{part}", ctx.kind.as_str()))
    }
}

impl Renderer for TemplateRenderer {
    fn render(&self, ctx: &MessageContext<'_>) -> Result<Rendered, String> {
        let brand = self.branding.brand_for(ctx.tenant, ctx.client);
        let product_name = brand.map_or(self.product_name.as_str(), |b| {
            self.branding.product_name(b)
        });
        let value = self.context_value(
            product_name,
            ctx.tenant.as_str(),
            ctx.client.map(|c| c.as_str()),
            ctx.locale.as_str(),
            ctx.name,
            ctx.login,
            ctx.link,
            ctx.expires_in_minutes,
        );
        let render = |part: &str| -> Result<String, String> {
            let name = self.resolve(ctx, brand, part);
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&value))
                .map_err(|e| format!("template {name}: {e}"))
        };
        let subject = one_line(&render("subject.txt")?);
        if subject.is_empty() {
            return Err(format!("the {} subject rendered empty", ctx.kind.as_str()));
        }
        let text = render("text.txt")?;
        let html = render("html")?;
        Ok(Rendered {
            subject,
            text,
            html: Some(html),
            sender_name: brand
                .and_then(|b| self.branding.sender_name(b))
                .map(str::to_owned),
        })
    }
}

/// Escapes strings in HTML templates for text and quoted attributes (`&`, `<`, `>`, `"`, `'`),
/// leaving `/` alone so links stay readable; everything else as minijinja does by default. The
/// hosted page uses it too.
pub fn html_formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(s) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            let mut last = 0;
            for (i, c) in s.char_indices() {
                let entity = match c {
                    '&' => "&amp;",
                    '<' => "&lt;",
                    '>' => "&gt;",
                    '"' => "&quot;",
                    '\'' => "&#39;",
                    _ => continue,
                };
                out.write_str(&s[last..i])?;
                out.write_str(entity)?;
                last = i + c.len_utf8();
            }
            out.write_str(&s[last..])?;
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Flattens a subject to one line: control characters (CR and LF included) become spaces, and runs
/// of white space collapse, so a template cannot inject headers.
fn one_line(s: &str) -> String {
    let replaced: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    replaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn builtin_name(file: &str) -> String {
    format!("builtin/{file}")
}

fn override_name(rel: &str) -> String {
    format!("override/{rel}")
}

fn file_name_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Whether `file` names a template part, e.g. `reset_link.text.txt`.
fn is_template_file(file: &str) -> bool {
    [MessageKind::ResetLink, MessageKind::PasswordChanged]
        .iter()
        .any(|k| {
            file.strip_prefix(k.as_str())
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|p| PARTS.contains(&p))
        })
}

fn io_error(path: &Path, e: std::io::Error) -> TemplateError {
    TemplateError {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Collects `(relative path with '/', full path)` of every template file below `dir`.
fn collect_files(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), TemplateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(path = %path.display(), "ignoring a template override whose name is not UTF-8");
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Follow symbolic links, as operators mount template directories in many ways.
        let meta = std::fs::metadata(&path).map_err(|e| io_error(&path, e))?;
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                collect_files(root, &path, depth + 1, out)?;
            } else {
                tracing::warn!(path = %path.display(), "ignoring a directory nested too deep for template overrides");
            }
        } else if is_template_file(&name) {
            let rel = path.strip_prefix(root).map_err(|_| TemplateError {
                path: path.clone(),
                reason: "outside the template directory".into(),
            })?;
            let rel: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
            out.push((rel.join("/"), path));
        } else {
            tracing::warn!(
                path = %path.display(),
                "ignoring a file in the template directory: expected reset_link or password_changed \
                 with .subject.txt, .text.txt or .html"
            );
        }
    }
    Ok(())
}

fn read_template(path: &Path) -> Result<String, TemplateError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError {
            path: path.to_owned(),
            reason: format!("larger than {MAX_TEMPLATE_BYTES} bytes"),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    String::from_utf8(bytes).map_err(|_| TemplateError {
        path: path.to_owned(),
        reason: "is not UTF-8".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use resetd_core::types::{ClientName, Locale, TenantId};

    const LINK: &str = "https://app.example.com/reset?token=abc123";

    fn render(
        r: &TemplateRenderer,
        kind: MessageKind,
        locale: &str,
        name: &str,
        client: Option<&str>,
    ) -> Rendered {
        let tenant = TenantId::parse("acme").unwrap();
        let locale = Locale::parse(locale).unwrap();
        let client = client.map(|c| ClientName::parse(c).unwrap());
        let ctx = MessageContext {
            tenant: &tenant,
            kind,
            client: client.as_ref(),
            locale: &locale,
            name,
            login: "jdoe",
            link: (kind == MessageKind::ResetLink).then_some(LINK),
            expires_in_minutes: 30,
        };
        r.render(&ctx).unwrap()
    }

    fn builtin(contact: Option<&str>) -> TemplateRenderer {
        TemplateRenderer::new(None, contact.map(str::to_owned), "Acme ID".into()).unwrap()
    }

    #[test]
    fn reset_link_in_english() {
        let r = builtin(Some("help@acme.example"));
        let m = render(&r, MessageKind::ResetLink, "en-GB", "Jane", None);
        assert_eq!(m.subject, "Reset your Acme ID password");
        assert!(m.text.contains(LINK), "{}", m.text);
        assert!(m.text.contains("30 minutes"));
        assert!(m
            .text
            .contains("If you did not ask for this, ignore this email"));
        assert!(m.text.contains("Contact help@acme.example"));
        assert!(m.text.contains("\"jdoe\""));
        let html = m.html.unwrap();
        assert!(html.contains(&format!("href=\"{LINK}\"")), "{html}");
        assert!(html.contains("jdoe"));
        assert!(html.contains("lang=\"en\""));
    }

    #[test]
    fn reset_link_without_support_contact_has_no_contact_line() {
        let m = render(&builtin(None), MessageKind::ResetLink, "en", "Jane", None);
        assert!(!m.text.contains("Questions?"));
        assert!(!m.html.unwrap().contains("Questions?"));
    }

    #[test]
    fn reset_link_in_german() {
        let r = builtin(Some("help@acme.example"));
        let m = render(&r, MessageKind::ResetLink, "de-CH", "Jana", None);
        assert_eq!(m.subject, "Ihr Passwort für Acme ID zurücksetzen");
        assert!(m.text.contains(LINK));
        assert!(m.text.contains("30 Minuten"));
        assert!(m.text.contains("ignorieren Sie diese E-Mail"));
        assert!(m.text.contains("help@acme.example"));
        let html = m.html.unwrap();
        assert!(html.contains("lang=\"de\""));
        assert!(html.contains("jdoe"));
    }

    #[test]
    fn password_changed_in_english_and_german() {
        let r = builtin(Some("help@acme.example"));
        let en = render(&r, MessageKind::PasswordChanged, "en", "Jane", None);
        assert_eq!(en.subject, "Your Acme ID password was changed");
        assert!(en.text.contains("\"jdoe\" was changed"));
        assert!(en.text.contains("contact help@acme.example immediately"));
        assert!(en.html.as_deref().unwrap().contains("jdoe"));
        let de = render(&r, MessageKind::PasswordChanged, "de", "Jana", None);
        assert_eq!(de.subject, "Ihr Passwort für Acme ID wurde geändert");
        assert!(de.text.contains("„jdoe“ wurde geändert"));
        assert!(de.text.contains("sofort an help@acme.example"));
        assert!(de.html.as_deref().unwrap().contains("jdoe"));
        let none = render(
            &builtin(None),
            MessageKind::PasswordChanged,
            "en",
            "Jane",
            None,
        );
        assert!(none.text.contains("contact your support team immediately"));
    }

    #[test]
    fn html_links_keep_their_slashes_and_escape_ampersands() {
        let r = builtin(None);
        let tenant = TenantId::parse("acme").unwrap();
        let locale = Locale::parse("en").unwrap();
        let ctx = MessageContext {
            tenant: &tenant,
            kind: MessageKind::ResetLink,
            client: None,
            locale: &locale,
            name: "Jane",
            login: "jdoe",
            link: Some("https://x.example/r?a=1&token=abc"),
            expires_in_minutes: 1,
        };
        let m = r.render(&ctx).unwrap();
        assert!(m
            .html
            .unwrap()
            .contains("href=\"https://x.example/r?a=1&amp;token=abc\""));
        assert!(m.text.contains("https://x.example/r?a=1&token=abc\n"));
        assert!(m.text.contains("within 1 minute:"));
    }

    #[test]
    fn unknown_languages_fall_back_to_english() {
        let m = render(
            &builtin(None),
            MessageKind::ResetLink,
            "fr-FR",
            "Jeanne",
            None,
        );
        assert_eq!(m.subject, "Reset your Acme ID password");
    }

    #[test]
    fn html_escapes_the_display_name_but_text_keeps_it() {
        let name = "<script>alert(1)</script>";
        let m = render(&builtin(None), MessageKind::ResetLink, "en", name, None);
        let html = m.html.unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(m.text.contains(name));
    }

    fn write(dir: &Path, rel: &str, content: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[test]
    fn subjects_never_contain_newlines() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "reset_link.subject.txt",
            "Hi\r\nBcc: evil@example.com\n{{ name }}\n\n",
        );
        let r = TemplateRenderer::new(Some(dir.path().into()), None, "Acme".into()).unwrap();
        let m = render(&r, MessageKind::ResetLink, "en", "Jane\r\nX-Evil: 1", None);
        assert!(
            !m.subject.contains('\n') && !m.subject.contains('\r'),
            "{:?}",
            m.subject
        );
        assert_eq!(m.subject, "Hi Bcc: evil@example.com Jane X-Evil: 1");
    }

    #[test]
    fn overrides_are_looked_up_most_specific_first() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "acme/share/de/reset_link.subject.txt",
            "tenant+client+locale",
        );
        write(
            d,
            "acme/share/de-CH/reset_link.text.txt",
            "tenant+client+full-locale {{ link }}",
        );
        write(d, "acme/de/reset_link.subject.txt", "tenant+locale");
        write(d, "acme/reset_link.subject.txt", "tenant");
        write(d, "de/reset_link.subject.txt", "locale");
        write(d, "fr/reset_link.subject.txt", "french {{ product_name }}");
        write(d, "acme/password_changed.html", "<b>{{ name }}</b>");
        write(d, "password_changed.subject.txt", "global");
        write(d, "notes.md", "ignored");
        let r = TemplateRenderer::new(Some(d.into()), None, "Acme".into()).unwrap();

        let m = render(&r, MessageKind::ResetLink, "de-CH", "J", Some("share"));
        assert_eq!(m.subject, "tenant+client+locale");
        assert_eq!(m.text, format!("tenant+client+full-locale {LINK}"));
        // The HTML part is not overridden anywhere: the German built-in.
        assert!(m.html.unwrap().contains("lang=\"de\""));

        assert_eq!(
            render(&r, MessageKind::ResetLink, "de", "J", Some("other")).subject,
            "tenant+locale"
        );
        assert_eq!(
            render(&r, MessageKind::ResetLink, "de", "J", None).subject,
            "tenant+locale"
        );
        assert_eq!(
            render(&r, MessageKind::ResetLink, "en", "J", Some("share")).subject,
            "tenant"
        );
        assert_eq!(
            render(&r, MessageKind::ResetLink, "fr", "J", None).subject,
            "tenant"
        );

        let other = TenantId::parse("other").unwrap();
        let de = Locale::parse("de").unwrap();
        let fr = Locale::parse("fr").unwrap();
        let en = Locale::parse("en").unwrap();
        let ctx = |locale| MessageContext {
            tenant: &other,
            kind: MessageKind::ResetLink,
            client: None,
            locale,
            name: "J",
            login: "j",
            link: Some(LINK),
            expires_in_minutes: 5,
        };
        assert_eq!(r.render(&ctx(&de)).unwrap().subject, "locale");
        assert_eq!(r.render(&ctx(&fr)).unwrap().subject, "french Acme");
        assert_eq!(
            r.render(&ctx(&en)).unwrap().subject,
            "Reset your Acme password"
        );
        assert_eq!(
            render(&r, MessageKind::PasswordChanged, "de", "J", None).subject,
            "global"
        );

        // Overridden HTML is still escaped.
        let m = render(&r, MessageKind::PasswordChanged, "en", "<i>x</i>", None);
        assert_eq!(m.html.unwrap(), "<b>&lt;i&gt;x&lt;/i&gt;</b>");
        let m = render(&r, MessageKind::PasswordChanged, "en", "\"'&", None);
        assert_eq!(m.html.unwrap(), "<b>&quot;&#39;&amp;</b>");
    }

    #[test]
    fn broken_templates_fail_at_construction_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "acme/reset_link.html", "{% if %}");
        let err = TemplateRenderer::new(Some(dir.path().into()), None, "Acme".into()).unwrap_err();
        assert!(err.path.ends_with("acme/reset_link.html"), "{err}");
        assert!(err.to_string().contains("reset_link.html"));

        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "acme/reset_link.text.txt",
            "{{ name | no_such_filter }}",
        );
        assert!(TemplateRenderer::new(Some(dir.path().into()), None, "Acme".into()).is_err());

        let missing = dir.path().join("nope");
        let err = TemplateRenderer::new(Some(missing), None, "Acme".into()).unwrap_err();
        assert!(err.path.ends_with("nope"));
    }
}
