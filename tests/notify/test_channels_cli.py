"""`krsync channels`: notification channels managed from a terminal (issue 16: "Managed over the
API, the browser and the CLI, with a 'send a test' action"), through the API's schema and
service; the URL is never printed and a refusal is one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from notify.receivers import dispatch, emit_events, free_port, receiver
from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()
CANARY = "canary-0d9a41f7"
CHANNELS = "/api/v1/notification-channels"


def test_add_list_test_and_remove_a_channel(client: TestClient, tmp_path: Path) -> None:
    with receiver() as hook:
        url_file = tmp_path / "slack-url"
        url_file.write_text(f"{hook.url}/services/T1/B2/{CANARY}\n")
        added = runner.invoke(
            cli,
            [
                "channels",
                "add",
                "--name",
                "okr alerts",
                "--kind",
                "slack",
                "--url-file",
                str(url_file),
                "--event",
                "source.failing",
                "--event",
                "key_result.done",
                "--team",
                "Growth",
                "--cycle-id",
                "3",
            ],
        )
        assert added.exit_code == 0, added.output
        assert "created channel 1 (okr alerts)" in added.output
        read = client.get(f"{CHANNELS}/1").json()
        assert read["config"] == {"url_set": True}
        assert read["events"] == ["source.failing", "key_result.done"]
        assert read["scope"] == {"cycle_id": 3, "team": "Growth"}

        mail = runner.invoke(
            cli,
            [
                "channels",
                "add",
                "--name",
                "mail",
                "--kind",
                "email",
                "--to",
                "okr@example.com",
                "--to",
                "ana@example.com",
            ],
        )
        assert mail.exit_code == 0, mail.output

        listed = runner.invoke(cli, ["channels", "list"], env={"COLUMNS": "200"})
        assert listed.exit_code == 0, listed.output
        assert "okr alerts" in listed.output
        assert "URL set" in listed.output
        assert "okr@example.com, ana@example.com" in listed.output
        assert "cycle_id=3, team=Growth" in listed.output

        tested = runner.invoke(cli, ["channels", "test", "okr alerts"])
        assert tested.exit_code == 0, tested.output
        assert "the test message was delivered to 'okr alerts'" in tested.output
        assert [r.path for r in hook.requests] == [f"/services/T1/B2/{CANARY}"]

    down = runner.invoke(cli, ["channels", "test", "1"])  # the receiver is gone
    assert down.exit_code == 1
    assert "the test message was not delivered: could not reach the receiver" in down.output
    assert "Traceback" not in down.output

    removed = runner.invoke(cli, ["channels", "remove", "okr alerts"])
    assert removed.exit_code == 0, removed.output
    assert "removed channel 1 (okr alerts)" in removed.output
    assert client.get(f"{CHANNELS}/1").status_code == 404
    for result in (added, mail, listed, tested, down, removed):
        assert CANARY not in result.output


def test_a_webhook_channel_prints_its_signing_secret_once(client: TestClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook/{CANARY}"
    added = runner.invoke(
        cli, ["channels", "add", "--name", "bi", "--kind", "webhook", "--url", url]
    )
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip()
    assert secret.startswith("whsec_")
    assert CANARY not in added.output
    listed = runner.invoke(cli, ["channels", "list"])
    assert "whsec_" not in listed.output
    assert CANARY not in listed.output


def test_the_delivery_log_filters_by_channel_and_status(client: TestClient) -> None:
    with receiver() as hook:
        up = f"{hook.url}/up/{CANARY}"
        runner.invoke(cli, ["channels", "add", "--name", "up", "--kind", "slack", "--url", up])
        down = f"http://127.0.0.1:{free_port()}/down/{CANARY}"
        runner.invoke(cli, ["channels", "add", "--name", "down", "--kind", "teams", "--url", down])
        emit_events(2)
        dispatch()
    every = runner.invoke(cli, ["channels", "deliveries"], env={"COLUMNS": "250"})
    assert every.exit_code == 0, every.output
    assert every.output.count("key_result.status_changed") == 4
    assert every.output.count("delivered") == 2
    pending = runner.invoke(
        cli,
        ["channels", "deliveries", "--channel", "down", "--status", "pending"],
        env={"COLUMNS": "250"},
    )
    assert pending.exit_code == 0, pending.output
    assert pending.output.count("key_result.status_changed") == 2
    assert "could not reach the receiver" in pending.output
    assert "delivered" not in pending.output
    none = runner.invoke(cli, ["channels", "deliveries", "--status", "failed"])
    assert none.exit_code == 0
    assert "no deliveries match" in none.output
    for result in (every, pending):
        assert CANARY not in result.output


def test_refusals_are_one_line_with_exit_status_2(client: TestClient, tmp_path: Path) -> None:
    def refused(*args: str) -> str:
        result = runner.invoke(cli, ["channels", *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result.output

    assert "config.url: a slack channel needs its url" in refused(
        "add", "--name", "a", "--kind", "slack"
    )
    bad_url = refused("add", "--name", "a", "--kind", "slack", "--url", f"ftp://x/{CANARY}")
    assert "config.url: must be an http or https URL" in bad_url
    assert CANARY not in bad_url
    assert "kind: Input should be" in refused("add", "--name", "a", "--kind", "pager")
    assert "events.0: Input should be" in refused(
        "add", "--name", "a", "--kind", "email", "--to", "a@example.com", "--event", "nope"
    )
    assert "config.to.0: must be an email address" in refused(
        "add", "--name", "a", "--kind", "email", "--to", "not-an-address"
    )
    both = refused("add", "--name", "a", "--kind", "slack", "--url", "https://x", "--url-file", "f")
    assert "--url or --url-file, not both" in both
    missing = refused("add", "--name", "a", "--kind", "slack", "--url-file", str(tmp_path / "no"))
    assert "can't read --url-file" in missing
    runner.invoke(cli, ["channels", "add", "--name", "taken", "--kind", "email", "--to", "a@b.co"])
    assert "name: a notification channel named 'taken' exists already" in refused(
        "add", "--name", "taken", "--kind", "email", "--to", "a@b.co"
    )
    assert "no notification channel is named 'nope'" in refused("test", "nope")
    assert "no notification channel is named '99'" in refused("remove", "99")
    assert "unknown status 'lost'" in refused("deliveries", "--status", "lost")
    assert client.get(CHANNELS).json()["total"] == 1
