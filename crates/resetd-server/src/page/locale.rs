//! Which language a page is shown in: the `locale` query parameter, else the browser's
//! `Accept-Language`, else the tenant's default locale, else English — always one the pages have.

use resetd_core::types::Locale;

/// Longest `Accept-Language` header considered; longer ones are ignored, not parsed.
const MAX_ACCEPT_LANGUAGE: usize = 1024;

/// Most language ranges considered in one header.
const MAX_RANGES: usize = 32;

/// The chosen language and whether the person asked for it explicitly (then links and forms
/// carry `?locale=` so the choice survives the next request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    /// Primary language subtag, e.g. `de`.
    pub lang: String,
    /// The `locale` query parameter, when it named an available language.
    pub explicit: Option<String>,
}

impl Language {
    /// `?locale=xx` when chosen explicitly, else empty: appended to the page's own links.
    pub fn query(&self) -> String {
        self.explicit
            .as_deref()
            .map(|l| format!("?locale={l}"))
            .unwrap_or_default()
    }

    /// The language as a core locale, for the email a forgot-password request sends.
    pub fn locale(&self) -> Option<Locale> {
        Locale::parse(&self.lang).ok()
    }
}

/// Picks the language (see the module documentation); `available` lists the pages' languages.
pub fn negotiate<'a>(
    query: Option<&str>,
    accept_language: Option<&str>,
    tenant_default: Option<&str>,
    available: impl Iterator<Item = &'a str> + Clone,
) -> Language {
    let has = |lang: &str| available.clone().any(|a| a == lang);
    let primary = |tag: &str| Locale::parse(tag).ok().map(|l| l.language());
    if let Some(lang) = query.and_then(primary).filter(|l| has(l)) {
        return Language {
            explicit: Some(lang.clone()),
            lang,
        };
    }
    let from_header = accept_language
        .filter(|h| h.len() <= MAX_ACCEPT_LANGUAGE)
        .and_then(|h| {
            preferences(h)
                .into_iter()
                .filter_map(|tag| primary(&tag))
                .find(|l| has(l))
        });
    let lang = from_header
        .or_else(|| tenant_default.and_then(primary).filter(|l| has(l)))
        .unwrap_or_else(|| super::render::FALLBACK_LANGUAGE.to_owned());
    Language {
        lang,
        explicit: None,
    }
}

/// The language ranges of an `Accept-Language` header, most preferred first (q=0 dropped,
/// equal weights keep their order, `*` ignored).
fn preferences(header: &str) -> Vec<String> {
    let mut ranges: Vec<(u16, usize, String)> = header
        .split(',')
        .take(MAX_RANGES)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            if tag.is_empty() || tag == "*" {
                return None;
            }
            let mut q = 1000u16;
            for p in pieces {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = (v.trim().parse::<f32>().ok()?.clamp(0.0, 1.0) * 1000.0) as u16;
                }
            }
            (q > 0).then(|| (q, i, tag.to_owned()))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.into_iter().map(|(_, _, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVAILABLE: [&str; 2] = ["de", "en"];

    fn pick(q: Option<&str>, h: Option<&str>, d: Option<&str>) -> Language {
        negotiate(q, h, d, AVAILABLE.iter().copied())
    }

    #[test]
    fn query_wins_and_is_carried_on() {
        let l = pick(Some("de-CH"), Some("en"), None);
        assert_eq!(l.lang, "de");
        assert_eq!(l.query(), "?locale=de");
        // An unavailable or malformed choice is ignored.
        assert_eq!(pick(Some("fr"), Some("de"), None).lang, "de");
        assert_eq!(pick(Some("<x>"), None, None).explicit, None);
    }

    #[test]
    fn accept_language_by_weight_then_order() {
        assert_eq!(
            pick(None, Some("fr-FR, de;q=0.8, en;q=0.9"), None).lang,
            "en"
        );
        assert_eq!(pick(None, Some("fr, de-AT, en"), None).lang, "de");
        assert_eq!(pick(None, Some("de;q=0, en;q=0.1"), None).lang, "en");
        assert_eq!(pick(None, Some("*"), Some("de")).lang, "de");
        assert_eq!(pick(None, Some("en-US,en;q=0.9"), Some("de")).lang, "en");
        assert_eq!(pick(None, Some("de;q=nonsense"), None).lang, "en");
    }

    #[test]
    fn tenant_default_then_english() {
        assert_eq!(pick(None, None, Some("de-DE")).lang, "de");
        assert_eq!(pick(None, Some("ja"), Some("fr")).lang, "en");
        assert_eq!(pick(None, Some(&"de,".repeat(1000)), None).lang, "en");
    }
}
