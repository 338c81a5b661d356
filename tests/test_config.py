"""Config loading: validation, path resolution, and the exit-code contract of every script."""

import json

import pytest

from drs.config import ConfigError, load_config

SCRIPTS = [
    "ingestion.py",
    "training.py",
    "scoring.py",
    "deployment.py",
    "diagnostics.py",
    "reporting.py",
    "apicalls.py",
    "fullprocess.py",
]


def test_relative_paths_resolve_against_the_config_folder(project):
    config = project.config()
    assert config.input_folder == project.path("practicedata")
    assert config.prod_folder == project.path("production_deployment")
    assert config.log_folder == project.path("logs")
    assert config.test_data_file == project.path("testdata", "testdata.csv")


def test_course_hyperparameters_are_the_default_and_overridable(project):
    assert project.config().training["C"] == 1.0
    assert project.config().training["solver"] == "liblinear"
    project.write_config(training={"C": 0.5})
    assert project.config().training["C"] == 0.5
    assert project.config().training["max_iter"] == 100


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{not json", "invalid JSON"),
        ("[]", "JSON object"),
        (json.dumps({"input_folder_path": "a"}), "missing key"),
        (
            json.dumps(
                {
                    "input_folder_path": 3,
                    "output_folder_path": "b",
                    "test_data_path": "c",
                    "output_model_path": "d",
                    "prod_deployment_path": "e",
                }
            ),
            "'input_folder_path' must be",
        ),
        (
            json.dumps(
                {
                    "input_folder_path": "a",
                    "output_folder_path": "b",
                    "test_data_path": "c",
                    "output_model_path": "d",
                    "prod_deployment_path": "e",
                    "keep_versions": 1,
                }
            ),
            "keep_versions",
        ),
        (
            json.dumps(
                {
                    "input_folder_path": "a",
                    "output_folder_path": "b",
                    "test_data_path": "c",
                    "output_model_path": "d",
                    "prod_deployment_path": "e",
                    "keep_version": 3,
                }
            ),
            "unknown key.s.: keep_version",
        ),
        (
            json.dumps(
                {
                    "input_folder_path": "a",
                    "output_folder_path": "b",
                    "test_data_path": "c",
                    "output_model_path": "d",
                    "prod_deployment_path": "e",
                    "drift": {"trigger_tests": ["nope"]},
                }
            ),
            "trigger_tests",
        ),
        (
            json.dumps(
                {
                    "input_folder_path": "a",
                    "output_folder_path": "b",
                    "test_data_path": "c",
                    "output_model_path": "d",
                    "prod_deployment_path": "e",
                    "drift": {"ks_pvalue": 5},
                }
            ),
            "drift.ks_pvalue must be a p-value between 0 and 1, got 5",
        ),
        (
            json.dumps(
                {
                    "input_folder_path": "a",
                    "output_folder_path": "b",
                    "test_data_path": "c",
                    "output_model_path": "d",
                    "prod_deployment_path": "e",
                    "lock_wait_seconds": -1,
                }
            ),
            "lock_wait_seconds",
        ),
    ],
)
def test_invalid_config_is_rejected_with_a_reason(tmp_path, text, fragment):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_exits_2_with_one_line_on_a_bad_config(project, script):
    project.path("bad.json").write_text("{")
    result = project.run(script, config="bad.json")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid JSON" in lines[0] and "bad.json" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_exits_2_on_a_missing_config(project, script):
    result = project.run(script, config="nowhere.json", real=True)  # each script in a new interpreter
    assert result.returncode == 2
    assert "config file not found" in result.stderr and "Traceback" not in result.stderr


def test_comment_keys_are_allowed(project):
    project.write_config(_comment="practice phase")
    assert project.config().input_folder == project.path("practicedata")
    project.write_config(comment="practice phase")
    with pytest.raises(ConfigError, match="unknown key"):
        project.config()


def test_a_bad_training_value_is_a_config_error_before_any_work(deployed):
    deployed.write_config("config_production.json", input_folder_path="sourcedata", training={"C": -1})
    result = deployed.run("fullprocess.py", config="config_production.json")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "invalid training parameter" in result.stderr and "'C'" in result.stderr
    assert not deployed.path("ingesteddata", "ingestedfiles.json").read_text().count("dataset3.csv")
    result = deployed.run("training.py", config="config_production.json")
    assert result.returncode == 2 and "invalid training parameter" in result.stderr


def test_a_bad_api_url_is_refused_without_its_credentials(tmp_path):
    folders = dict.fromkeys(
        ["input_folder_path", "output_folder_path", "test_data_path", "output_model_path", "prod_deployment_path"], "a"
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**folders, "api_url": "ftp://drs:s3cret@host/"}))
    with pytest.raises(ConfigError, match="api_url") as refused:
        load_config(path)
    assert "s3cret" not in str(refused.value) and "***@host" in str(refused.value)
