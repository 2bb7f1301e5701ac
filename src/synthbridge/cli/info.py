"""`synthbridge datasets`: what the registries hold."""

from __future__ import annotations

import argparse


def datasets(parser: argparse.ArgumentParser):
    """list the registered datasets"""

    def handle(args: argparse.Namespace) -> int:
        from synthbridge.data import DATASETS

        for name in DATASETS.names():
            print(name)
        print("imagefolder:PATH")
        return 0

    return handle
