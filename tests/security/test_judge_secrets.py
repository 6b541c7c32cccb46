"""Judges cannot be turned against the server: a key only from an allowed variable, requests only to
addresses the egress policy allows (checked on the addresses, at the connection), no redirects, no key in
any error, and only accounts with `annotate.manage_judges` may create, change, delete or probe them."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.models import Campaign, Item, Job, Judge
from jobs.runner import job_run
from routing.judges.runs import judge_run_start
from routing.judges.services import judge_create, judge_probe
from tests.factories import CampaignFactory, ItemFactory, UserFactory
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "server-secret-key-that-must-never-leave"


def grant_judge_admin(user):
    """The permission that creating, changing, deleting and probing judges needs."""
    user.user_permissions.add(Permission.objects.get(codename="manage_judges", content_type__app_label="annotate"))
    return user


def judge_values(**extra) -> dict:
    return {"name": "j", "base_url": "http://127.0.0.1:9/v1", "model": "m", "probe": False, **extra}


@pytest.fixture
def campaign(db):
    campaign = CampaignFactory(preset_name="simple-pairwise", routing_policy=Campaign.RoutingPolicy.ALL_LLM)
    for i in range(3):
        ItemFactory(campaign=campaign, external_id=f"x{i}", route=Item.Route.LLM)
    return campaign


def run(campaign) -> Job:
    return job_run(job_id=judge_run_start(campaign=campaign, dispatch=False).pk)


def staff_api(*, manage: bool):
    from rest_framework.test import APIClient

    user = UserFactory(is_staff=True)
    if manage:
        grant_judge_admin(user)
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- the key variable ------------------------------------------------------------------------


def test_a_key_variable_outside_the_allow_list_is_refused_by_service_api_and_command(admin_api):
    refused = r"api_key_env: 'SECRET_KEY' is not an allowed key variable.*TANDEM_JUDGE_KEY_"
    with pytest.raises(ValueError, match=refused):
        judge_create(**judge_values(api_key_env="SECRET_KEY"))
    response = admin_api.post("/api/judges/", judge_values(api_key_env="DATABASE_URL"), format="json")
    assert response.status_code == 400
    assert "TANDEM_JUDGE_KEY_ENVS" in response.json()["api_key_env"][0]
    with pytest.raises(CommandError, match="not an allowed key variable"):
        call_command("create_judge", "c", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                     "--api-key-env", "SECRET_KEY", "--no-probe")  # fmt: skip
    assert not Judge.objects.exists()


def test_the_prefix_and_the_listed_names_are_allowed_but_never_the_servers_own_secrets(settings):
    settings.TANDEM_JUDGE_KEY_ENVS = ["OPENAI_API_KEY", "SECRET_KEY"]
    judge_create(**judge_values(name="a", api_key_env="TANDEM_JUDGE_KEY_OPENAI"))
    judge_create(**judge_values(name="b", api_key_env="OPENAI_API_KEY"))
    with pytest.raises(ValueError, match="not an allowed key variable"):
        judge_create(**judge_values(name="c", api_key_env="SECRET_KEY"))
    settings.TANDEM_JUDGE_KEY_PREFIX = "MY_KEYS_"
    judge_create(**judge_values(name="d", api_key_env="MY_KEYS_VLLM"))
    with pytest.raises(ValueError, match="starts with MY_KEYS_"):
        judge_create(**judge_values(name="e", api_key_env="TANDEM_JUDGE_KEY_OPENAI"))


def test_the_django_admin_form_refuses_it_on_the_field(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.post(
        "/admin/annotate/judge/add/",
        {"name": "j", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "SECRET_KEY",
         "sampling": "{}", "concurrency": 4, "requests_per_minute": 60, "price_in_per_1k": 0,
         "price_out_per_1k": 0, "capabilities": "{}", "active": "on"},
    )  # fmt: skip
    assert response.status_code == 200  # the form again, with its error
    assert "is not an allowed key variable" in response.content.decode()
    assert not Judge.objects.exists()


def test_a_judge_row_made_before_the_rules_never_sends_the_secret(campaign, monkeypatch):
    """A row written by SQL (or before the upgrade) names SECRET_KEY: the probe and the run send nothing."""
    monkeypatch.setenv("SECRET_KEY", SECRET)
    with FakeOpenAIServer() as server:
        judge = Judge.objects.create(name="old", base_url=server.base_url, model="fake-judge", api_key_env="SECRET_KEY")
        campaign.judges.add(judge)
        capabilities = judge_probe(judge=judge)
        job = run(campaign)
        assert server.calls == 0
    assert "api_key_env 'SECRET_KEY' is not an allowed key variable" in capabilities["probe_error"]
    assert job.result["failed"] == 6 and job.result["done"] == 0
    error = job.result["failures"][0]["error"]
    assert "judge 'old': api_key_env 'SECRET_KEY' is not an allowed key variable" in error
    assert "nothing was sent" in error and job.result["failures"][0]["attempts"] == 0


# --- the egress policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://[::ffff:169.254.169.254]/v1",  # the same, IPv4-mapped
        "http://100.100.100.200/v1",  # Alibaba Cloud's metadata
        "http://0.0.0.0:8000/v1",
        "http://[fe80::1]/v1",
    ],
)
def test_link_local_and_metadata_addresses_are_refused_at_create_time(admin_api, url):
    response = admin_api.post("/api/judges/", judge_values(base_url=url), format="json")
    assert response.status_code == 400, response.content
    assert "link-local, metadata or reserved" in response.json()["base_url"][0]


def test_other_schemes_are_refused():
    with pytest.raises(ValueError, match="base_url"):
        judge_create(**judge_values(base_url="file:///etc/passwd"))


def test_production_refuses_private_and_loopback_unless_their_network_is_listed(settings):
    settings.TANDEM_JUDGE_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/v1", "http://10.1.2.3/v1", "http://localhost:8000/v1", "http://[::1]/v1"):
        with pytest.raises(ValueError, match="private or loopback address, refused while TANDEM_JUDGE_ALLOW_PRIVATE"):
            judge_create(**judge_values(name=url, base_url=url))
    settings.TANDEM_JUDGE_URL_ALLOW = ["10.0.0.0/8"]
    judge_create(**judge_values(name="internal", base_url="http://10.1.2.3/v1"))


def test_host_patterns_restrict_which_hosts_judges_may_name(settings):
    settings.TANDEM_JUDGE_URL_ALLOW = ["*.openai.com"]
    with pytest.raises(ValueError, match=r"host 127.0.0.1 is not in TANDEM_JUDGE_URL_ALLOW \(\*\.openai\.com\)"):
        judge_create(**judge_values(base_url="http://127.0.0.1:9/v1"))


def test_a_name_that_rebinds_to_loopback_is_refused_at_the_connection(campaign, settings, monkeypatch):
    """The name resolves to a public address when the judge is saved and to 127.0.0.1 when it is called:
    the connection pool's resolver checks the address it is about to use, so nothing reaches the server."""
    settings.TANDEM_JUDGE_ALLOW_PRIVATE = False
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def rebinding(host, *args, **kwargs):
        if host != "judge.rebind.test":
            return real(host, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, args[0] if args else 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with FakeOpenAIServer() as server:
        judge = judge_create(**judge_values(name="rebind", base_url=f"http://judge.rebind.test:{server.port}/v1"))
        campaign.judges.add(judge)
        job = run(campaign)
        assert server.calls == 0
    failure = job.result["failures"][0]
    assert "judge.rebind.test (127.0.0.1) is a private or loopback address" in failure["error"]
    assert failure["attempts"] == 1  # a refusal is not retried


class _Endpoint(BaseHTTPRequestHandler):
    """A hostile endpoint: redirects elsewhere, or echoes the request's Authorization header in an error."""

    mode = "redirect"
    target = ""
    hits = 0

    def do_POST(self):  # noqa: N802 - the http.server API
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "redirect":
            self.send_response(307)
            self.send_header("Location", self.target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f'{{"error": {{"message": "bad request, you sent {self.headers.get("Authorization")}"}}}}'.encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile():
    httpd = HTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Endpoint.hits = 0
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_redirects_are_not_followed(campaign, hostile):
    with FakeOpenAIServer() as elsewhere:
        _Endpoint.mode, _Endpoint.target = "redirect", f"{elsewhere.base_url}/chat/completions"
        judge = judge_create(**judge_values(name="redir", base_url=f"http://127.0.0.1:{hostile.server_port}/v1"))
        campaign.judges.add(judge)
        job = run(campaign)
        assert elsewhere.calls == 0
    assert _Endpoint.hits == 6
    assert "HTTP 307 from the judge endpoint: a redirect to http://127.0.0.1:" in job.result["failures"][0]["error"]
    assert "not followed" in job.result["failures"][0]["error"]


def test_an_endpoint_echoing_the_key_does_not_put_it_in_the_run_report_or_the_probe(campaign, hostile, monkeypatch):
    monkeypatch.setenv("TANDEM_JUDGE_KEY_ECHO", "sk-live-do-not-show")
    _Endpoint.mode = "echo"
    url = f"http://127.0.0.1:{hostile.server_port}/v1"
    judge = judge_create(**judge_values(name="echo", base_url=url, api_key_env="TANDEM_JUDGE_KEY_ECHO"))
    campaign.judges.add(judge)
    job = run(campaign)
    capabilities = judge_probe(judge=judge)
    assert _Endpoint.hits >= 7
    everything = str(job.result) + str(job.error) + str(capabilities)
    assert "HTTP 400" in everything and "Bearer [redacted]" in everything
    assert "sk-live-do-not-show" not in everything


# --- the permission ------------------------------------------------------------------------------


def test_staff_without_the_permission_may_list_judges_but_not_change_them():
    judge = Judge.objects.create(name="listed", base_url="http://127.0.0.1:9/v1", model="m")
    staff = staff_api(manage=False)
    assert staff.get("/api/judges/").status_code == 200
    for response in (
        staff.post("/api/judges/", judge_values(), format="json"),
        staff.patch(f"/api/judges/{judge.pk}/", {"concurrency": 2}, format="json"),
        staff.post(f"/api/judges/{judge.pk}/probe/"),
    ):
        assert response.status_code == 403
        assert "annotate.manage_judges" in response.json()["detail"]
    assert not Judge.objects.filter(name="j").exists()


def test_staff_with_the_permission_may_create_and_change_judges():
    manager = staff_api(manage=True)
    created = manager.post("/api/judges/", judge_values(), format="json")
    assert created.status_code == 201, created.content
    changed = manager.patch(f"/api/judges/{created.json()['id']}/", {"concurrency": 2}, format="json")
    assert changed.status_code == 200 and changed.json()["concurrency"] == 2


def test_the_django_admin_needs_the_permission_too(client):
    staff = UserFactory(is_staff=True)
    model_perms = Permission.objects.filter(content_type__app_label="annotate", content_type__model="judge")
    staff.user_permissions.add(*model_perms.exclude(codename="manage_judges"))
    judge = Judge.objects.create(name="seen", base_url="http://127.0.0.1:9/v1", model="m")
    client.force_login(staff)
    assert client.get("/admin/annotate/judge/add/").status_code == 403
    assert client.post(f"/admin/annotate/judge/{judge.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"/admin/annotate/judge/{judge.pk}/change/").status_code == 200  # read-only view
    assert Judge.objects.filter(pk=judge.pk).exists()
    grant_judge_admin(staff)
    assert client.get("/admin/annotate/judge/add/").status_code == 200
