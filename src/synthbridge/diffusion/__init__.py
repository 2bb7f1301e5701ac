"""The diffusion layer every method that makes or adapts images builds on (generation, style inversion).

    pipeline.py   find, describe and load a text-to-image pipeline; schedulers; named generators
    sampling.py   `render`: images from (prompt, seed) pairs, each image independent of its batch
    styles.py     learned style tokens on disk, and loading them into a pipeline
"""

from synthbridge.diffusion.pipeline import (
                                            DTYPES,
                                            GENERATORS,
                                            SCHEDULERS,
                                            GeneratorInfo,
                                            NamedGenerator,
                                            generator_info,
                                            load_generator,
                                            make_scheduler,
                                            open_generator,
                                            set_scheduler,
                                            torch_dtype,
)
from synthbridge.diffusion.sampling import is_blank, render
from synthbridge.diffusion.styles import class_tokens, load_style, read_style

__all__ = ["DTYPES", "GENERATORS", "SCHEDULERS", "GeneratorInfo", "NamedGenerator", "class_tokens", "generator_info",
           "is_blank",
           "load_generator", "load_style", "make_scheduler", "open_generator", "read_style", "render",
           "set_scheduler", "torch_dtype"]
