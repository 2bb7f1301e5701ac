"""The layout is the data flow: no library module imports the CLI, the product never imports the embedded
world, packages import each other without circles, and the product runs with the embedded world gone."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import synthbridge

SRC = Path(synthbridge.__file__).parent


def _imports() -> dict[str, set[str]]:
    """{module: synthbridge modules it imports}, at module level and inside functions alike."""
    graph = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("synthbridge")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("synthbridge"):
                targets.add(node.module)
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import module`
        graph[module] = {t for t in targets if t != module}
    return graph


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: synthbridge.training.loop -> training."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "synthbridge"


def test_no_library_module_imports_the_cli_and_the_product_never_imports_the_embedded_world():
    graph = _imports()
    assert len(graph) > 40
    for module, targets in graph.items():
        if _unit(module) not in ("cli", "__main__"):  # `python -m synthbridge` is the command line
            assert not any(_unit(t) == "cli" for t in targets), f"{module} imports the CLI"
        if _unit(module) not in ("cli", "embedded"):
            assert not any(_unit(t) == "embedded" for t in targets), f"{module} imports synthbridge.embedded"


def test_packages_import_each_other_without_circles():
    graph = _imports()
    edges: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if target in graph and _unit(target) != _unit(module) and _unit(module) != "synthbridge":
                edges.setdefault(_unit(module), set()).add(_unit(target))
    # depth-first search for a cycle among packages
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert "training" in edges["experiments"] and "diffusion" in edges["generation"]  # the graph is real


@pytest.mark.slow
def test_the_product_runs_at_full_scale_with_the_embedded_world_unimportable(tmp_path):
    """Every product module imports, and train / generate / gap work on an imagefolder dataset, a timm model and
    a tiny Stable Diffusion folder, with `synthbridge.embedded` blocked (as if the folder were deleted)."""
    from helpers import write_imagefolder

    write_imagefolder(tmp_path / "data", ["cat", "dog", "..dots"], per_class=4, size=40)
    script = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        sys.modules["synthbridge.embedded"] = None  # import synthbridge.embedded now raises ImportError
        import synthbridge
        skipped = []
        for info in pkgutil.walk_packages(synthbridge.__path__, "synthbridge."):
            if info.name.startswith(("synthbridge.embedded", "synthbridge.cli.embedded")):
                continue
            importlib.import_module(info.name)
        from synthbridge.data import DATASETS, load_dataset
        assert "mnist5k" not in DATASETS.names(), DATASETS.names()
        assert load_dataset("imagefolder:{tmp_path / 'data'}").classes == ["..dots", "cat", "dog"]
        from synthbridge.cli import main
        assert main(["train", "--dataset", "imagefolder:{tmp_path / 'data'}", "--model", "resnet18", "--no-pretrained",
                     "--real-steps", "2", "--real-batch-size", "4", "--real-augment", "none", "--report-to", "none",
                     "--num-workers", "0", "--out", "{tmp_path / 'run'}"]) == 0
        from synthbridge.generation import GenerateConfig, generate
        from tiny import save_tiny_pipeline
        folder = save_tiny_pipeline("{tmp_path / 'sd'}")
        generate(GenerateConfig(out="{tmp_path / 'synthetic'}", dataset="imagefolder:{tmp_path / 'data'}",
                                generator=str(folder), per_class=2, steps=2, show_progress=False))
        assert main(["gap", "--dataset", "imagefolder:{tmp_path / 'data'}", "--synthetic", "{tmp_path / 'synthetic'}",
                     "--model", "resnet18", "--checkpoint", "{tmp_path / 'run' / 'model.safetensors'}",
                     "--kid-subsets", "2", "--cv-folds", "2"]) == 0
        assert main(["generate", "--dataset", "imagefolder:{tmp_path / 'data'}", "--generator", "mini", "--per-class", "1",
                     "--out", "{tmp_path / 'nope'}"]) == 2  # `mini` is the embedded world's: unknown here
        print("FULL SCALE OK")
    """)
    # the tiny SD builder lives in the embedded world: load its file directly, as a plain module
    (tmp_path / "tiny.py").write_text((SRC / "embedded" / "tiny.py").read_text())
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0 and "FULL SCALE OK" in done.stdout, done.stderr[-3000:]
