"""synthbridge: make text-to-image synthetic images useful for transfer learning.

The study runs as a chain of stages, one module each:
data -> prompts -> generation -> (inversion) -> training -> evaluation -> reporting.
"""

__version__ = "0.1.0"
