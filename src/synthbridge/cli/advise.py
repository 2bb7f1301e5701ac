"""`synthbridge advise`: the volume advisor on an experiment folder."""

from __future__ import annotations

import argparse


def advise(parser: argparse.ArgumentParser):
    """say whether generating more synthetic images will pay (per volume sweep of an experiment folder)"""
    parser.add_argument("exp_dir", help="experiment folder made by `synthbridge run`")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON instead of text")

    def handle(args: argparse.Namespace) -> int:
        import json

        from synthbridge.api import advise as advise_folder
        from synthbridge.reporting import format_advice

        entries = advise_folder(args.exp_dir)
        print(json.dumps(entries, indent=2) if args.json else format_advice(entries))
        return 0

    return handle
