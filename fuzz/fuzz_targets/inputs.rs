//! Every checked constructor of a domain type, on arbitrary text: no panic, and what parses is
//! stable (parsing its own output gives the same value) and within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resetd_core::model::LinkTemplate;
use resetd_core::secret::{ApiKeySecret, ResetSecret};
use resetd_core::types::{ClientName, DisplayName, Email, Locale, Login, Password, PersonId, TenantId};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(v) = TenantId::parse(s) {
        assert_eq!(TenantId::parse(v.as_str()).unwrap(), v);
    }
    if let Ok(v) = Login::parse(s) {
        assert_eq!(Login::parse(v.as_str()).unwrap(), v);
        assert!(v.as_str().chars().count() <= 256);
    }
    if let Ok(v) = Email::parse(s) {
        assert_eq!(Email::parse(v.as_str()).unwrap(), v);
        assert!(!v.as_str().contains(['\r', '\n']));
    }
    if let Ok(v) = Password::parse(s) {
        assert!(v.expose().chars().count() <= 256);
    }
    if let Ok(v) = Locale::parse(s) {
        assert_eq!(Locale::parse(v.as_str()).unwrap(), v);
    }
    let _ = ClientName::parse(s);
    let _ = DisplayName::parse(s);
    let _ = PersonId::parse(s);
    if let Ok(t) = LinkTemplate::parse(s) {
        let link = t.render(&TenantId::parse("acme").unwrap(), ResetSecret::generate().expose());
        assert!(link.starts_with("https://") || link.starts_with("http://"));
    }
    if let Ok(t) = ResetSecret::parse(s) {
        assert_eq!(t.expose(), s);
    }
    let _ = ApiKeySecret::parse(s);
});
