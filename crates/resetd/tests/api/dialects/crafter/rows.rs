//! Crafter Profile's access-token, parameter and profile rows.

use super::*;

#[tokio::test]
async fn access_token_rows() {
    let c = crafter(&["--cooldown", "0"]).await;
    let token = "A".repeat(43);
    let reset = format!("{API}/{}/reset_password", c.oid);
    let change = format!("{API}/change_password");
    let delete = format!("{API}/verification_token/{token}/delete");
    let get = format!("{API}/verification_token/{token}");

    // accessTokenId missing (or empty): 403 ACCESS_DENIED, before any other parameter check.
    for a in [
        c.post(&reset, &[("resetPasswordUrl", PORTAL)]).await,
        c.post(
            &reset,
            &[("accessTokenId", ""), ("resetPasswordUrl", PORTAL)],
        )
        .await,
        c.post(&change, &[]).await,
        c.post(&delete, &[]).await,
        c.get(&get).await,
    ] {
        assert_error(&a, 403, "ACCESS_DENIED", ACCESS_MISSING);
    }

    // Unknown access token, in resetd's form or Crafter's UUID form: never echoed.
    let unknown_key = format!("rsd_{}", "B".repeat(43));
    for bad in [unknown_key.as_str(), "e8f5170c-877b-416f-b70f-4b09772f8e2d"] {
        for a in [
            c.post(
                &reset,
                &[("accessTokenId", bad), ("resetPasswordUrl", PORTAL)],
            )
            .await,
            c.post(&change, &[("accessTokenId", bad)]).await,
            c.post(&delete, &[("accessTokenId", bad)]).await,
            c.get(&format!("{get}?accessTokenId={bad}")).await,
        ] {
            assert_error(&a, 403, "ACCESS_DENIED", NO_ACCESS_TOKEN);
            assert!(!a.body.contains(bad));
        }
    }

    // Access tokens never reach the log, wherever they were sent.
    let log = c.s.stderr.lock().unwrap().clone();
    assert!(
        !log.contains(&c.key) && !log.contains(&unknown_key),
        "{log}"
    );

    // A key of another tenant lacks the permission: 403 ACTION_DENIED.
    let a = c
        .post(
            &reset,
            &[("accessTokenId", &c.s.key), ("resetPasswordUrl", PORTAL)],
        )
        .await;
    assert_error(
        &a,
        403,
        "ACTION_DENIED",
        "The access token may not manage the profiles of this tenant",
    );

    // accessTokenId in the query string, the rest in the form body.
    let res =
        c.s.http
            .post(c.s.url(&format!("{reset}?accessTokenId={}", c.key)))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(form(&[("resetPasswordUrl", PORTAL)]))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);

    // Everything in the query string (Spring binds query parameters too), with the .json suffix.
    let res =
        c.s.http
            .post(c.s.url(&format!(
                "{reset}.json?accessTokenId={}&resetPasswordUrl={PORTAL}",
                c.key
            )))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.unwrap(),
        c.profile(r#"{"color":"blue","nick":"jd","size":3}"#)
    );
}

#[tokio::test]
async fn parameter_and_profile_rows() {
    let c = crafter(&["--cooldown", "0"]).await;
    let reset = format!("{API}/{}/reset_password", c.oid);
    let change = format!("{API}/change_password");

    // Missing required parameters, in Spring's wording and order.
    assert_error(
        &c.post(&reset, &[("accessTokenId", &c.key)]).await,
        400,
        "OTHER",
        "Required request parameter 'resetPasswordUrl' for method parameter type String is not present",
    );
    assert_error(
        &c.post(
            &change,
            &[("accessTokenId", &c.key), ("newPassword", GOOD2)],
        )
        .await,
        400,
        "OTHER",
        "Required request parameter 'resetTokenId' for method parameter type String is not present",
    );
    assert_error(
        &c.post(&change, &[("accessTokenId", &c.key), ("resetTokenId", "x")])
            .await,
        400,
        "OTHER",
        "Required request parameter 'newPassword' for method parameter type String is not present",
    );

    // Unknown profile (a valid ObjectId): 404 NO_SUCH_PROFILE, nothing emailed.
    let unknown = "59284659d4c650213cc2f3fc";
    assert_error(
        &c.reset(unknown, PORTAL).await,
        404,
        "NO_SUCH_PROFILE",
        "No profile with ID \"59284659d4c650213cc2f3fc\" found",
    );
    // A malformed profile id: 400 (Crafter answers 500; a bad input is not a server error).
    for bad in [
        "not-an-id",
        "59284659d4c650213cc2f3f",
        "59284659d4c650213cc2f3fcz",
    ] {
        assert_error(
            &c.reset(bad, PORTAL).await,
            400,
            "OTHER",
            "Error occurred while trying to get profile: the ID is not a 24-digit hexadecimal ObjectId",
        );
    }

    // Upper-case hex names the same profile (ObjectIds are hex of either case).
    let a = c.reset(&c.oid.to_uppercase(), PORTAL).await;
    assert_eq!(a.status, 200, "{}", a.body);

    // attributeToReturn (the code's name) and attributesToReturn (the docs' name), repeated or
    // comma-separated; unknown names are simply absent.
    for (pairs, want) in [
        (vec![("attributeToReturn", "color")], r#"{"color":"blue"}"#),
        (vec![("attributesToReturn", "size")], r#"{"size":3}"#),
        (
            vec![
                ("attributeToReturn", "color"),
                ("attributeToReturn", "nick"),
            ],
            r#"{"color":"blue","nick":"jd"}"#,
        ),
        (
            vec![("attributesToReturn", "nick,size")],
            r#"{"nick":"jd","size":3}"#,
        ),
        (vec![("attributeToReturn", "nothing")], r#"{}"#),
    ] {
        let mut all = vec![
            ("accessTokenId", c.key.as_str()),
            ("resetPasswordUrl", PORTAL),
        ];
        all.extend(pairs);
        let a = c.post(&reset, &all).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body, c.profile(want));
    }

    // A disabled profile gets no email: 403 DISABLED_PROFILE.
    assert_eq!(c.acme().disable_person(&c.id).await.status(), 200);
    assert_error(
        &c.reset(&c.oid, PORTAL).await,
        403,
        "DISABLED_PROFILE",
        &format!("Profile \"{}\" is disabled", c.oid),
    );
}
