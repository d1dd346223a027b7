//! The Crafter Profile reset flow: the round trip through the emailed link, and the tokens
//! (superseded, deleted, expired) and cool-down rows.

use super::*;

#[tokio::test]
async fn round_trip_request_email_change_authenticate() {
    let c = crafter(&["--cooldown", "0"]).await;
    let url = format!("{PORTAL}?lang=en");

    // Request: 200 with the profile, all attributes.
    let a = c.reset(&c.oid, &url).await;
    assert_eq!(
        (a.status, a.content_type.as_deref()),
        (200, Some("application/json"))
    );
    assert_eq!(
        a.body,
        c.profile(r#"{"color":"blue","nick":"jd","size":3}"#)
    );

    // The email carries the caller's URL verbatim, then &tokenId= (it already had a query).
    let (token, link) = c.emailed(1).await;
    assert_eq!(link, format!("{url}&tokenId={token}"));
    assert_eq!(token.len(), 43);

    // The token is stored only as its hash.
    let db = rusqlite::Connection::open(c.s.dir.path().join("resetd.db")).unwrap();
    let stored: Vec<Vec<u8>> = db
        .prepare("SELECT hash FROM reset_token")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 32);
    assert!(!String::from_utf8_lossy(&stored[0]).contains(&token));

    // Validate: the VerificationToken JSON.
    let a = c.token_info(&token).await;
    let issued: i64 = db
        .query_row("SELECT created_at FROM reset_token", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (a.status, a.content_type.as_deref()),
        (200, Some("application/json"))
    );
    assert_eq!(
        a.body,
        format!(
            r#"{{"id":"{token}","tenant":"acme","profileId":"{}","timestamp":{issued}}}"#,
            c.oid
        )
    );
    // Suffix pattern matching.
    assert_eq!(
        c.get(&format!(
            "{API}/verification_token/{token}.json?accessTokenId={}",
            c.key
        ))
        .await
        .body,
        a.body
    );

    // A password the policy refuses: 400, and the token still works.
    let a = c.change(&token, "john").await;
    assert_error(
        &a,
        400,
        "OTHER",
        "The new password does not meet the password policy: Use at least 8 characters. \
         This password is too common or too easy to guess. \
         Do not use your login, email address or name in your password.",
    );
    assert_eq!(c.token_info(&token).await.status, 200);

    // Complete: 200 with the updated profile, attributes filtered as asked.
    let (_, before) = c.stamps();
    let a = c
        .post(
            &format!("{API}/change_password"),
            &[
                ("accessTokenId", &c.key),
                ("resetTokenId", &token),
                ("newPassword", GOOD2),
                ("attributeToReturn", "color"),
            ],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, c.profile(r#"{"color":"blue"}"#));
    assert!(c.stamps().1 >= before, "lastModified moves on");

    // Single use.
    assert_error(
        &c.change(&token, GOOD).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    assert_error(
        &c.token_info(&token).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );

    // Authenticate with the new password; the old one is gone; "password changed" mail sent.
    assert_eq!(c.acme().auth_status("john.doe", GOOD2).await, 200);
    assert_eq!(c.acme().auth_status("john.doe", GOOD).await, 401);
    c.s.wait_mails("password_changed", "john.doe@example.com", 1)
        .await;
}

#[tokio::test]
async fn tokens_supersede_delete_and_expire() {
    let c = crafter(&["--cooldown", "0", "--token-ttl", "1"]).await;
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let (first, _) = c.emailed(1).await;
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let (second, _) = c.emailed(2).await;
    assert_ne!(first, second);

    // Superseded by the newer token.
    assert_error(
        &c.token_info(&first).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    // Malformed and never-issued tokens look the same.
    for t in ["nope", &"A".repeat(43)] {
        assert_error(
            &c.token_info(t).await,
            404,
            "NO_SUCH_VERIFICATION_TOKEN",
            NO_TOKEN,
        );
        assert_error(
            &c.change(t, GOOD2).await,
            404,
            "NO_SUCH_VERIFICATION_TOKEN",
            NO_TOKEN,
        );
    }

    // Delete: 200 with an empty body, then the token is gone; deleting again is still 200.
    let delete = |t: &str| {
        let path = format!("{API}/verification_token/{t}/delete");
        let c = &c;
        async move { c.post(&path, &[("accessTokenId", c.key.as_str())]).await }
    };
    for _ in 0..2 {
        let a = delete(&second).await;
        assert_eq!((a.status, a.body.as_str(), a.content_type), (200, "", None));
    }
    assert_error(
        &c.token_info(&second).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    assert_error(
        &c.change(&second, GOOD2).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    assert_eq!(delete("whatever").await.status, 200);

    // Expired (the tenant's TTL is 1 s here).
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let (third, _) = c.emailed(3).await;
    assert_eq!(c.token_info(&third).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_error(
        &c.token_info(&third).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
    assert_error(
        &c.change(&third, GOOD2).await,
        404,
        "NO_SUCH_VERIFICATION_TOKEN",
        NO_TOKEN,
    );
}

#[tokio::test]
async fn cool_down_is_reported_to_the_trusted_caller() {
    let c = crafter(&[]).await; // the default 60 s cool-down
    assert_eq!(c.reset(&c.oid, PORTAL).await.status, 200);
    let a = c.reset(&c.oid, PORTAL).await;
    let secs: i64 = a.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    assert_error(
        &a,
        429,
        "OTHER",
        &format!(
            "A reset password email was sent to profile \"{}\" recently; try again in {secs} seconds",
            c.oid
        ),
    );
    c.emailed(1).await;
}
