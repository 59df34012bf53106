"""kvb's one test harness, shared by every Python suite (Tests/integration, Tests/console,
Tests/browser, and any new one): the real binaries in subprocesses, WebSocket clients speaking
kvb's protocol, the recorded WebM fixtures, threaded clients, a tmux driver, and (in `plugin`) the
pytest fixtures and hooks. See Tests/harness/README.md.
"""

from .clients import (Publisher, ViewedStream, Viewer, assert_late_join, percentile, raw_websocket,
                      small_buffer_socket, starts_with_cluster, wait_until, ws_url)
from .processes import (BACKEND, CONSOLE, LOG_TAIL, OPERATOR_KEY, ROOT, SERVER, STATIC_DIR, Kvb, KvbProcess, api_topics,
                        console_argv, fleet_status, http_get, run_console, spawn_console, with_env)
from .plugin import report_logs
from .threaded import ClientLoop, PublisherLoop, TimedViewer
from .tmux import Tmux
from .webm import CLUSTER_ID, FIXTURE_NAMES, Fixture, big_keyframe_cluster, load_fixture, looped

__all__ = [
    "BACKEND", "CLUSTER_ID", "CONSOLE", "FIXTURE_NAMES", "LOG_TAIL", "OPERATOR_KEY", "ROOT", "SERVER", "STATIC_DIR",
    "ClientLoop", "Fixture", "Kvb", "KvbProcess", "Publisher", "PublisherLoop", "TimedViewer", "Tmux", "ViewedStream",
    "Viewer", "api_topics", "big_keyframe_cluster", "assert_late_join", "console_argv", "fleet_status", "http_get", "load_fixture", "looped",
    "percentile", "raw_websocket", "report_logs", "run_console", "small_buffer_socket", "spawn_console", "starts_with_cluster",
    "wait_until", "with_env", "ws_url",
]
