"""Jenkins adapter: Audit Trail plugin records and Notification plugin messages.

The audit lines are the exact forms the Audit Trail plugin's listeners write
(AuditTrailFilter: `<uri>[ (<item>)] by <user> from <ip>`; AuditTrailRunListener;
AuthenticationAuditListener; CredentialUsageListener; ScriptUsageListener) inside its
Elasticsearch logger's `{"message", "@timestamp"}` body. Notification messages follow
the Notification plugin's documented JSON format (name, url, build{full_url, number,
queue_id, timestamp, duration, phase, status, url, scm, parameters, artifacts}).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from _gl_fixtures import one
from sealtrail.event import prepare
from sealtrail.sources.base import SourcePayloadError
from sealtrail.sources.jenkins import audit_to_envelopes, notification_to_envelopes

STAMP = "2024-01-15T10:00:05+0000"


def audit(message: str, stamp: str | None = STAMP) -> dict[str, Any]:
    """An Audit Trail plugin record as its Elasticsearch logger posts it, through prepare."""
    record: dict[str, Any] = {"message": message}
    if stamp is not None:
        record["@timestamp"] = stamp
    return one(audit_to_envelopes(record, "jenkins-ci"))


# --- Audit Trail: requests -----------------------------------------------------------


def test_config_submit_on_a_job() -> None:
    """A job's configuration saved → config.change by that user, from that address."""
    event = audit("/job/deploy-prod/configSubmit by alice from 10.0.0.5")
    assert (event["kind"], event["action"], event["outcome"]) == ("config.change", "configSubmit", "unknown")
    assert event["actor"] == {"name": "alice", "type": "user", "ip": "10.0.0.5"}
    assert event["target"] == {"type": "job", "name": "deploy-prod"}
    assert event["time"] == "2024-01-15T10:00:05.000000Z"
    assert event["source"] == {"type": "jenkins", "id": "jenkins-ci"}
    assert event["attrs"]["uri"] == "/job/deploy-prod/configSubmit"
    assert event["raw"] == {"message": "/job/deploy-prod/configSubmit by alice from 10.0.0.5", "@timestamp": STAMP}


def test_build_request() -> None:
    """A build triggered over HTTP → ci.run with the build number."""
    event = audit("/job/deploy-prod/build #42 by alice from 10.0.0.5")
    assert (event["kind"], event["action"]) == ("ci.run", "build")
    assert event["target"] == {"type": "job", "name": "deploy-prod"}
    assert event["attrs"]["build_number"] == 42
    assert event["actor"]["ip"] == "10.0.0.5"


def test_stop_a_build_in_a_folder() -> None:
    """Folder jobs (job/a/job/b) are named a/b; the build number comes from the path."""
    event = audit("/job/platform/job/api/17/stop by carol from 2001:db8::7")
    assert (event["kind"], event["action"]) == ("ci.run", "stop")
    assert event["target"] == {"type": "job", "name": "platform/api"}
    assert event["attrs"]["build_number"] == 17
    assert event["actor"]["ip"] == "2001:db8::7"


def test_cancel_queue_item_names_the_task() -> None:
    """/queue/cancelItem logs the query and the queued task's URL in parentheses."""
    event = audit("/queue/cancelItem?id=1 (job/test-job/) by NA from 127.0.0.1")
    assert (event["kind"], event["action"]) == ("ci.run", "cancelItem")
    assert event["target"] == {"type": "job", "name": "test-job"}
    assert event["attrs"]["detail"] == "(job/test-job/)"


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("/view/all/createItem (Job With Space) by admin from 127.0.0.1", "Job With Space"),
        ("/job/platform/createItem (api) by admin from 127.0.0.1", "platform/api"),
    ],
)
def test_create_item_names_the_new_item(line: str, name: str) -> None:
    """createItem logs the new item's name; in a folder it is folder/name."""
    event = audit(line)
    assert (event["kind"], event["target"]) == ("config.change", {"type": "job", "name": name})


def test_global_configuration() -> None:
    """The system configuration saved → config.change on Jenkins itself."""
    event = audit("/configSubmit by admin")
    assert (event["kind"], event["action"]) == ("config.change", "configSubmit")
    assert event["target"] == {"type": "system", "name": "jenkins"}
    assert event["actor"] == {"name": "admin", "type": "user"}


@pytest.mark.parametrize(
    ("line", "ident"),
    [
        ("/credentials/store/system/domain/_/credential/aws-prod/updateSubmit by admin from 192.168.1.4", "aws-prod"),
        ("/manage/credentials/store/system/domain/_/createCredentials by admin from 192.168.1.4", None),
        ("/credentials/store/system/domain/_/credential/aws-prod/doDelete by admin from 192.168.1.4", "aws-prod"),
    ],
)
def test_credential_changes(line: str, ident: str | None) -> None:
    """Anything under the credentials store is a config.change on the credentials."""
    event = audit(line)
    assert event["kind"] == "config.change"
    assert event["target"] == ({"type": "credentials", "id": ident} if ident else {"type": "credentials"})


def test_node_taken_offline() -> None:
    """/computer/<node>/toggleOffline targets the node."""
    event = audit("/computer/agent-1/toggleOffline by ops from ::1")
    assert (event["kind"], event["target"]) == ("config.change", {"type": "node", "name": "agent-1"})
    assert event["actor"]["ip"] == "::1"


def test_other_admin_request() -> None:
    """An audited request that is neither a build nor a configuration change → jenkins.audit."""
    event = audit("/safeRestart by admin from 10.0.0.9")
    assert (event["kind"], event["action"]) == ("jenkins.audit", "safeRestart")


def test_anonymous_request_logs_the_address() -> None:
    """Without a logged-in user the plugin writes the client address as the user: actor.ip."""
    event = audit("/job/app/doDelete by 10.1.2.3")
    assert event["actor"] == {"type": "user", "ip": "10.1.2.3"}
    assert event["kind"] == "config.change"


def test_unparseable_address_is_left_out() -> None:
    """actor.ip must be an IP address; a non-address 'from' stays in raw only."""
    event = audit("/configSubmit by admin from unknown-host")
    assert "ip" not in event["actor"]


# --- Audit Trail: builds ---------------------------------------------------------------


def test_build_started() -> None:
    """RunListener.onStarted: `<job url> #<n> <causes>, Parameters:[...]` → ci.run build.started."""
    event = audit("job/deploy-prod/ #42 Started by user Alice Smith, Parameters:[TARGET: {prod}, TOKEN: {****}]")
    assert (event["kind"], event["action"], event["outcome"]) == ("ci.run", "build.started", "unknown")
    assert event["actor"] == {"name": "Alice Smith", "type": "user"}
    assert event["target"] == {"type": "job", "name": "deploy-prod"}
    assert event["attrs"]["build_number"] == 42
    assert event["attrs"]["parameters"] == "TARGET: {prod}, TOKEN: {****}"
    assert event["attrs"]["causes"] == "Started by user Alice Smith"


def test_build_started_by_timer_in_a_folder() -> None:
    """A timer-started build has no user; an older plugin writes no parameters."""
    event = audit("job/platform/job/api/ #7 Started by timer")
    assert "actor" not in event
    assert event["target"] == {"type": "job", "name": "platform/api"}
    assert event["attrs"]["causes"] == "Started by timer"
    assert "parameters" not in event["attrs"]


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        ("SUCCESS", "success"),
        ("FAILURE", "failure"),
        ("ABORTED", "failure"),
        ("UNSTABLE", "failure"),
        ("NOT_BUILT", "unknown"),
    ],
)
def test_build_finalized(result: str, outcome: str) -> None:
    """RunListener.onFinalized → ci.run build.finalized with the result as outcome."""
    event = audit(
        "platform » api #42 Started by user Alice Smith, Parameters:[TARGET: {prod}] on node built-in"
        f" started at 2024-01-15T09:59:00Z completed in 5321ms completed: {result}"
    )
    assert (event["kind"], event["action"], event["outcome"]) == ("ci.run", "build.finalized", outcome)
    assert event["target"] == {"type": "job", "name": "platform » api"}
    assert event["actor"]["name"] == "Alice Smith"
    assert event["attrs"] | {"result": None} == {
        "build_number": 42,
        "result": None,
        "node": "built-in",
        "started_at": "2024-01-15T09:59:00Z",
        "duration_ms": 5321,
        "causes": "Started by user Alice Smith",
        "parameters": "TARGET: {prod}",
    }


# --- Audit Trail: authentication, credentials, scripts -------------------------------------


@pytest.mark.parametrize(
    ("line", "kind", "outcome", "user"),
    [
        ("Successful login for user 'alice'", "auth.success", "success", "alice"),
        ("Failed login attempt for user 'bob'", "auth.failure", "failure", "bob"),
        ("Failed login attempt for user '<unknown>'", "auth.failure", "failure", "<unknown>"),
        ("Logout for user 'alice'", "auth.logout", "success", "alice"),
        ("user alice logged in", "auth.success", "success", "alice"),
        ("login failed for bob", "auth.failure", "failure", "bob"),
        ("user alice logged out", "auth.logout", "success", "alice"),
    ],
)
def test_authentication(line: str, kind: str, outcome: str, user: str) -> None:
    """AuthenticationAuditListener's lines (and the older short forms) → auth.* with the user as actor."""
    event = audit(line)
    assert (event["kind"], event["outcome"]) == (kind, outcome)
    assert event["actor"] == {"name": user, "type": "user"}


def test_failed_login_with_address() -> None:
    """A trailing `from <ip>` on a login line fills actor.ip."""
    event = audit("login failed for bob from 203.0.113.9")
    assert event["actor"] == {"name": "bob", "type": "user", "ip": "203.0.113.9"}


def test_credentials_used_by_a_build() -> None:
    """CredentialUsageListener → jenkins.audit credentials.use; the run is the actor, the credential the target."""
    event = audit(
        "'deploy-prod #42' (class org.jenkinsci.plugins.workflow.job.WorkflowRun) used credentials 'aws-prod'"
        " (class com.cloudbees.jenkins.plugins.awscredentials.AWSCredentialsImpl)."
    )
    assert (event["kind"], event["action"]) == ("jenkins.audit", "credentials.use")
    assert event["actor"] == {"name": "deploy-prod #42", "type": "WorkflowRun"}
    assert event["target"] == {"type": "credentials", "id": "aws-prod"}
    assert event["attrs"]["credentials_type"] == "com.cloudbees.jenkins.plugins.awscredentials.AWSCredentialsImpl"


def test_script_console() -> None:
    """ScriptUsageListener: a multi-line record; the script stays in raw, the origin in attrs."""
    message = (
        "A groovy script was executed by user 'admin'. Origin: Script Console Controller. \n"
        "The executed script: \nprintln(Jenkins.instance.pluginManager.plugins)"
    )
    event = audit(message)
    assert (event["kind"], event["action"]) == ("jenkins.audit", "script.execute")
    assert event["actor"] == {"name": "admin", "type": "user"}
    assert event["attrs"]["origin"] == "Script Console Controller"
    assert event["raw"]["message"] == message


@pytest.mark.parametrize("line", ["Something nobody parses", "", "   ", "by by by"])
def test_unknown_lines_are_kept(line: str) -> None:
    """Never drop an event: any other line is jenkins.audit with the record in raw."""
    event = audit(line)
    assert (event["kind"], event["action"]) == ("jenkins.audit", "audit")
    assert event["raw"]["message"] == line


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-01-15T11:00:05+0100", "2024-01-15T10:00:05.000000Z"),
        ("2024-01-15T10:00:05Z", "2024-01-15T10:00:05.000000Z"),
        ("15/01/2024 10:00", "2026-01-02T03:04:05.000000Z"),
        (None, "2026-01-02T03:04:05.000000Z"),
    ],
)
def test_timestamp(stamp: str | None, expected: str) -> None:
    """@timestamp (Java `yyyy-MM-dd'T'HH:mm:ssZ`) → RFC 3339 UTC; unreadable or absent → received."""
    assert audit("Successful login for user 'alice'", stamp)["time"] == expected


@pytest.mark.parametrize("record", [{"@timestamp": STAMP}, {"message": 5}, ["message"]])
def test_audit_record_must_have_a_message(record: Any) -> None:
    """A record without a string `message` is SourcePayloadError."""
    with pytest.raises(SourcePayloadError):
        audit_to_envelopes(record, "jenkins-ci")


# --- Notification plugin ------------------------------------------------------------

NOTIFICATION: dict[str, Any] = {
    "name": "asgard",
    "display_name": "asgard",
    "url": "job/asgard/",
    "build": {
        "full_url": "http://localhost:8080/job/asgard/18/",
        "number": 18,
        "queue_id": 4,
        "timestamp": 1705312740000,
        "duration": 65000,
        "phase": "COMPLETED",
        "status": "SUCCESS",
        "url": "job/asgard/18/",
        "scm": {
            "url": "https://github.com/evgeny-goldin/asgard.git",
            "branch": "origin/master",
            "commit": "c6d86dc7c283a6bd3c1f2d8bd6e1a2d2ad9d68a0",
        },
        "parameters": {"TARGET": "prod"},
        "log": "",
        "notes": "",
        "artifacts": {
            "asgard.war": {"archive": "http://localhost:8080/job/asgard/18/artifact/asgard.war"},
        },
    },
}


def notification(**build: Any) -> dict[str, Any]:
    body = copy.deepcopy(NOTIFICATION)
    body["build"].update(build)
    return {key: value for key, value in body.items() if value is not None}


def test_completed_notification() -> None:
    """COMPLETED + SUCCESS → ci.run build.completed, success, at start + duration."""
    event = one(notification_to_envelopes(notification(), "jenkins-ci"))
    assert (event["kind"], event["action"], event["outcome"]) == ("ci.run", "build.completed", "success")
    assert event["source"] == {
        "type": "jenkins",
        "id": "jenkins-ci",
        "delivery": "job/asgard/#18@1705312740000/COMPLETED",
    }
    assert event["target"] == {"type": "job", "id": "job/asgard/", "name": "asgard"}
    assert event["time"] == "2024-01-15T10:00:05.000000Z"
    assert event["attrs"] == {
        "build_number": 18,
        "phase": "COMPLETED",
        "status": "SUCCESS",
        "build_url": "http://localhost:8080/job/asgard/18/",
        "display_name": "asgard",
        "queue_id": 4,
        "scm_url": "https://github.com/evgeny-goldin/asgard.git",
        "branch": "origin/master",
        "commit": "c6d86dc7c283a6bd3c1f2d8bd6e1a2d2ad9d68a0",
    }
    assert event["raw"] == NOTIFICATION


@pytest.mark.parametrize(
    ("phase", "status", "outcome", "time"),
    [
        ("QUEUED", None, "unknown", "2026-01-02T03:04:05.000000Z"),
        ("STARTED", None, "unknown", "2024-01-15T09:59:00.000000Z"),
        ("COMPLETED", "FAILURE", "failure", "2024-01-15T10:00:05.000000Z"),
        ("FINALIZED", "ABORTED", "failure", "2024-01-15T10:00:05.000000Z"),
        ("FINALIZED", "UNSTABLE", "failure", "2024-01-15T10:00:05.000000Z"),
        ("FINALIZED", "NOT_BUILT", "unknown", "2024-01-15T10:00:05.000000Z"),
    ],
)
def test_phases(phase: str, status: str | None, outcome: str, time: str) -> None:
    """Each phase is its own event; outcome only from a final status; QUEUED has no build time."""
    body = notification(phase=phase, status=status)
    if status is None:
        del body["build"]["status"]
    event = one(notification_to_envelopes(body, "jenkins-ci"))
    assert event["action"] == f"build.{phase.lower()}"
    assert event["outcome"] == outcome
    assert event["time"] == time
    assert event["source"]["delivery"].endswith(f"#18@1705312740000/{phase}")


def test_resent_notification_dedups() -> None:
    """The same job, build and phase is the same event; another phase is another (DESIGN.md §4)."""
    first = prepare(notification_to_envelopes(notification(), "j")[0])
    again = prepare(notification_to_envelopes(notification(), "j")[0])
    finalized = prepare(notification_to_envelopes(notification(phase="FINALIZED"), "j")[0])
    assert first.id == again.id != finalized.id


def test_folder_job_name_from_url() -> None:
    """For a job in a folder the target is the full name from the job URL."""
    body = notification() | {"name": "api", "url": "job/platform/job/api/"}
    event = one(notification_to_envelopes(body, "j"))
    assert event["target"] == {"type": "job", "id": "job/platform/job/api/", "name": "platform/api"}
    assert event["source"]["delivery"] == "job/platform/job/api/#18@1705312740000/COMPLETED"


def test_same_named_jobs_in_two_folders_are_different_events() -> None:
    """The delivery key uses the job's path, so folder/api and other/api builds never dedup together."""
    here = prepare(notification_to_envelopes(notification() | {"name": "api", "url": "job/platform/job/api/"}, "j")[0])
    there = prepare(notification_to_envelopes(notification() | {"name": "api", "url": "job/payments/job/api/"}, "j")[0])
    assert here.id != there.id


def test_a_recreated_job_reusing_build_numbers_is_a_new_event() -> None:
    """Build numbers restart when a job is re-created; the build's start time tells the builds apart."""
    old = notification()
    new = notification()
    new["build"] = {**new["build"], "timestamp": new["build"]["timestamp"] + 86_400_000}
    first = prepare(notification_to_envelopes(old, "j")[0])
    second = prepare(notification_to_envelopes(new, "j")[0])
    assert first.id != second.id


def test_minimal_notification() -> None:
    """Only name, build.number and build.phase are needed."""
    event = one(notification_to_envelopes({"name": "x", "build": {"number": 1, "phase": "STARTED"}}, "j"))
    assert (event["action"], event["target"]) == ("build.started", {"type": "job", "name": "x"})
    assert event["attrs"] == {"build_number": 1, "phase": "STARTED"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"build": {"number": 1, "phase": "STARTED"}}, "name"),
        ({"name": "x"}, "build"),
        ({"name": "x", "build": {"phase": "STARTED"}}, "build.number"),
        ({"name": "x", "build": {"number": "1", "phase": "STARTED"}}, "build.number"),
        ({"name": "x", "build": {"number": 1}}, "build.phase"),
    ],
)
def test_notification_missing_fields(body: dict[str, Any], field: str) -> None:
    """Required fields missing → SourcePayloadError naming the field."""
    with pytest.raises(SourcePayloadError, match=field):
        notification_to_envelopes(body, "j")


def test_long_parameter_list_is_cut_in_attrs_only() -> None:
    """attrs hold at most 4,096 characters of text per field; raw keeps the whole line."""
    parameters = ", ".join(f"P{n}: {{{'v' * 50}}}" for n in range(2000))
    line = f"job/app/ #3 Started by user bob, Parameters:[{parameters}]"
    event = audit(line)
    assert event["attrs"]["parameters"] == parameters[:4096]
    assert event["raw"]["size"] > 100_000
