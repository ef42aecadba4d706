"""newsmon: a self-hosted news-monitoring daemon."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/newsmon/newsmon"
