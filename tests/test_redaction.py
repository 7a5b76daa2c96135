"""Secrets never reach a logged config, a command line or a run-directory file."""

from __future__ import annotations

from seglab.tracking.redaction import (
    MASK, environment_secrets, is_secret_name, redact, redact_command_line, redact_files, secrets_in,
)


def test_secret_names_are_recognised_without_catching_ordinary_keys():
    for name in ("WANDB_API_KEY", "api_key", "apikey", "HF_TOKEN", "access_token", "db.password", "AWS_SECRET_ACCESS_KEY", "credentials"):
        assert is_secret_name(name), name
    for name in ("tokenizer", "max_tokens", "keypoints", "optimizer.lr", "data.root", "passage"):
        assert not is_secret_name(name), name


def test_redact_masks_secret_keys_environment_values_and_url_passwords(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "env-secret-value")
    config = {
        "optimizer": {"lr": 0.01},
        "service": {"api_key": "cfg-secret-value", "password": None, "from_env": "env-secret-value"},
        "tracking_uri": "https://alice:url-secret@mlflow.example.org",
        "notes": ["prefix env-secret-value suffix"],
    }
    cleaned = redact(config)
    assert cleaned["optimizer"] == {"lr": 0.01}
    assert cleaned["service"] == {"api_key": MASK, "password": None, "from_env": MASK}
    assert cleaned["tracking_uri"] == f"https://alice:{MASK}@mlflow.example.org"
    assert cleaned["notes"] == [f"prefix {MASK} suffix"]
    assert config["service"]["api_key"] == "cfg-secret-value"  # the original is left alone


def test_short_environment_values_are_not_treated_as_secrets(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_TOKEN", "1")
    assert "1" not in environment_secrets()
    assert redact({"devices": "1"}) == {"devices": "1"}


def test_command_lines_and_files_are_cleaned(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLAB_TEST_SECRET", "env-secret-value")
    argv = ["train.py", "+logger.wandb.api_key=cfg-secret-value", "optimizer.lr=0.1", "data.root=/x/env-secret-value"]
    assert redact_command_line(argv) == ["train.py", f"+logger.wandb.api_key={MASK}", "optimizer.lr=0.1", f"data.root=/x/{MASK}"]

    config_file = tmp_path / "overrides.yaml"
    config_file.write_text("- +logger.wandb.api_key=cfg-secret-value\n- optimizer.lr=0.1\n")
    redact_files([config_file], secrets_in({"logger": {"wandb": {"api_key": "cfg-secret-value"}}}))
    assert config_file.read_text() == f"- +logger.wandb.api_key={MASK}\n- optimizer.lr=0.1\n"
