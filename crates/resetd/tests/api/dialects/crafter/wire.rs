//! Wire errors in Crafter's `{errorCode, message}` envelope, and the dialect off by default.

use super::*;

#[tokio::test]
async fn wire_errors_keep_the_crafter_envelope() {
    let c = crafter(&["--cooldown", "0"]).await;
    let reset = c.s.url(&format!("{API}/{}/reset_password", c.oid));

    // A JSON body is not how Crafter takes parameters.
    let res =
        c.s.http
            .post(&reset)
            .json(&json!({"accessTokenId": c.key, "resetPasswordUrl": PORTAL}))
            .send()
            .await
            .unwrap();
    assert_error(
        &answer(res).await,
        415,
        "OTHER",
        "Content type 'application/json' not supported; send parameters as application/x-www-form-urlencoded or in the query string",
    );

    // Oversized body.
    let res =
        c.s.http
            .post(&reset)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("resetPasswordUrl={}", "x".repeat(100_000)))
            .send()
            .await
            .unwrap();
    assert_error(
        &answer(res).await,
        413,
        "OTHER",
        "The request body is larger than the server accepts",
    );

    // Unknown routes under the API and wrong methods.
    for path in [
        "/crafter-profile/api/1/nothing",
        "/crafter-profile/api/1/profile/x/y/z",
        "/crafter-profile/api/1/%FF",
    ] {
        assert_error(
            &c.get(path).await,
            404,
            "OTHER",
            "No endpoint matches this method and path",
        );
    }
    let res = c.s.http.get(&reset).send().await.unwrap();
    assert_error(
        &answer(res).await,
        405,
        "OTHER",
        "Request method 'GET' is not supported",
    );
    let res =
        c.s.http
            .delete(c.s.url(&format!("{API}/verification_token/x")))
            .send()
            .await
            .unwrap();
    assert_error(
        &answer(res).await,
        405,
        "OTHER",
        "Request method 'DELETE' is not supported",
    );

    // Path segments that are not UTF-8 once decoded are malformed values like any other.
    let a = c
        .post(
            &format!("{API}/%FF/reset_password"),
            &[("accessTokenId", &c.key), ("resetPasswordUrl", PORTAL)],
        )
        .await;
    assert_error(
        &a,
        400,
        "OTHER",
        "Error occurred while trying to get profile: the ID is not a 24-digit hexadecimal ObjectId",
    );
    let a = c
        .get(&format!(
            "{API}/verification_token/%FF?accessTokenId={}",
            c.key
        ))
        .await;
    assert_error(&a, 404, "NO_SUCH_VERIFICATION_TOKEN", NO_TOKEN);

    // A password longer than any policy allows.
    let a = c.change(&"A".repeat(43), &"x".repeat(2000)).await;
    assert_error(&a, 404, "NO_SUCH_VERIFICATION_TOKEN", NO_TOKEN);
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let (token, _) = c.emailed(1).await;
    assert_error(
        &c.change(&token, &"x".repeat(2000)).await,
        400,
        "OTHER",
        "Invalid parameter 'newPassword': it must be at most 256 characters",
    );
}

#[tokio::test]
async fn the_dialect_is_off_unless_enabled() {
    let s = Server::spawn(&TestConfig::fast());
    let res = s
        .http
        .post(s.url(&format!("{API}/59284659d4c650213cc2f3fc/reset_password")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "the native not-found answer: nothing is mounted"
    );
}
