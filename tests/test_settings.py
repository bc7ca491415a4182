"""Settings: environment over TOML over defaults; errors name the key and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.settings import SettingsError, load_settings


def test_defaults_need_no_file_and_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("COCKPIT_PORT", "COCKPIT_REDIS_URL", "COCKPIT_INCIDENT"):
        monkeypatch.delenv(key, raising=False)
    s = load_settings()
    assert (s.host, s.port, s.redis_url, s.recorder) == ("127.0.0.1", 8050, None, "auto")


def test_flags_beat_environment_beat_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cockpit.toml"
    cfg.write_text('port = 9000\nhost = "0.0.0.0"\ntrack_len = 50\nstale_after_s = {unit = 45}\n')
    monkeypatch.setenv("COCKPIT_PORT", "9100")
    s = load_settings(cfg)
    assert (s.port, s.host, s.track_len) == (9100, "0.0.0.0", 50)
    assert s.stale_after_s["unit"] == 45 and s.stale_after_s["drone"] == 5  # others keep defaults
    assert load_settings(cfg, port=9200).port == 9200


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("COCKPIT_PORT", "abc", "COCKPIT_PORT"),
        ("COCKPIT_PORT", "70000", "COCKPIT_PORT"),
        ("COCKPIT_RECORDER", "sometimes", "COCKPIT_RECORDER"),
        ("COCKPIT_INCIDENT", "../etc/passwd", "COCKPIT_INCIDENT"),
        ("COCKPIT_STALE_AFTER_S", '{"tank": 5}', "COCKPIT_STALE_AFTER_S"),
        ("COCKPIT_STALE_AFTER_S", '{"unit": -1}', "COCKPIT_STALE_AFTER_S"),
    ],
)
def test_bad_environment_value_is_named(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert named in str(err.value)
    assert value.strip('{}"').split('"')[0] in str(err.value)


def test_bad_toml_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("prot = 9000\n")
    with pytest.raises(SettingsError, match=r"prot .*Extra inputs"):
        load_settings(cfg)
    cfg.write_text("port = [unclosed\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(cfg)
    with pytest.raises(SettingsError, match="no such file"):
        load_settings(tmp_path / "missing.toml")


def test_a_split_role_needs_redis_and_web_never_records() -> None:
    with pytest.raises(SettingsError, match=r"role \(COCKPIT_ROLE\) = 'web'.*redis_url"):
        load_settings(None, role="web")
    with pytest.raises(SettingsError, match=r"recorder \(COCKPIT_RECORDER\) = 'on'"):
        load_settings(None, role="media", redis_url="redis://127.0.0.1:6379", recorder="on")
    s = load_settings(None, role="recorder", redis_url="redis://127.0.0.1:6379")
    assert s.role == "recorder" and s.recorder == "auto"
    with pytest.raises(SettingsError, match=r"worker_name \(COCKPIT_WORKER_NAME\)"):
        load_settings(None, worker_name="web 1; Path=/")  # it goes into a cookie


def test_a_bad_secret_is_named_but_never_shown() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, video_relay_url="ftp://cockpit:geheim@sfu/{stream}")
    assert "video_relay_url (COCKPIT_VIDEO_RELAY_URL)" in str(caught.value)
    assert "geheim" not in str(caught.value)
    assert load_settings(None, video_relay_url="").video_relay_url is None  # compose's unset
