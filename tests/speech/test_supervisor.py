"""Which live model serves a call (per line, per language, default) and what start-up says
when models or rules are missing; the service's command line."""

import sys
from pathlib import Path
from types import SimpleNamespace

from hotline.config import load_settings
from hotline.domain import Language
from hotline.speech.supervisor import SpeechProcess, default_capacity, plan

sys.path.insert(0, str(Path(__file__).parent))
from audio import KO_MODEL  # noqa: E402


def _settings(tmp_path, **env):
    return load_settings(environ={"HOTLINE_PATHS_MODELS": str(tmp_path / "models"),
                                  "HOTLINE_PATHS_VAR": str(tmp_path / "var"), **env})


def _call(line="12348", language=Language.MANDARIN):
    return SimpleNamespace(line=line, language=language)


def flow_of(line):
    return {"12348": "main", "12348-8": "sme"}.get(line, "main")


def test_without_the_live_model_there_is_no_live_transcription_and_it_says_how_to_install(
        tmp_path):
    speech = plan(_settings(tmp_path))
    assert speech.why_off and "hotline models download vosk-model-small-cn-0.22" in \
        speech.why_off
    assert speech.models == {}
    assert speech.model_for(_call(), flow_of) is None


def test_models_per_line_and_language_fall_back_to_the_default(tmp_path):
    hand_placed = tmp_path / "models" / "my-model"  # a model unpacked by hand
    hand_placed.parent.mkdir()
    hand_placed.symlink_to(KO_MODEL, target_is_directory=True)
    speech = plan(_settings(
        tmp_path, HOTLINE_SPEECH_LIVE_MODEL="my-model",
        HOTLINE_SPEECH_LINE_MODELS='{sme = "vosk-model-cn-0.22"}',
        HOTLINE_SPEECH_LANGUAGE_MODELS=f'{{cantonese = "{KO_MODEL}"}}'))
    assert speech.why_off == ""
    assert set(speech.models) == {"my-model", str(KO_MODEL)}
    assert speech.model_for(_call(), flow_of) == "my-model"
    assert speech.model_for(_call(language=Language.CANTONESE), flow_of) == str(KO_MODEL)
    # the SME line asks for a model that is not installed: no live captions there
    assert speech.model_for(_call(line="12348-8"), flow_of) is None
    assert any("vosk-model-cn-0.22" in p for p in speech.problems)


def test_a_broken_rules_file_turns_live_transcription_off_naming_file_and_line(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("categories:\n  - code: no_such_category\n    phrases: [x]\n",
                     encoding="utf-8")
    speech = plan(_settings(tmp_path, HOTLINE_SPEECH_LIVE_MODEL=str(KO_MODEL),
                            HOTLINE_SPEECH_RULES=str(rules)))
    assert "文本规则文件有误" in speech.why_off and f"{rules}:" in speech.why_off


def test_disabled_and_capacity(tmp_path):
    off = plan(_settings(tmp_path, HOTLINE_SPEECH_ENABLED="false",
                         HOTLINE_SPEECH_LIVE_MODEL=str(KO_MODEL)))
    assert "speech.enabled" in off.why_off
    assert default_capacity(_settings(tmp_path, HOTLINE_SPEECH_MAX_LIVE_STREAMS="7")) == 7
    assert default_capacity(_settings(tmp_path)) >= 2


def test_the_service_command_carries_models_capacity_and_rules(tmp_path):
    settings = _settings(tmp_path, HOTLINE_SPEECH_LIVE_MODEL=str(KO_MODEL),
                         HOTLINE_SPEECH_MAX_LIVE_STREAMS="3",
                         HOTLINE_SPEECH_LEXICON="lexicon.yaml")
    process = SpeechProcess(settings, plan(settings))
    cmd = process.command()
    assert cmd[1:3] == ["-m", "hotline.speech.server"]
    assert cmd[cmd.index("--capacity") + 1] == "3"
    assert f"{KO_MODEL}={KO_MODEL}" in cmd
    assert cmd[cmd.index("--lexicon") + 1] == str(settings.base_dir / "lexicon.yaml")
    assert "--rules" not in cmd
