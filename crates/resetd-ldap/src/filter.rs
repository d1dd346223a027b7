//! The search filters of a tenant, with the person's input put in as an escaped value
//! (RFC 4515 3): a login like `*)(uid=*` must match nothing, never widen the filter.

/// A filter with one placeholder (`{login}` or `{email}`), checked at start-up.
#[derive(Debug, Clone)]
pub(crate) struct FilterTemplate {
    template: String,
    placeholder: &'static str,
}

impl FilterTemplate {
    /// Checks that the filter has the placeholder and parses as an LDAP filter with a value in
    /// it, so that a typo stops the start instead of failing every search.
    pub(crate) fn parse(
        field: &str,
        template: &str,
        placeholder: &'static str,
    ) -> Result<Self, String> {
        if !template.contains(placeholder) {
            return Err(format!("{field}: must contain {placeholder}"));
        }
        let checked = Self {
            template: template.to_owned(),
            placeholder,
        };
        if ldap3::parse_filter(checked.render("sample")).is_err() {
            return Err(format!(
                "{field}: {template:?} is not an LDAP filter (RFC 4515)"
            ));
        }
        Ok(checked)
    }

    /// The filter for one value, escaped.
    pub(crate) fn render(&self, value: &str) -> String {
        self.template
            .replace(self.placeholder, &ldap3::ldap_escape(value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn login() -> FilterTemplate {
        FilterTemplate::parse(
            "login_filter",
            "(&(objectClass=inetOrgPerson)(uid={login}))",
            "{login}",
        )
        .unwrap()
    }

    #[test]
    fn values_are_escaped() {
        let f = login();
        assert_eq!(
            f.render("*)(uid=*"),
            "(&(objectClass=inetOrgPerson)(uid=\\2a\\29\\28uid=\\2a))"
        );
        assert_eq!(
            f.render("a\\b\0c"),
            "(&(objectClass=inetOrgPerson)(uid=a\\5cb\\00c))"
        );
        // Still one equality match after escaping, whatever the input.
        for hostile in ["*", ")(|(uid=*", "\\", "a)(objectClass=*"] {
            assert!(ldap3::parse_filter(f.render(hostile)).is_ok(), "{hostile}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let f = FilterTemplate::parse(
            "email_filter",
            "(|(mail={email})(alias={email}))",
            "{email}",
        )
        .unwrap();
        assert_eq!(f.render("a@b"), "(|(mail=a@b)(alias=a@b))");
    }

    #[test]
    fn bad_templates() {
        assert!(FilterTemplate::parse("f", "(uid=x)", "{login}").is_err());
        assert!(FilterTemplate::parse("f", "(uid={login}", "{login}").is_err());
        assert!(FilterTemplate::parse("f", "uid={login}))", "{login}").is_err());
    }
}
