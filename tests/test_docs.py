"""The docs: docs/paper-profile.md is what scripts/paper_profile_doc.py makes of config/paper.yaml, README is short."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "paper_profile_doc.py"
PAPER_DOC = ROOT / "docs" / "paper-profile.md"
README = ROOT / "README.md"


def _generator():
    """scripts/paper_profile_doc.py as a module (registered first: its dataclass looks itself up)."""
    if "paper_profile_doc" not in sys.modules:
        spec = importlib.util.spec_from_file_location("paper_profile_doc", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["paper_profile_doc"] = module
        spec.loader.exec_module(module)
    return sys.modules["paper_profile_doc"]


def test_paper_profile_doc_is_current():
    text = (ROOT / "config" / "paper.yaml").read_text(encoding="utf-8")
    generated = _generator().render(text)
    assert generated == _generator().render(text)  # deterministic
    assert PAPER_DOC.read_text(encoding="utf-8") == generated, "docs/paper-profile.md is stale: run `make docs`"
    check = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout + check.stderr


def test_check_mode_reports_a_stale_doc(tmp_path):
    stale = tmp_path / "paper-profile.md"
    stale.write_text("# old\n")
    check = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--out", str(stale)], capture_output=True, text=True, cwd=ROOT
    )
    assert check.returncode == 1
    assert len(check.stdout.strip().splitlines()) == 1 and "stale" in check.stdout


def _leaves(value, prefix=""):
    """Dotted paths of a loaded experiment, as the generator opens them (flow mappings are opened here too)."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def test_paper_profile_doc_covers_every_setting_and_pin():
    raw = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text(encoding="utf-8"))
    doc = PAPER_DOC.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([\w.-]+)` \|", doc, flags=re.M))
    for name, experiment in raw["experiments"].items():
        assert f"`{name}`" in doc
        for key, value in experiment.items():
            if key in ("description", "source", "deviations"):
                continue
            for path in _leaves({key: value}):
                assert path in rows or any(path.startswith(f"{row}.") for row in rows), f"{name}: {path}"
    for key in raw:
        if not key.startswith("_") and key != "experiments":
            assert any(row == key or row.startswith(f"{key}.") for row in rows), key
    pins = {v for block in raw.values() if isinstance(block, dict) for v in block.values() if isinstance(v, str)}
    for pin in (p for p in pins if re.fullmatch(r"[^@\s]+@[0-9a-f]{40}", p)):
        name, commit = pin.split("@")
        assert f"| `{name}` | `{commit}` |" in doc, pin


def test_generator_resolves_anchors_merge_keys_and_nested_blocks():
    text = textwrap.dedent(
        """\
        # A profile. One line of prose.
        #   snakemake --cores 1
        profile: tiny                    # ours: the name
        _hub:
          base: &base org/model@0123456789abcdef0123456789abcdef01234567  # the base model
        _ppo: &ppo
          steps: 10                      # PPOConfig: steps
          lora: {r: 8, alpha: 16}        # peft: LoRA
        _more: &more
          gamma: 1.0                     # PPOConfig: gamma
        experiments:
          a:
            policy: *base                # seed: the policy
            ppo:
              <<: [*ppo, *more]
              steps: 20                  # ours: longer
            generation:
              top_p: 1.0                 # plain sampling
              nested:
                deep: "no"               # a string, not false
          b:
            policy: *base                # seed: the policy
            ppo: {<<: *ppo}
            deviations:
              - {setting: ppo.steps, documented: 10, sound: 20, why: "more steps"}
        """
    )
    doc = _generator().render(text, "tiny.yaml")
    assert "One line of prose." in doc and "snakemake --cores 1" in doc
    assert "| `base` | `org/model` | `0123456789abcdef0123456789abcdef01234567` | the base model |" in doc
    assert "| `profile` | `tiny` | ours: the name |" in doc
    assert "| `policy` | `org/model@0123456` | `org/model@0123456` | seed: the policy |" in doc
    assert "| `ppo.steps` | `20` | `10` | a: ours: longer<br>b: PPOConfig: steps |" in doc
    assert "| `ppo.lora` | `{r: 8, alpha: 16}` | `{r: 8, alpha: 16}` | peft: LoRA |" in doc
    assert "| `ppo.gamma` | `1.0` | – | a: PPOConfig: gamma |" in doc
    assert '| `generation.nested.deep` | `"no"` | – | a: a string, not false |' in doc
    assert "| `b` | `ppo.steps` | `10` | `20` | more steps |" in doc
    assert doc.index("`ppo.steps`") < doc.index("`ppo.lora`") < doc.index("`ppo.gamma`")


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_cli_modules_exist():
    named = set(re.findall(r"python -m (rlhf_bench(?:\.\w+)*)", README.read_text(encoding="utf-8")))
    assert len(named) >= 11, sorted(named)
    for module in sorted(named):
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"README names {module}, which does not exist"
        if spec.submodule_search_locations is not None:  # a package runs by its __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{module} has no __main__"


def test_doc_links_resolve():
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def _documented_snakemake_commands() -> list[str]:
    """Every `snakemake ...` line of a code block in README.md and docs/configs.md, comment and pipe cut off."""
    commands = []
    for doc in (README, ROOT / "docs" / "configs.md"):
        for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S):
            for line in block.splitlines():
                if line.startswith("snakemake "):
                    commands.append(re.split(r"\s+#\s|\s\|\s", line)[0].strip())
    return commands


DOCUMENTED = _documented_snakemake_commands()


def test_the_docs_show_the_config_override_forms():
    assert any("--config seeds=" in c for c in DOCUMENTED) and any("--config 'experiments=" in c for c in DOCUMENTED)


@pytest.mark.parametrize("command", DOCUMENTED)
def test_every_documented_snakemake_command_runs_as_written(command, tmp_path):
    """Each command of README.md and docs/configs.md, dry-run (`-n`) from a copy of the project's config/ and
    profiles/, exits 0 (issue 12: the README's own `--config` command was refused). Two flags cannot dry-run here:
    `--use-singularity` needs an apptainer binary even for `-n`, and profiles/slurm needs the SLURM executor
    plugin; the rest of such a command (its --configfile and --config values) is still checked."""
    import shlex

    for folder in ("config", "profiles"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    argv = shlex.split(command)[1:]
    argv = [a for a in argv if a != "--use-singularity"]
    if "profiles/slurm" in argv:
        argv[argv.index("profiles/slurm")] = "profiles/local"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *argv, "-n"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "config error" not in result.stderr
