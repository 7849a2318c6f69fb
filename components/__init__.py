"""The platform's constructs (named ``components`` so it does not shadow the ``constructs`` library)."""
