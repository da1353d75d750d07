"""Each built-in rule fires on a realistic event sequence and stays quiet on a near miss.

Sequences are real payloads mapped by the real adapters (see _events): sshd lines from
fail2ban's sample logs, octokit's GitHub webhook examples, GitLab's documented hooks.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from _gl_fixtures import DEPLOYMENT, MEMBER_ADD, MERGE_REQUEST
from alerts._events import (
    BRUTE_FORCE_LINE,
    T0,
    at,
    feed,
    github_event,
    github_payload,
    gitlab_event,
    later,
    restamped,
    sshd_block,
    sshd_events,
    sshd_line,
    stored,
)
from sealtrail.alerts import Alert, Engine, Rule, alert_envelope, builtin_rules, parse_alerts_table

BRUTE = BRUTE_FORCE_LINE


def engine(**overrides: dict[str, Any]) -> Engine:
    """The built-in rules, tuned as [alerts.builtin.<name>] tables would tune them."""
    from pathlib import Path

    return Engine(parse_alerts_table({"builtin": overrides}, Path(".")).rules)


def only(alerts: Sequence[Alert], rule: str) -> list[Alert]:
    return [alert for alert in alerts if alert.rule == rule]


def rules_fired(alerts: Sequence[Alert]) -> set[str]:
    return {alert.rule for alert in alerts}


def brute_force(count: int, spacing: float = 30.0, address: str | None = None) -> list[dict[str, Any]]:
    """A real 'Failed password' line repeated: one attempt every `spacing` seconds, each from a new port."""
    line = sshd_line(BRUTE)
    return sshd_events(
        restamped(line, T0 + timedelta(seconds=spacing * n), port=50273 + n, address=address) for n in range(count)
    )


# --- failed authentication bursts -----------------------------------------------------------------


def test_five_failed_passwords_from_one_address_fire_the_per_ip_rule_once() -> None:
    events = brute_force(5)
    assert {e["actor"]["ip"] for e in events} == {"194.117.26.69"} and {e["kind"] for e in events} == {"auth.failure"}
    alerts = feed(engine(), events)
    [alert] = only(alerts, "failed-auth-burst-ip")
    assert (alert.count, alert.first_index, alert.last_index) == (5, 0, 4)
    assert alert.group == {"actor.ip": "194.117.26.69"}
    assert alert.first_time == at(T0) and alert.last_time == at(T0 + timedelta(seconds=120))
    assert alert.summary == "5 failed authentications from 194.117.26.69 within 5m"
    assert alert.severity == "high" and alert.labels == {"category": "authentication"}
    assert rules_fired(alerts) == {"failed-auth-burst-ip", "failed-auth-burst-user"}  # the same user, ROOT


def test_four_failures_or_five_spread_over_ten_minutes_stay_quiet() -> None:
    assert feed(engine(), brute_force(4)) == []
    assert feed(engine(), brute_force(5, spacing=150)) == []  # at most 3 fall within any 5 minutes


def test_the_burst_rule_keeps_quiet_during_its_cooldown_then_fires_again() -> None:
    rules = engine()
    first = only(feed(rules, brute_force(5)), "failed-auth-burst-ip")
    line = sshd_line(BRUTE)
    soon = sshd_events(
        [restamped(line, T0 + timedelta(minutes=5, seconds=n)) for n in range(5)],
        received=datetime(2005, 8, 14, 10, 10, tzinfo=UTC),
    )
    assert only(feed(rules, soon, start=5), "failed-auth-burst-ip") == []  # received 10 min after: cooling
    after = sshd_events(
        [restamped(line, T0 + timedelta(minutes=20, seconds=n)) for n in range(5)],
        received=datetime(2005, 8, 14, 10, 20, tzinfo=UTC),
    )
    [again] = only(feed(rules, after, start=10), "failed-auth-burst-ip")
    assert len(first) == 1 and again.key != first[0].key and again.first_index == 10


def test_a_real_password_spray_on_one_user_fires_the_per_user_rule() -> None:
    """fail2ban's sample: five failures for ROOT within a second from three addresses."""
    block = sshd_block(BRUTE, "14:34:11 belka")
    events = sshd_events(block)
    assert [e["actor"]["name"] for e in events] == ["ROOT"] * 5
    assert len({e["actor"]["ip"] for e in events}) == 3
    alerts = feed(engine(), events)
    [alert] = alerts
    assert alert.rule == "failed-auth-burst-user" and alert.group == {"actor.name": "ROOT"} and alert.count == 5
    assert feed(engine(), events[:4]) == []


def test_bursts_are_counted_per_address() -> None:
    """Five failures from five different addresses and users: no address and no user reaches 5."""
    line = sshd_line(BRUTE)
    events = sshd_events(
        restamped(line, T0 + timedelta(seconds=n), address=f"203.0.113.{n}").replace("ROOT", f"user{n}")
        for n in range(5)
    )
    assert len({e["actor"]["ip"] for e in events}) == 5
    assert feed(engine(), events) == []


# --- source control ---------------------------------------------------------------------------------


def push(ref: str, forced: bool) -> dict[str, Any]:
    payload = github_payload("push", None, 4)  # a push to refs/heads/master of Codertocat/Hello-World
    payload.update(ref=ref, forced=forced, created=False)
    return github_event("push", payload)


def test_a_force_push_to_a_protected_branch_fires() -> None:
    event = push("refs/heads/master", forced=True)
    assert event["attrs"]["forced"] is True
    [alert] = feed(engine(), [event])
    assert alert.rule == "force-push-protected" and alert.severity == "critical"
    assert alert.group == {"target.name|attrs.project": "Codertocat/Hello-World", "attrs.ref": "refs/heads/master"}
    assert alert.summary == "Force push to refs/heads/master of Codertocat/Hello-World"
    assert alert.details["event"]["actor"]["name"] == "Codertocat"


def test_a_force_push_to_a_feature_branch_or_a_plain_push_to_main_stays_quiet() -> None:
    assert feed(engine(), [push("refs/heads/feature/login-form", forced=True)]) == []
    assert feed(engine(), [push("refs/heads/master", forced=False)]) == []


def test_protected_branches_are_tunable() -> None:
    tuned = engine(
        **{
            "force-push-protected": {
                "match": {"kind": "code.push", "attrs.forced": True, "attrs.ref": {"glob": "refs/heads/feature/*"}}
            }
        }
    )
    assert only(feed(tuned, [push("refs/heads/feature/login-form", forced=True)]), "force-push-protected")


@pytest.mark.parametrize("action", ["edited", "deleted"])
def test_weakening_or_removing_branch_protection_fires(action: str) -> None:
    event = github_event("branch_protection_rule", github_payload("branch_protection_rule", action))
    [alert] = feed(engine(), [event])
    assert alert.rule == "branch-protection-change"
    assert alert.group == {"target.name|attrs.entity_path": "octo-org/octo-repo"}
    assert f"branch_protection_rule.{action} by Codertocat" in alert.summary


def test_adding_branch_protection_stays_quiet() -> None:
    event = github_event("branch_protection_rule", github_payload("branch_protection_rule", "created"))
    assert feed(engine(), [event]) == []


# --- access -----------------------------------------------------------------------------------------


def test_an_organization_owner_added_on_github_fires() -> None:
    payload = github_payload("organization", "member_added")
    payload["membership"]["role"] = "admin"
    [alert] = feed(engine(), [github_event("organization", payload)])
    assert alert.rule == "admin-granted"
    assert alert.group == {"target.name": "Octocoders", "attrs.member|target.name": "hacktocat"}


def test_a_plain_organization_member_added_stays_quiet() -> None:
    payload = github_payload("organization", "member_added")
    assert payload["membership"]["role"] == "member"
    assert feed(engine(), [github_event("organization", payload)]) == []


def test_a_collaborator_raised_to_admin_fires_and_to_write_does_not() -> None:
    payload = github_payload("member", "edited")
    payload["changes"] = {"permission": {"from": "write", "to": "admin"}}
    [alert] = feed(engine(), [github_event("member", payload)])
    assert alert.rule == "admin-granted" and alert.group["attrs.member|target.name"] == "octocat"
    payload["changes"] = {"permission": {"from": "read", "to": "write"}}
    assert feed(engine(), [github_event("member", payload)]) == []


def test_gitlab_owner_access_fires_and_guest_access_does_not() -> None:
    owner = copy.deepcopy(MEMBER_ADD) | {"group_access": "Owner"}
    [alert] = feed(engine(), [gitlab_event("Member Hook", owner)])
    assert alert.rule == "admin-granted" and alert.group["attrs.member|target.name"] == "test_user"
    assert feed(engine(), [gitlab_event("Member Hook", MEMBER_ADD)]) == []  # Guest, as documented


# --- secrets ----------------------------------------------------------------------------------------


def test_a_secret_scanning_alert_fires_once_per_alert() -> None:
    reopened = github_payload("secret_scanning_alert", "reopened")
    created = copy.deepcopy(reopened) | {"action": "created"}
    events = [github_event("secret_scanning_alert", created), github_event("secret_scanning_alert", reopened)]
    [alert] = feed(engine(), events)  # the reopening comes within the day's cooldown of the same alert
    assert alert.rule == "secret-alert" and alert.group == {
        "target.name": "Codertocat/Hello-World",
        "attrs.alert": "191",
    }
    other = copy.deepcopy(created)
    other["alert"]["number"] = 192
    assert (
        only(feed(engine(), [*events, github_event("secret_scanning_alert", other)]), "secret-alert")[1].group[
            "attrs.alert"
        ]
        == "192"
    )


def test_a_resolved_secret_scanning_alert_stays_quiet() -> None:
    resolved = github_payload("secret_scanning_alert", "reopened") | {"action": "resolved"}
    resolved["alert"] |= {"state": "resolved", "resolution": "revoked"}
    assert feed(engine(), [github_event("secret_scanning_alert", resolved)]) == []


# --- deploys ----------------------------------------------------------------------------------------


def deployment(created_at: str | None = None, sha: str | None = None, sender: str | None = None) -> dict[str, Any]:
    """GitHub's deployment example (production, Codertocat/Hello-World, 2019-05-15T15:20:53Z, a Wednesday)."""
    payload = github_payload("deployment", "created")
    if created_at:
        payload["deployment"]["created_at"] = created_at
    if sha:
        payload["deployment"]["sha"] = sha
    if sender:
        payload["sender"] |= {"login": sender, "id": int(hashlib.sha256(sender.encode()).hexdigest()[:6], 16)}
    return github_event("deployment", payload)


def approval(commit: str | None = None, state: str = "approved") -> dict[str, Any]:
    """GitHub's review example on PR #2 of Codertocat/Hello-World, with the given state."""
    payload = github_payload("pull_request_review", "submitted")
    payload["review"]["state"] = state
    if commit:
        payload["review"]["commit_id"] = commit
    return github_event("pull_request_review", payload)


def test_a_production_deploy_on_saturday_or_at_night_fires_outside_the_window() -> None:
    saturday = deployment("2019-05-18T15:20:53Z")
    night = deployment("2019-05-15T22:10:00Z")
    for event in (saturday, night):
        [alert] = only(feed(engine(), [event]), "deploy-outside-window")
        assert alert.group == {"target.name|target.id": "Codertocat/Hello-World", "attrs.deployment_id|id": "145988746"}


def test_a_production_deploy_inside_the_window_stays_quiet() -> None:
    assert only(feed(engine(), [deployment()]), "deploy-outside-window") == []
    staging = github_payload("deployment", "created", 1)  # github-pages, production_environment false
    assert only(feed(engine(), [github_event("deployment", staging)]), "deploy-outside-window") == []


def test_change_windows_have_a_time_zone() -> None:
    """GitLab's documented deployment, made the start of a production deploy: 21:50 in Berlin (+02:00)."""
    running = copy.deepcopy(DEPLOYMENT) | {
        "status": "running",
        "environment_tier": "production",
        "environment": "production",
    }
    event = gitlab_event("Deployment Hook", running)
    assert event["time"] == "2021-04-28T19:50:00.000000Z" and event["action"] == "deployment.running"
    assert only(feed(engine(), [event]), "deploy-outside-window")  # 19:50 UTC: after 17:00
    berlin = {
        "outside_windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "22:00", "tz": "Europe/Berlin"}
        ]
    }
    assert only(feed(engine(**{"deploy-outside-window": berlin}), [event]), "deploy-outside-window") == []


def test_a_deploy_of_the_approved_commit_stays_quiet_and_of_another_commit_fires() -> None:
    review = approval()
    commit = review["attrs"]["commit_id"]
    rules = engine()
    assert only(feed(rules, [review, deployment(sha=commit)]), "deploy-without-approval") == []
    [alert] = only(
        feed(rules, [deployment(sha="f95f852bd8fca8fcc58a9a2d6c842781e32a215e")], 2), "deploy-without-approval"
    )
    assert alert.details["approval"] == "commit f95f852bd8fc of codertocat/hello-world has no approved review"
    assert "without an approved review: commit f95f852bd8fc" in alert.summary


def test_a_comment_or_a_dismissed_approval_does_not_approve() -> None:
    commented = approval(state="commented")
    commit = commented["attrs"]["commit_id"]
    assert only(feed(engine(), [commented, deployment(sha=commit)]), "deploy-without-approval")
    dismissed = github_event("pull_request_review", github_payload("pull_request_review", "dismissed"))
    assert dismissed["attrs"]["commit_id"] == commit
    assert only(feed(engine(), [approval(), dismissed, deployment(sha=commit)]), "deploy-without-approval")


def test_an_approved_pull_request_covers_its_merge_commit() -> None:
    """Approval of PR #2's head, then the PR merged: deploying the merge commit is approved."""
    review = approval()
    merged_payload = github_payload("pull_request", "closed")
    assert merged_payload["number"] == 2
    merged_payload["pull_request"] |= {"merged": True, "merge_commit_sha": "9049f1265b7d61be4a8904a9a27120d2064dab3b"}
    merged = github_event("pull_request", merged_payload)
    assert merged["kind"] == "code.merge"
    deploy = deployment(sha="9049f1265b7d61be4a8904a9a27120d2064dab3b")
    assert only(feed(engine(), [review, merged, deploy]), "deploy-without-approval") == []
    assert only(feed(engine(), [merged, deploy]), "deploy-without-approval")  # merged without approval


def test_gitlab_merge_request_approval_covers_the_deployed_short_sha() -> None:
    project = copy.deepcopy(DEPLOYMENT["project"])  # the merge request moved to the deployed project
    merge_commit = "279484c09fbe69ededfced8c1bb6e6d24616b468"  # the documented deployment's commit
    approved = copy.deepcopy(MERGE_REQUEST) | {"project": project}
    approved["object_attributes"] |= {"action": "approved", "updated_at": "2021-04-28T18:30:00Z"}
    merge = copy.deepcopy(approved)
    merge["object_attributes"] |= {
        "action": "merge",
        "state": "merged",
        "merge_commit_sha": merge_commit,
        "updated_at": "2021-04-28T19:40:00Z",
    }
    running = copy.deepcopy(DEPLOYMENT) | {
        "status": "running",
        "environment_tier": "production",
        "environment": "production",
    }
    events = [
        gitlab_event("Merge Request Hook", approved),
        gitlab_event("Merge Request Hook", merge),
        gitlab_event("Deployment Hook", running),
    ]
    assert events[2]["attrs"]["short_sha"] == merge_commit[:8]
    assert only(feed(engine(), events), "deploy-without-approval") == []
    [alert] = only(feed(engine(), events[1:]), "deploy-without-approval")
    assert alert.details["approval"] == "commit 279484c0 of root/test-deployment-webhooks has no approved review"


def test_an_approval_older_than_the_horizon_does_not_count() -> None:
    review = approval()
    late = deployment(created_at=later(review["time"], days=31), sha=review["attrs"]["commit_id"])
    assert only(feed(engine(), [review, late]), "deploy-without-approval")


# --- new actors -------------------------------------------------------------------------------------


def test_a_new_deployer_to_production_fires_after_the_learning_week() -> None:
    first = deployment()  # Codertocat deploys: learning starts
    week = later(first["time"], days=8)
    rules = engine()
    assert (
        only(
            feed(rules, [first, deployment(created_at=later(first["time"], days=1), sender="hubot")]),
            "new-actor-critical",
        )
        == []
    )
    known = deployment(created_at=week, sender="hubot")
    stranger = deployment(created_at=week, sender="mallory")
    assert only(feed(rules, [known], 2), "new-actor-critical") == []
    [alert] = only(feed(rules, [stranger], 3), "new-actor-critical")
    assert alert.details["value"] == "mallory" and alert.summary == "New actor mallory on acme-github"
    assert alert.group == {"source.type": "github", "source.id": "acme-github"}
    assert (
        only(feed(rules, [deployment(created_at=later(week, hours=1), sender="mallory")], 4), "new-actor-critical")
        == []
    )


def test_critical_systems_are_tunable_to_a_bastion_host() -> None:
    """A new account logging in to the bastion after the learning period (fail2ban's accepted logins)."""
    tuned = engine(
        **{"new-actor-critical": {"match": {"kind": "auth.success", "target.name": "bar"}, "learning": 86400}}
    )
    rda = sshd_line("Accepted password for rda")
    known = sshd_line("Accepted password for known")
    day0 = sshd_events([restamped(rda, T0)])
    day2 = sshd_events([restamped(rda, T0 + timedelta(days=2)), restamped(known, T0 + timedelta(days=2, hours=1))])
    alerts = feed(tuned, [*day0, *day2])
    [alert] = only(alerts, "new-actor-critical")
    assert alert.details["value"] == "known" and alert.last_index == 2


# --- silence and checkpoints ----------------------------------------------------------------------------


def test_a_source_gone_silent_fires_once_then_reminds_daily_and_rearms() -> None:
    received = "2026-03-02T08:00:00.000000Z"
    event = github_event("push", github_payload("push", None, 4), received=received)
    rules = engine()
    assert feed(rules, [event]) == []
    start = datetime.fromisoformat(received).timestamp()
    assert rules.tick(start + 4 * 3600 - 1) == []
    [alert] = rules.tick(start + 4 * 3600 + 1)
    assert alert.rule == "source-silent" and alert.group == {"source.type": "github", "source.id": "acme-github"}
    assert alert.details["silent_since"] == received and alert.summary == "No events from github/acme-github for 4h"
    assert rules.tick(start + 5 * 3600) == []
    assert [a.rule for a in rules.tick(start + 4 * 3600 + 86401)] == ["source-silent"]
    back = github_event("push", github_payload("push", None, 4), received=later(received, days=2))
    feed(rules, [back], 1)
    assert rules.tick(start + 2 * 86400 + 60) == []


def test_a_source_that_keeps_sending_stays_quiet() -> None:
    rules = engine()
    received = datetime(2026, 3, 2, 8, tzinfo=UTC)
    for hour in range(0, 12, 3):
        moment = at(received + timedelta(hours=hour))
        feed(rules, [github_event("push", github_payload("push", None, 4), received=moment)], hour)
        assert rules.tick((received + timedelta(hours=hour, minutes=1)).timestamp()) == []


def test_an_unsigned_backlog_older_than_the_limit_fires_the_checkpoint_rule() -> None:
    rules = engine()
    assert rules.tick(1_800_000_000, checkpoint_lag=299) == []
    [alert] = rules.tick(1_800_000_010, checkpoint_lag=301, detail="3 entries from index 7 have waited 301s")
    assert alert.rule == "integrity-checkpoint-stale" and alert.severity == "critical"
    assert alert.summary == "Checkpoint stale: 3 entries from index 7 have waited 301s"
    assert rules.tick(1_800_000_020, checkpoint_lag=311) == []  # cooling down for an hour


# --- the engine itself ----------------------------------------------------------------------------------


def test_alert_events_are_never_evaluated() -> None:
    """The engine's own alerts (even one that would match a rule) cannot feed back into it."""
    rules = [Rule(name="everything", severity="low")]
    [alert] = feed(Engine(rules), [stored({"kind": "code.push", "source": {"type": "api", "id": "ci"}})])
    recorded = stored(alert_envelope(alert, "2026-01-01T00:00:00.000000Z"))
    assert recorded["kind"] == "alert.everything" and recorded["source"]["id"] == "alerts"
    assert feed(Engine(rules), [recorded]) == []


def test_saved_state_resumes_exactly_where_it_stopped() -> None:
    """Half the events, save (take_changes), restore into a new engine, the other half: as one run."""
    events = [*brute_force(3), approval(), *brute_force(4, address="198.51.100.9"), deployment(sha="0" * 40)]
    whole = feed(engine(), events)
    first = engine()
    saved: dict[str, Any] = {}
    alerts = feed(first, events[:4])
    saved.update(first.take_changes())
    second = Engine(first.rules, {k: v for k, v in saved.items() if v is not None})
    alerts += feed(second, events[4:], 4)
    assert [a.to_json() for a in alerts] == [a.to_json() for a in whole]
    assert {a.rule for a in whole} >= {"failed-auth-burst-user", "deploy-without-approval"}


def test_disabled_built_ins_never_fire() -> None:
    off = engine(**{"failed-auth-burst-ip": {"enabled": False}, "failed-auth-burst-user": {"enabled": False}})
    assert feed(off, brute_force(6)) == []
    assert all(rule.enabled for rule in builtin_rules())
