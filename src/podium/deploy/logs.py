"""Reading stamped log files moved to ``podium.runtime.logs`` (the local runtime keeps its
logs); the names stay importable from here for the web pages."""

from podium.runtime.logs import follow_logs, last_lines, read_logs

__all__ = ["follow_logs", "last_lines", "read_logs"]
