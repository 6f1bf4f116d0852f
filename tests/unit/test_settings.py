import pytest

from pipeline.settings import SettingsError, load_settings


def test_defaults_come_from_config_file(monkeypatch):
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "PIPELINE_TOPIC_RAW", "PIPELINE_WEB_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.topic_raw == "articles.raw"
    assert settings.spacy_models["fr"] == "fr_core_news_sm"


def test_contract_environment_overrides(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:29092")
    monkeypatch.setenv("PIPELINE_APP_ID", "run-1")
    monkeypatch.setenv("PIPELINE_TOPIC_RAW", "raw-1")
    monkeypatch.setenv("PIPELINE_TOPIC_ENRICHED", "out-1")
    monkeypatch.setenv("PIPELINE_TOPIC_DLQ", "dlq-1")
    monkeypatch.setenv("PIPELINE_WEB_PORT", "7001")
    s = load_settings()
    assert (s.kafka_bootstrap_servers, s.app_id, s.topic_raw, s.topic_enriched, s.topic_dlq, s.web_port) == (
        "broker:29092", "run-1", "raw-1", "out-1", "dlq-1", 7001,
    )


def test_bad_values_fail_with_the_setting_named(monkeypatch):
    monkeypatch.setenv("PIPELINE_WEB_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="web_port"):
        load_settings()


def test_config_file_is_chosen_by_environment(monkeypatch, tmp_path):
    config = tmp_path / "p.toml"
    config.write_text('topic_raw = "from-file"\n')
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    monkeypatch.delenv("PIPELINE_TOPIC_RAW", raising=False)
    assert load_settings().topic_raw == "from-file"


def test_dedup_retention_and_sweep_settings(monkeypatch):
    for name in ("RETENTION_DAYS", "SWEEP_INTERVAL_SECONDS", "SWEEP_BATCH"):
        monkeypatch.delenv(f"PIPELINE_DEDUP_{name}", raising=False)
    s = load_settings()
    assert (s.dedup_retention_days, s.dedup_sweep_interval_seconds, s.dedup_sweep_batch) == (
        7,
        1,
        1000,
    )
    monkeypatch.setenv("PIPELINE_DEDUP_RETENTION_DAYS", "0.0001")  # about 8.6 s, for tests
    assert load_settings().dedup_retention_days == 0.0001
    monkeypatch.setenv("PIPELINE_DEDUP_SWEEP_BATCH", "0")
    with pytest.raises(SettingsError, match="dedup_sweep_batch"):
        load_settings()


def test_a_bad_setting_is_named_as_the_user_sets_it(monkeypatch):
    from pipeline.settings import SettingsError, load_settings

    monkeypatch.setenv("PIPELINE_BATCH_SIZE", "abc")
    with pytest.raises(SettingsError, match=r"^PIPELINE_BATCH_SIZE \(batch_size in the config"):
        load_settings()
    monkeypatch.delenv("PIPELINE_BATCH_SIZE")
    monkeypatch.setenv("PIPELINE_SPACY_MODELS", "notjson")
    with pytest.raises(SettingsError, match="PIPELINE_SPACY_MODELS .*: not valid JSON"):
        load_settings()


def test_the_cli_says_which_setting_is_bad_in_one_line_and_exits_2():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "ingest", "-"],
        input=b"", capture_output=True, timeout=60, check=False,
        env={"PIPELINE_WEB_PORT": "0", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 2
    expected = (
        "settings: PIPELINE_WEB_PORT (web_port in the config file): "
        "Input should be greater than or equal to 1"
    )
    assert done.stderr.decode().strip().splitlines() == [expected]
