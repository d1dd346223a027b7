//! Getting a reset token to a person: the anonymous "forgot password" request, queued and resolved
//! by a worker; a trusted caller's "send the link now"; and voiding a token.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::json;

use crate::error::CoreError;
use crate::model::{Client, Lookup, NewAudit, NewResetRequest, Person, ResetPageUrl, ResetRequest};
use crate::secret::ResetSecret;
use crate::store::{Resolution, Resolved};
use crate::types::{ClientName, Locale, TenantId};

use super::external::Found;
use super::issue::{Grant, LinkTo};
use super::{Actor, Result, Service};

/// Where [`Service::resolve`] left a request.
enum Step {
    /// Resolved in the store: a token issued, or the person's cool-down recorded.
    Resolved,
    /// To be discarded with this audit event, together with the chunk's other discards.
    Discard(i64, NewAudit),
}

/// How long a claimed reset request stays reserved for the worker that claimed it. Resolving one
/// takes milliseconds; a lease that runs out only means another instance may redo the work, and
/// the store still resolves the request once.
pub const RESET_REQUEST_LEASE_SECS: i64 = 10;

/// How many claimed requests are resolved at once, by default (see
/// [`Service::with_reset_worker_concurrency`]).
pub const DEFAULT_RESOLVE_CONCURRENCY: usize = 64;

impl Service {
    /// Records a "forgot password" request. The same work is done whether or not the account
    /// exists: the account is resolved later by [`Service::process_reset_requests`]. Only the
    /// tenant and client are checked here, and neither depends on the account.
    pub async fn request_reset(
        &self,
        tenant: &TenantId,
        lookup: Lookup,
        client: Option<ClientName>,
        locale: Option<Locale>,
        ip: Option<String>,
    ) -> Result<()> {
        self.tenant(tenant).await?;
        if let Some(c) = &client {
            self.check_client(tenant, c).await?;
        }
        // After the tenant and client (they do not depend on the account), before anything that
        // does: a full queue refuses known and unknown accounts alike.
        if !self.backlog.admit() {
            return Err(CoreError::Overloaded);
        }
        let req = NewResetRequest {
            tenant: tenant.clone(),
            lookup,
            client,
            locale,
            ip,
            created_at: self.now(),
        };
        if let Err(e) = self.store.insert_reset_request(&req).await {
            self.backlog.release(1);
            return Err(e.into());
        }
        Ok(())
    }

    /// `UnknownClient` unless `name` is one of the tenant's clients.
    async fn check_client(&self, tenant: &TenantId, name: &ClientName) -> Result<()> {
        let named = |c: &Client| &c.name == name;
        let clients = self
            .clients_where(tenant, |cs| cs.iter().any(named))
            .await?;
        if clients.iter().any(named) {
            Ok(())
        } else {
            Err(CoreError::UnknownClient)
        }
    }

    /// The tenant's clients, read from the store unless a list read less than
    /// [`super::CLIENT_CACHE_MS`] ago satisfies `enough`. Every dialect request names its
    /// client, and a trusted caller's link must match one; reading them each time was a
    /// database read per request on the anonymous endpoints. A list that lacks what a request
    /// needs is read again, so a new client or prefix works at once and made-up names fill no
    /// cache. A client changed or removed through this instance is seen at once; through another
    /// instance, this one uses the old list that long (the worker, which reads the client
    /// again, then discards a request for a removed one: `client_removed`).
    async fn clients_where(
        &self,
        tenant: &TenantId,
        enough: impl Fn(&[Client]) -> bool,
    ) -> Result<Arc<[Client]>> {
        let now = self.now();
        let cached = self
            .client_lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .filter(|(list, at)| now.0 - at.0 < super::CLIENT_CACHE_MS && enough(list))
            .map(|(list, _)| list.clone());
        if let Some(list) = cached {
            return Ok(list);
        }
        let list: Arc<[Client]> = self.store.list_clients(tenant).await?.into();
        self.client_lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.clone(), (list.clone(), now));
        Ok(list)
    }

    /// Drops the tenant's cached client list (a client was registered, changed or removed).
    pub(super) fn forget_clients(&self, tenant: &TenantId) {
        self.client_lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
    }

    /// Resolves up to `limit` recorded requests: issues tokens and queues their emails. Returns how
    /// many were resolved and the errors of those that could not be (they stay queued).
    /// Several instances may run this at once: each claims its own requests with a lease of
    /// [`RESET_REQUEST_LEASE_SECS`], and a request whose worker died is claimed again after it.
    pub async fn process_reset_requests(&self, limit: u32) -> Result<(usize, Vec<CoreError>)> {
        let now = self.now();
        let lease_until = now.plus_secs(RESET_REQUEST_LEASE_SECS);
        let pending = self
            .store
            .claim_reset_requests(now, lease_until, limit)
            .await?;
        let claimed = pending.len();
        let mut errors = Vec::new();
        let mut done = 0;
        // A chunk at a time: its local accounts are looked up in one read (each account once,
        // however many requests name it), its requests resolved concurrently, and the discards
        // among them (accounts nobody has: all of a flood of made-up names) written together.
        // The store commits a chunk's other writes together too (SQLite's writer batches them
        // into one transaction, PostgreSQL spreads them over its pool). Two requests for one
        // person in a chunk are still serialised by the store, which applies the cool-down.
        for chunk in pending.chunks(self.resolve_concurrency) {
            let found = self.find_local_accounts(chunk).await;
            let steps = join_all(chunk.iter().zip(found).map(|(r, f)| self.resolve(r, f))).await;
            let mut discards = Vec::new();
            for step in steps {
                match step {
                    Ok(Step::Resolved) => done += 1,
                    Ok(Step::Discard(id, audit)) => discards.push((id, audit)),
                    Err(e) => errors.push(e),
                }
            }
            let n = discards.len();
            if n > 0 {
                // On an error none counts as resolved: what was not written stays queued and is
                // claimed again after its lease (SQLite and PostgreSQL write all or none).
                match self.store.discard_reset_requests(discards).await {
                    Ok(()) => done += n,
                    Err(e) => errors.extend(std::iter::repeat_n(CoreError::from(e), n)),
                }
            }
        }
        self.backlog.release(done as u64);
        if claimed < limit as usize {
            // Everything claimable is taken: the store's count is the truth again (it includes
            // the other instances' arrivals and the requests that failed here).
            self.backlog
                .measured(self.store.count_reset_requests().await?);
        }
        Ok((done, errors))
    }

    /// What the store says about the accounts of `chunk`'s requests that live in it, in the
    /// chunk's order (`None` for a request [`Service::lookup_person`] must ask an external
    /// system about), with one read per tenant and each distinct lookup read once.
    async fn find_local_accounts(
        &self,
        chunk: &[ResetRequest],
    ) -> Vec<Option<Result<Option<Person>>>> {
        let mut found: Vec<Option<Result<Option<Person>>>> = vec![None; chunk.len()];
        let mut by_tenant: HashMap<&TenantId, Vec<&Lookup>> = HashMap::new();
        for r in chunk {
            if self.looks_up_locally(&r.tenant, &r.lookup) {
                let lookups = by_tenant.entry(&r.tenant).or_default();
                if !lookups.contains(&&r.lookup) {
                    lookups.push(&r.lookup);
                }
            }
        }
        for (tenant, lookups) in by_tenant {
            let owned: Vec<Lookup> = lookups.iter().map(|l| (*l).clone()).collect();
            let answer = self.store.find_people(tenant, &owned).await;
            for (r, slot) in chunk.iter().zip(found.iter_mut()) {
                if &r.tenant != tenant {
                    continue;
                }
                let Some(i) = lookups.iter().position(|l| *l == &r.lookup) else {
                    continue;
                };
                *slot = Some(match &answer {
                    Ok(people) => Ok(people.get(i).cloned().flatten()),
                    Err(e) => Err(e.clone().into()),
                });
            }
        }
        found
    }

    /// Resolves one request: issues its token (or records its cool-down) at once, or says how
    /// to discard it. `local` is the store's answer for its account when the chunk read it.
    async fn resolve(
        &self,
        r: &ResetRequest,
        local: Option<Result<Option<Person>>>,
    ) -> Result<Step> {
        let discarded = |outcome: &str| {
            self.audit(
                &r.tenant,
                None,
                "reset_requested",
                &Actor::Anonymous,
                r.ip.as_deref(),
                json!({"by": r.lookup.kind(), "outcome": outcome}),
            )
        };
        let discard = |outcome: &str| Step::Discard(r.id, discarded(outcome));
        let tenant = match self.tenant(&r.tenant).await {
            Ok(t) => t,
            Err(CoreError::UnknownTenant) => return Ok(discard("no_tenant")),
            // A database error is not a missing tenant: the request stays queued (its lease
            // runs out and it is claimed again) instead of being discarded after a 202.
            Err(e) => return Err(e),
        };
        // An external system that cannot answer keeps the request queued, as a database error.
        let found = match local {
            Some(answer) => answer?.map_or(Found::Nobody, |p| Found::Person(Box::new(p))),
            None => self.lookup_person(&r.tenant, &r.lookup).await?,
        };
        let person = match found {
            Found::Person(p) if p.enabled => *p,
            Found::Person(_) | Found::Nobody => return Ok(discard("no_account")),
            // The field's name only: the entry's values stay out of the audit log.
            Found::Unusable(field) => return Ok(Step::Discard(
                r.id,
                self.audit(
                    &r.tenant,
                    None,
                    "reset_requested",
                    &Actor::Anonymous,
                    r.ip.as_deref(),
                    json!({"by": r.lookup.kind(), "outcome": "unusable_account", "field": field}),
                ),
            )),
        };
        let client = match &r.client {
            Some(name) => match self.store.get_client(&r.tenant, name).await? {
                Some(c) => Some(c),
                None => return Ok(discard("client_removed")),
            },
            None => None,
        };
        let issued = self.issue(Grant {
            tenant: &tenant,
            person: &person,
            client: r.client.as_ref(),
            link: match &client {
                Some(c) => LinkTo::Template(&c.link_template),
                None => LinkTo::Hosted,
            },
            locale: r.locale.as_ref(),
            lookup: &r.lookup,
            actor: &Actor::Anonymous,
            ip: r.ip.as_deref(),
            audit_client: false,
            asked_at: Some(r.created_at),
        });
        let issue = match issued {
            Ok(issue) => issue,
            Err(e) => {
                let audit = discarded("render_failed");
                self.store
                    .resolve_reset_request(r.id, Resolution::Discard(audit))
                    .await?;
                return Err(e);
            }
        };
        match self
            .store
            .resolve_reset_request(r.id, Resolution::Issue(Box::new(issue)))
            .await?
        {
            Resolved::CoolingDown => {
                let a = self.audit(
                    &r.tenant,
                    Some(&person.id),
                    "reset_requested",
                    &Actor::Anonymous,
                    r.ip.as_deref(),
                    json!({"by": r.lookup.kind(), "outcome": "cooling_down"}),
                );
                self.store.append_audit(a).await?;
            }
            Resolved::Issued | Resolved::Discarded => {}
        }
        Ok(Step::Resolved)
    }

    /// A trusted caller (an API key holder) has a reset link emailed now to the person `lookup`
    /// names. The link is built from `page`, a reset page URL the caller supplies, which must
    /// match an allowed prefix of one of the tenant's registered clients (only of `only_client`
    /// when given), with the token in the query parameter `token_param`. The URL is checked
    /// first: nothing is looked up, stored or sent for a URL that is not allowed. Then the person
    /// must exist (`NotFound`), be enabled (`Disabled`) and be out of the tenant's cool-down
    /// (`CoolingDown`). The new token supersedes the person's earlier ones. Returns the person.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_reset_link(
        &self,
        tenant: &TenantId,
        lookup: &Lookup,
        page: &ResetPageUrl,
        token_param: &'static str,
        only_client: Option<&ClientName>,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<Person> {
        let t = self.tenant(tenant).await?;
        let fits = |c: &Client| only_client.is_none_or(|n| &c.name == n) && c.allows(page);
        let client = self
            .clients_where(tenant, |cs| cs.iter().any(fits))
            .await?
            .iter()
            .find(|c| fits(c))
            .cloned()
            .ok_or(CoreError::LinkNotAllowed)?;
        let person = self.find_person(tenant, lookup).await?;
        if !person.enabled {
            return Err(CoreError::Disabled);
        }
        let issue = self.issue(Grant {
            tenant: &t,
            person: &person,
            client: Some(&client.name),
            link: LinkTo::Page {
                url: page,
                param: token_param,
            },
            locale: None,
            lookup,
            actor,
            ip,
            audit_client: true,
            asked_at: None,
        })?;
        let now = issue.token.created_at;
        match self.store.issue_token(issue).await? {
            Resolved::Issued => Ok(person),
            Resolved::CoolingDown | Resolved::Discarded => Err(CoreError::CoolingDown {
                until: now.plus_secs(t.settings.cooldown_secs),
            }),
        }
    }

    /// Voids a reset token so it can no longer be used (Crafter Profile's token delete). Returns
    /// whether a live token was voided; an unknown, used, voided or other tenant's token changes
    /// nothing.
    pub async fn void_token(
        &self,
        tenant: &TenantId,
        secret: &ResetSecret,
        actor: &Actor,
        ip: Option<&str>,
    ) -> Result<bool> {
        self.tenant(tenant).await?;
        let hash = secret.hash();
        let Some(token) = self.store.find_token(hash).await? else {
            return Ok(false);
        };
        if &token.tenant != tenant || !token.hash.ct_eq(&hash) {
            return Ok(false);
        }
        let audit = self.audit(
            tenant,
            Some(&token.person),
            "reset_token_voided",
            actor,
            ip,
            json!({}),
        );
        Ok(self
            .store
            .void_token(tenant, hash, self.now(), audit)
            .await?)
    }
}
