"""What the entry points share: the runner that turns errors into one line and an exit code
(`runner`), and the one validation layer that checks config values and names their keys
(`validation`). The entry points themselves are ``colorlab.train``, ``evaluate``,
``colorize`` and ``bench``."""
