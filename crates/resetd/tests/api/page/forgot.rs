//! The forgot-password form: the same confirmation for every input.

use super::*;

#[tokio::test]
async fn the_forgot_page_always_shows_the_same_confirmation() {
    let s = Server::spawn(&config());
    s.add_person("known", "known@example.com", None).await;
    let mut b = Browser::new(&s);
    b.get("/forgot/default").await;
    let csrf = b.csrf();
    let mut answers = Vec::new();
    for input in [
        "known",
        "known@example.com",
        "unknown",
        "nobody@example.com",
    ] {
        let p = b
            .post(
                "/forgot/default?locale=de",
                &[("login", input), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{input}");
        let mut headers: Vec<(String, String)> = p
            .headers
            .iter()
            .filter(|(k, _)| !["date", "x-request-id"].contains(&k.as_str()))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        answers.push((headers, p.body));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(
        answers[0]
            .0
            .iter()
            .find(|(k, _)| k == "location")
            .unwrap()
            .1,
        "/forgot/default/sent?locale=de"
    );
    let sent = b.get("/forgot/default/sent?locale=de").await;
    assert!(sent.body.contains("Prüfen Sie Ihre E-Mails"));
    assert!(sent.body.contains("30 Minuten"));
    // The known account gets its link (one: the cool-down holds back the second), in the page's language.
    let mails = s.wait_mails("reset_link", "known@example.com", 1).await;
    assert!(
        mails[0].contains("ignorieren Sie diese E-Mail"),
        "{}",
        mails[0]
    );
    let token = token_from_mail(&mails[0]);
    let page = b
        .open_link(&format!("{}/reset/default?token={token}", s.base))
        .await;
    assert_eq!(page.status, 200);
}
