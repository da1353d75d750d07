"""Shared helpers for the source adapter tests, and GitLab payloads.

No package ships real GitLab webhook payloads (PyPI pydantic-gitlab-webhooks and
npm gitlab-event-types carry types only), so the payloads below are GitLab's own
documented examples — doc/user/project/integrations/webhook_events.md,
doc/administration/system_hooks.md and doc/user/compliance/audit_event_schema.md —
with avatar URLs and a few repeated nested objects left out.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from sealtrail.event import prepare
from sealtrail.sources.base import Envelope

RECEIVED = "2026-01-02T03:04:05.000000Z"


def stored(envelopes: list[Envelope]) -> list[dict[str, Any]]:
    """Each envelope as sealtrail stores it: through `prepare` (which validates) and back from the entry bytes."""
    out = []
    for envelope in envelopes:
        entry = prepare(envelope, received=RECEIVED).entry
        decoded: dict[str, Any] = orjson.loads(entry)
        out.append(decoded)
    return out


def one(envelopes: list[Envelope]) -> dict[str, Any]:
    """The single stored envelope of a one-event delivery."""
    assert len(envelopes) == 1, envelopes
    return stored(envelopes)[0]


def payload(example: dict[str, Any]) -> dict[str, Any]:
    """A private copy of a fixture, so a test may change it."""
    return copy.deepcopy(example)


_PROJECT_DIASPORA = {
    "id": 15,
    "name": "Diaspora",
    "description": "",
    "web_url": "http://example.com/mike/diaspora",
    "avatar_url": None,
    "git_ssh_url": "git@example.com:mike/diaspora.git",
    "git_http_url": "http://example.com/mike/diaspora.git",
    "namespace": "Mike",
    "visibility_level": 0,
    "path_with_namespace": "mike/diaspora",
    "default_branch": "master",
}

PUSH: dict[str, Any] = {
    "object_kind": "push",
    "event_name": "push",
    "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
    "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    "ref": "refs/heads/master",
    "ref_protected": True,
    "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    "user_id": 4,
    "user_name": "John Smith",
    "user_username": "jsmith",
    "user_email": "john@example.com",
    "project_id": 15,
    "project": _PROJECT_DIASPORA,
    "repository": {
        "name": "Diaspora",
        "url": "git@example.com:mike/diaspora.git",
        "description": "",
        "homepage": "http://example.com/mike/diaspora",
        "git_http_url": "http://example.com/mike/diaspora.git",
        "git_ssh_url": "git@example.com:mike/diaspora.git",
        "visibility_level": 0,
    },
    "commits": [
        {
            "id": "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
            "message": (
                "Update Catalan translation to e38cb41.\n\n"
                "See https://gitlab.com/gitlab-org/gitlab for more information"
            ),
            "title": "Update Catalan translation to e38cb41.",
            "timestamp": "2011-12-12T14:27:31+02:00",
            "url": "http://example.com/mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
            "author": {"name": "Jordi Mallach", "email": "jordi@softcatala.org"},
            "added": ["CHANGELOG"],
            "modified": ["app/controller/application.rb"],
            "removed": [],
        },
        {
            "id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "message": "fixed readme",
            "title": "fixed readme",
            "timestamp": "2012-01-03T23:36:29+02:00",
            "url": "http://example.com/mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
            "added": ["CHANGELOG"],
            "modified": ["app/controller/application.rb"],
            "removed": [],
        },
    ],
    "total_commits_count": 4,
}

TAG_PUSH: dict[str, Any] = {
    "object_kind": "tag_push",
    "event_name": "tag_push",
    "before": "0000000000000000000000000000000000000000",
    "after": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
    "ref": "refs/tags/v1.0.0",
    "ref_protected": True,
    "checkout_sha": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
    "user_id": 1,
    "user_name": "John Smith",
    "project_id": 1,
    "project": {
        "id": 1,
        "name": "Example",
        "web_url": "http://example.com/jsmith/example",
        "path_with_namespace": "jsmith/example",
        "default_branch": "master",
    },
    "commits": [],
    "total_commits_count": 0,
}

_USER_ROOT = {
    "id": 1,
    "name": "Administrator",
    "username": "root",
    "email": "admin@example.com",
}

_PROJECT_GITLAB_TEST = {
    "id": 1,
    "name": "Gitlab Test",
    "description": "Aut reprehenderit ut est.",
    "web_url": "http://example.com/gitlabhq/gitlab-test",
    "avatar_url": None,
    "namespace": "GitlabHQ",
    "visibility_level": 20,
    "path_with_namespace": "gitlabhq/gitlab-test",
    "default_branch": "master",
}

MERGE_REQUEST: dict[str, Any] = {
    "object_kind": "merge_request",
    "event_type": "merge_request",
    "user": _USER_ROOT,
    "project": _PROJECT_GITLAB_TEST,
    "object_attributes": {
        "id": 99,
        "iid": 1,
        "target_branch": "master",
        "source_branch": "ms-viewport",
        "source_project_id": 14,
        "author_id": 51,
        "assignee_ids": [6],
        "title": "MS-Viewport",
        "created_at": "2013-12-03T17:23:34Z",
        "updated_at": "2013-12-03T17:23:34Z",
        "state": "opened",
        "draft": False,
        "merge_status": "unchecked",
        "target_project_id": 14,
        "description": "",
        "url": "http://example.com/diaspora/merge_requests/1",
        "last_commit": {
            "id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "message": "fixed readme",
            "timestamp": "2012-01-03T23:36:29+02:00",
        },
        "action": "open",
        "detailed_merge_status": "mergeable",
    },
    "changes": {"draft": {"previous": True, "current": False}},
    "reviewers": [{"id": 6, "name": "User1", "username": "user1"}],
}

PIPELINE: dict[str, Any] = {
    "object_kind": "pipeline",
    "object_attributes": {
        "id": 31,
        "iid": 3,
        "name": "Pipeline for branch: master",
        "ref": "master",
        "tag": False,
        "sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
        "before_sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
        "source": "merge_request_event",
        "status": "success",
        "stages": ["build", "test", "deploy"],
        "created_at": "2016-08-12 15:23:28 UTC",
        "finished_at": "2016-08-12 15:26:29 UTC",
        "duration": 63,
        "variables": [{"key": "NESTOR_PROD_ENVIRONMENT", "value": "us-west-1"}],
        "url": "http://example.com/gitlab-org/gitlab-test/-/pipelines/31",
    },
    "merge_request": {"id": 1, "iid": 1, "title": "Test", "state": "opened"},
    "user": {
        "id": 1,
        "name": "Administrator",
        "username": "root",
        "email": "user_email@gitlab.com",
    },
    "project": {
        "id": 1,
        "name": "Gitlab Test",
        "web_url": "http://192.168.64.1:3005/gitlab-org/gitlab-test",
        "path_with_namespace": "gitlab-org/gitlab-test",
        "default_branch": "master",
    },
    "commit": {
        "id": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
        "message": "test\n",
        "timestamp": "2016-08-12T17:23:21+02:00",
        "author": {"name": "User", "email": "user@gitlab.com"},
    },
    "builds": [
        {
            "id": 377,
            "stage": "test",
            "name": "test-image",
            "status": "success",
            "created_at": "2016-08-12 15:23:28 UTC",
            "started_at": "2016-08-12 15:26:12 UTC",
            "finished_at": "2016-08-12 15:26:29 UTC",
            "duration": 17.0,
            "queued_duration": 196.0,
            "failure_reason": None,
            "when": "on_success",
            "manual": False,
            "allow_failure": False,
            "environment": None,
        },
        {
            "id": 378,
            "stage": "test",
            "name": "test-build",
            "status": "failed",
            "created_at": "2016-08-12 15:23:28 UTC",
            "started_at": "2016-08-12 15:26:12 UTC",
            "finished_at": "2016-08-12 15:26:29 UTC",
            "duration": 17.0,
            "queued_duration": 196.0,
            "failure_reason": "script_failure",
            "when": "on_success",
            "manual": False,
            "allow_failure": False,
            "environment": None,
        },
    ],
}

JOB: dict[str, Any] = {
    "object_kind": "build",
    "ref": "gitlab-script-trigger",
    "tag": False,
    "before_sha": "2293ada6b400935a1378653304eaf6221e0fdb8f",
    "sha": "2293ada6b400935a1378653304eaf6221e0fdb8f",
    "build_id": 1977,
    "build_name": "test",
    "build_stage": "test",
    "build_status": "created",
    "build_created_at": "2021-02-23T02:41:37.886Z",
    "build_created_at_iso": "2021-02-23T02:41:37Z",
    "build_started_at": None,
    "build_started_at_iso": None,
    "build_finished_at": None,
    "build_finished_at_iso": None,
    "build_duration": None,
    "build_queued_duration": 1095.588715,
    "build_allow_failure": False,
    "build_failure_reason": "script_failure",
    "retries_count": 2,
    "pipeline_id": 2366,
    "project_id": 380,
    "project_name": "gitlab-org/gitlab-test",
    "user": {"id": 3, "name": "User", "email": "user@gitlab.com"},
    "commit": {
        "id": 2366,
        "name": "Build pipeline",
        "sha": "2293ada6b400935a1378653304eaf6221e0fdb8f",
        "message": "test\n",
        "author_name": "User",
        "author_email": "user@gitlab.com",
        "status": "created",
    },
    "project": {
        "id": 380,
        "name": "Gitlab Test",
        "web_url": "http://192.168.64.1:3005/gitlab-org/gitlab-test",
        "path_with_namespace": "gitlab-org/gitlab-test",
        "default_branch": "master",
    },
    "runner": {
        "active": True,
        "runner_type": "project_type",
        "is_shared": False,
        "id": 380987,
        "description": "shared-runners-manager-6.gitlab.com",
        "tags": ["linux", "docker"],
    },
    "environment": None,
}

DEPLOYMENT: dict[str, Any] = {
    "object_kind": "deployment",
    "status": "success",
    "status_changed_at": "2021-04-28 21:50:00 +0200",
    "deployment_id": 15,
    "deployable_id": 796,
    "deployable_url": "http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796",
    "environment": "staging",
    "environment_tier": "staging",
    "environment_slug": "staging",
    "environment_external_url": "https://staging.example.com",
    "project": {
        "id": 30,
        "name": "test-deployment-webhooks",
        "web_url": "http://10.126.0.2:3000/root/test-deployment-webhooks",
        "path_with_namespace": "root/test-deployment-webhooks",
        "default_branch": "master",
    },
    "short_sha": "279484c0",
    "user": _USER_ROOT,
    "user_url": "http://10.126.0.2:3000/root",
    "commit_url": "http://10.126.0.2:3000/root/test-deployment-webhooks/-/commit/279484c09fbe69ededfced8c1bb6e6d24616b468",
    "commit_title": "Add new file",
}

MEMBER_ADD: dict[str, Any] = {
    "created_at": "2020-12-11T04:57:22Z",
    "updated_at": "2020-12-11T04:57:22Z",
    "group_name": "webhook-test",
    "group_path": "webhook-test",
    "group_id": 100,
    "user_username": "test_user",
    "user_name": "Test User",
    "user_email": "testuser@webhooktest.com",
    "user_id": 64,
    "group_access": "Guest",
    "group_plan": None,
    "expires_at": "2020-12-14T00:00:00Z",
    "event_name": "user_add_to_group",
}

RELEASE: dict[str, Any] = {
    "id": 1,
    "created_at": "2020-11-02 12:55:12 UTC",
    "description": "v1.1 has been released",
    "name": "v1.1",
    "released_at": "2020-11-02 12:55:12 UTC",
    "tag": "v1.1",
    "object_kind": "release",
    "project": {
        "id": 2,
        "name": "release-webhook-example",
        "web_url": "https://example.com/gitlab-org/release-webhook-example",
        "path_with_namespace": "gitlab-org/release-webhook-example",
        "default_branch": "master",
    },
    "url": "https://example.com/gitlab-org/release-webhook-example/-/releases/v1.1",
    "action": "create",
    "assets": {"count": 5, "links": [], "sources": []},
    "commit": {
        "id": "ee0a3fb31ac16e11b9dbb596ad16d4af654d08f8",
        "message": "Release v1.1",
        "title": "Release v1.1",
        "timestamp": "2020-10-31T14:58:32+11:00",
        "author": {"name": "Example User", "email": "user@example.com"},
    },
}

ACCESS_TOKEN_PROJECT: dict[str, Any] = {
    "object_kind": "access_token",
    "project": {
        "id": 7,
        "name": "Flight",
        "web_url": "https://example.com/flightjs/Flight",
        "path_with_namespace": "flightjs/Flight",
        "default_branch": "master",
    },
    "object_attributes": {
        "user_id": 90,
        "created_at": "2024-01-24 16:27:40 UTC",
        "id": 25,
        "name": "acd",
        "expires_at": "2024-01-26",
    },
    "event_name": "expiring_access_token",
}

ACCESS_TOKEN_GROUP: dict[str, Any] = {
    "object_kind": "access_token",
    "group": {"group_name": "Twitter", "group_path": "twitter", "group_id": 35, "full_path": "twitter"},
    "object_attributes": {
        "user_id": 90,
        "created_at": "2024-01-24 16:27:40 UTC",
        "id": 25,
        "name": "acd",
        "expires_at": "2024-01-26",
    },
    "event_name": "expiring_access_token",
}

FEATURE_FLAG: dict[str, Any] = {
    "object_kind": "feature_flag",
    "project": _PROJECT_GITLAB_TEST,
    "user": _USER_ROOT,
    "user_url": "http://example.com/root",
    "object_attributes": {
        "id": 6,
        "name": "test-feature-flag",
        "description": "test-feature-flag-description",
        "active": True,
    },
}

ISSUE: dict[str, Any] = {
    "object_kind": "issue",
    "event_type": "issue",
    "user": _USER_ROOT,
    "project": _PROJECT_GITLAB_TEST,
    "object_attributes": {
        "id": 301,
        "title": "New API: create/update/delete file",
        "author_id": 51,
        "project_id": 14,
        "created_at": "2013-12-03T17:15:43Z",
        "updated_at": "2013-12-03T17:15:43Z",
        "iid": 23,
        "url": "http://example.com/diaspora/issues/23",
        "state": "opened",
        "action": "open",
    },
}

SYSTEM_FAILED_LOGIN: dict[str, Any] = {
    "event_name": "user_failed_login",
    "created_at": "2017-10-03T06:08:48Z",
    "updated_at": "2018-01-15T04:52:06Z",
    "name": "John Smith",
    "email": "user4@example.com",
    "user_id": 26,
    "username": "user4",
    "state": "blocked",
}

SYSTEM_USER_ADD_TO_TEAM: dict[str, Any] = {
    "created_at": "2012-07-21T07:30:56Z",
    "updated_at": "2012-07-21T07:38:22Z",
    "event_name": "user_add_to_team",
    "access_level": "Maintainer",
    "project_id": 74,
    "project_name": "StoreCloud",
    "project_path": "storecloud",
    "project_path_with_namespace": "jsmith/storecloud",
    "user_email": "johnsmith@example.com",
    "user_name": "John Smith",
    "user_username": "johnsmith",
    "user_id": 41,
    "project_visibility": "private",
}

SYSTEM_PROJECT_CREATE: dict[str, Any] = {
    "created_at": "2012-07-21T07:30:54Z",
    "updated_at": "2012-07-21T07:38:22Z",
    "event_name": "project_create",
    "name": "StoreCloud",
    "owner_email": "johnsmith@example.com",
    "owner_name": "John Smith",
    "owners": [{"name": "John", "email": "user1@example.com"}],
    "path": "storecloud",
    "path_with_namespace": "jsmith/storecloud",
    "project_id": 74,
    "project_visibility": "private",
}

AUDIT_GIT_FETCH: dict[str, Any] = {
    "id": "1",
    "author_id": -3,
    "entity_id": 29,
    "entity_type": "Project",
    "details": {
        "author_name": "deploy-key-name",
        "author_class": "DeployKey",
        "target_id": 29,
        "target_type": "Project",
        "target_details": "example-project",
        "custom_message": {"protocol": "ssh", "action": "git-upload-pack"},
        "ip_address": "127.0.0.1",
        "entity_path": "example-group/example-project",
    },
    "ip_address": "127.0.0.1",
    "author_name": "deploy-key-name",
    "entity_path": "example-group/example-project",
    "target_details": "example-project",
    "created_at": "2022-07-26T05:43:53.662Z",
    "target_type": "Project",
    "target_id": 29,
    "event_type": "repository_git_operation",
}
