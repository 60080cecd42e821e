"""mammogan_lib: the small, tested helper library behind the mammogan notebooks.

Modules are nouns (phantom, imaging, breast, filtering, preprocess, ...) and functions are verbs.
Heavy frameworks (tensorflow, torch) are imported lazily inside the modules that need them,
so that importing this package stays cheap and a notebook never loads both frameworks.
"""

__version__ = "0.1.0"
