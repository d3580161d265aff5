"""The lenet-fast command line."""
import subprocess
import sys

import pytest

from lenet_fast.cli import main


def test_summary(capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "60,000" in out and "340,908" in out
    assert main(["summary", "--variant", "modern"]) == 0
    assert "61,706" in capsys.readouterr().out


def test_config(capsys):
    assert main(["config"]) == 0
    assert "openmp" in capsys.readouterr().out


def test_bad_option_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["summary", "--variant", "resnet"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lenet_fast", "summary"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "60,000" in out.stdout
