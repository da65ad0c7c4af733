"""The documentation: the MkDocs site builds under --strict, every command shown in README.md and docs/ exists
(its --help exits 0), the commands page lists them all, and README.md's relative links point at files.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
NOT_SHELL = {"python", "py", "json", "yaml", "yml", "toml", "text"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SEPARATORS = {"&&", "||", "|", ";"}
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HELP_TIMEOUT_S = 300


def code_lines(text: str) -> list[str]:
    """The lines inside fenced code blocks that can hold commands (not python, json, yaml, toml or text blocks), a
    line ending in a backslash joined with the next."""
    lines, inside, skip, pending = [], False, False, ""
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence:
            inside, pending = not inside, ""
            skip = inside and line.strip()[3:].strip().lower() in NOT_SHELL
            continue
        if not inside or skip:
            continue
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        lines.append(pending)
        pending = ""
    return lines


def commands(line: str) -> list[list[str]]:
    """The words of each command on a shell line: an optional `$ ` prompt, `VAR=value` prefixes and comments
    dropped, split at `&&`, `||`, `|` and `;`."""
    line = line.strip().removeprefix("$ ")
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote, e.g. in a JSON sample: the first words are what matter
        words = line.split("#", 1)[0].split()
    found, current = [], []
    for word in [*words, ";"]:
        if word in SEPARATORS:
            while current and ENV_ASSIGNMENT.match(current[0]):
                current.pop(0)
            if current:
                found.append(current)
            current = []
        else:
            current.append(word)
    return found


def shown_commands() -> list[tuple[str, list[str]]]:
    """(page name, words) of every command in the code blocks of README.md and docs/*.md."""
    return [(page.relative_to(ROOT).as_posix(), words)
            for page in PAGES for line in code_lines(page.read_text()) for words in commands(line)]


def detpipe_pairs() -> list[tuple[str, ...]]:
    """Distinct (subcommand,) or ("data", data subcommand) of the `detpipe ...` commands shown."""
    pairs = set()
    for _, words in shown_commands():
        if words[0] != "detpipe" or len(words) < 2:
            continue
        sub = words[1]
        data_sub = words[2] if sub == "data" and len(words) > 2 and not words[2].startswith("-") else None
        pairs.add((sub, data_sub) if data_sub else (sub,))
    return sorted(pairs)


def python_modules() -> list[str]:
    """Distinct X of the `python -m X ...` commands shown (python, python3 or a path ending in /python)."""
    modules = set()
    for _, words in shown_commands():
        if re.fullmatch(r"(.*/)?python3?", words[0]) and len(words) > 2 and words[1] == "-m":
            modules.add(words[2])
    return sorted(modules)


def python_scripts() -> list[str]:
    """Distinct script paths of the `python path/to/script.py ...` commands shown."""
    scripts = set()
    for _, words in shown_commands():
        if re.fullmatch(r"(.*/)?python3?", words[0]) and len(words) > 1 and words[1].endswith(".py"):
            scripts.add(words[1])
    return sorted(scripts)


def run_help(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=HELP_TIMEOUT_S)


PAIRS = detpipe_pairs()
MODULES = python_modules()


def test_parsing_finds_the_commands_shown():
    # the checks below are only as good as the parser: it must find what the pages obviously show
    assert ("train",) in PAIRS and ("data", "synth") in PAIRS and ("serve",) in PAIRS, PAIRS
    assert all(len(pair) == 2 for pair in PAIRS if pair[0] == "data"), "a `detpipe data` with no subcommand"
    assert commands("$ FOO=1 detpipe data stats x.json --json  # a comment") == [
        ["detpipe", "data", "stats", "x.json", "--json"]]
    assert commands("PYTHONPATH=. ray start --head && serve deploy c.yaml") == [
        ["ray", "start", "--head"], ["serve", "deploy", "c.yaml"]]
    assert code_lines("text\n```bash\ndetpipe train a.yaml \\\n    x=1\n```\nafter") == ["detpipe train a.yaml x=1"]
    assert code_lines("```python\ndetpipe = 1\n```\n```\ndetpipe eval --help\n```") == ["detpipe eval --help"]


def test_mkdocs_build_is_strict_clean(tmp_path):
    """(a) The site builds with --strict: a broken link, a missing anchor or a page left out of the nav fails."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed (they are in the dev extra: pip install -e '.[dev]')")
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert (site / "index.html").is_file()
    built = {page.stem for page in (ROOT / "docs").glob("*.md")} - {"index"}
    assert all((site / name / "index.html").is_file() for name in built), sorted(built)


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(pair) for pair in PAIRS])
def test_each_detpipe_command_shown_exists(pair):
    """(b) `detpipe SUB [DATASUB] --help` exits 0 for every subcommand shown in the code blocks."""
    run = run_help(["-m", "detpipe", *pair])
    assert run.returncode == 0, f"detpipe {' '.join(pair)} --help: exit {run.returncode}\n{run.stdout}{run.stderr}"


@pytest.mark.parametrize("module", MODULES)
def test_each_python_module_shown_runs_help(module):
    """(c) `python -m X --help` exits 0 for every module shown in the code blocks."""
    run = run_help(["-m", module])
    assert run.returncode == 0, f"python -m {module} --help: exit {run.returncode}\n{run.stdout}{run.stderr}"


def test_each_python_script_shown_exists():
    scripts = python_scripts()
    assert scripts, "no `python path/script.py` command found (the benchmarks page shows several)"
    missing = [script for script in scripts if not (ROOT / script).is_file()]
    assert not missing, missing


def test_readme_relative_links_resolve():
    """(d) Every relative link of README.md (outside code blocks) points at a file or folder of the repository."""
    text = re.sub(r"^\s*(```|~~~).*?^\s*\1", "", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    targets = [target for target in LINK.findall(text)
               if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("#")]
    assert targets, "README.md links to no page of docs/"
    missing = [target for target in targets if not (ROOT / target.split("#", 1)[0]).exists()]
    assert not missing, missing


def test_commands_page_lists_every_subcommand_shown_and_every_data_subcommand():
    """docs/commands.md has a row for every `detpipe` subcommand the pages show, and for every subcommand of
    `python -m datasets` (which `detpipe data` runs)."""
    listed = set(re.findall(r"^\| `detpipe ([a-z-]+(?: [a-z-]+)?)`", (ROOT / "docs" / "commands.md").read_text(),
                            flags=re.M))
    missing = [" ".join(pair) for pair in PAIRS if " ".join(pair) not in listed]
    assert not missing, f"not in the table of docs/commands.md: {missing}"
    run = run_help(["-m", "datasets"])
    assert run.returncode == 0, run.stderr
    block = run.stdout.split("positional arguments:", 1)[1].split("options:", 1)[0]
    data_subs = [name for name in re.findall(r"^    (\S+)", block, flags=re.M) if name != "command"]
    assert data_subs, run.stdout
    missing = [name for name in data_subs if f"data {name}" not in listed]
    assert not missing, f"`python -m datasets` subcommands not in docs/commands.md: {missing}"


PYTHON_IMPORT = re.compile(r"^\s*from ((?:datasets|detection|serve|detpipe)[\w.]*) import ([\w, ]+)$")


def shown_python_imports() -> list[tuple[str, str]]:
    """(module, name) of every `from <our package> import name` line in a python code block of the pages."""
    found = []
    for page in PAGES:
        inside_python = False
        for line in page.read_text().splitlines():
            if FENCE.match(line):
                inside_python = not inside_python and line.strip()[3:].strip().lower() in ("python", "py")
                continue
            match = PYTHON_IMPORT.match(line) if inside_python else None
            if match:
                found += [(match[1], name.strip()) for name in match[2].split(",")]
    return sorted(set(found))


def test_each_python_import_shown_resolves():
    """The Python examples name modules and functions that exist (they moved once; the docs must follow)."""
    shown = shown_python_imports()
    assert len(shown) >= 5
    missing = [f"{module}.{name}" for module, name in shown
               if not hasattr(importlib.import_module(module), name)]
    assert not missing, missing
