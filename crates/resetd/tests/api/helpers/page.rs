//! The hosted page as a browser sees it: a client that keeps cookies by hand and follows no
//! redirect, so a test sees every answer and every cookie; and the page's forgot form.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use super::Server;

/// A browser-like client that does not follow redirects and keeps cookies by hand, so tests see
/// each answer and each cookie.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: Vec<(String, String)>,
    /// The `Origin` its form posts send.
    pub origin: String,
}

/// One answer of the page.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new(s: &Server) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: s.base.clone(),
            cookies: Vec::new(),
            origin: s.base.clone(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn keep(&mut self, res: reqwest::Response) -> Page {
        for sc in res.headers().get_all(SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let (pair, attrs) = sc.split_once(';').unwrap_or((sc, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path_or_url: &str) -> Page {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let res = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", &self.origin)
            .header("sec-fetch-site", "same-origin")
            .form(fields)
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    /// Opens an emailed link the way a browser does: the link, then the redirect.
    pub async fn open_link(&mut self, link: &str) -> Page {
        let first = self.get(link).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
        let to = first.headers[LOCATION].to_str().unwrap().to_owned();
        self.get(&to).await
    }

    pub fn csrf(&self) -> String {
        self.cookie("resetd_csrf").expect("a CSRF cookie")
    }
}

impl Browser {
    /// Posts the reset form (`/reset/default`): a new password, its confirmation and the CSRF
    /// value.
    pub async fn submit_reset(&mut self, password: &str, confirm: &str, csrf: &str) -> Page {
        self.post(
            "/reset/default",
            &[("password", password), ("confirm", confirm), ("csrf", csrf)],
        )
        .await
    }

    /// The page's forgot form for `login`: opens `/forgot/{tenant}` for its CSRF cookie (unless
    /// it has one) and posts the form, as a person on the page would.
    pub async fn forgot(&mut self, tenant: &str, login: &str) -> Page {
        let path = format!("/forgot/{tenant}");
        if self.cookie("resetd_csrf").is_none() {
            self.get(&path).await;
        }
        let csrf = self.csrf();
        self.post(&path, &[("login", login), ("csrf", &csrf)]).await
    }
}

/// The CSRF value `/forgot/default` sets, read with `http` (for a test that sends the form with a
/// client and headers of its own).
pub async fn forgot_csrf(http: &reqwest::Client, s: &Server) -> String {
    let form = http.get(s.url("/forgot/default")).send().await.unwrap();
    form.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("resetd_csrf="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .next()
        .expect("a CSRF cookie")
}
